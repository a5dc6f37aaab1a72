"""Routing's tables: assignments and the manual queue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Integer, String, Table
from sqlmodel import Field, SQLModel

from shared.db import AwareDateTime, table


class Assignment(SQLModel, table=True):
    """The office holding a dossier, and the rule that chose it."""

    __tablename__ = "assignment"

    dossier_code: str = Field(sa_column=Column(String(40), primary_key=True))
    procedure_code: str = Field(sa_column=Column(String(40), nullable=False))
    office: str = Field(sa_column=Column(String(20), nullable=False, index=True))
    field: str = Field(sa_column=Column(String(200), nullable=False))
    rule: str = Field(sa_column=Column(String(300), nullable=False))
    catalogue_version: int = Field(sa_column=Column(Integer, nullable=False))
    routed_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


class ManualQueueEntry(SQLModel, table=True):
    """A dossier no rule could route, waiting for an administrator."""

    __tablename__ = "manual_queue"

    dossier_code: str = Field(sa_column=Column(String(40), primary_key=True))
    procedure_code: str = Field(sa_column=Column(String(40), nullable=False))
    reason: str = Field(sa_column=Column(String(300), nullable=False))
    queued_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


TABLES: list[Table] = [table(Assignment), table(ManualQueueEntry)]
