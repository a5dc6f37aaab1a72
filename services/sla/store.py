"""SLA's tables: the clock of each dossier."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String, Table
from sqlmodel import Field, SQLModel

from shared.db import AwareDateTime, table


class TrackedDossier(SQLModel, table=True):
    """A dossier the tracker holds. Received and routed events may come in either order."""

    __tablename__ = "tracked_dossier"

    code: str = Field(sa_column=Column(String(40), primary_key=True))
    procedure_code: str | None = Field(default=None, sa_column=Column(String(40)))
    receiving_unit: str | None = Field(default=None, sa_column=Column(String(20)))
    office: str | None = Field(default=None, sa_column=Column(String(20), index=True))
    started_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime, index=True))
    tracked_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


TABLES: list[Table] = [table(TrackedDossier)]
