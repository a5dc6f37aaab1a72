"""Intake's tables and queries: dossiers and the per-unit, per-day sequence."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column, Date, Integer, PrimaryKeyConstraint, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import AwareDateTime, table


class Dossier(SQLModel, table=True):
    """A dossier as intake holds it. Applicant columns are personal data."""

    __tablename__ = "dossier"

    code: str = Field(sa_column=Column(String(40), primary_key=True))
    procedure_code: str = Field(sa_column=Column(String(40), nullable=False))
    channel: str = Field(sa_column=Column(String(10), nullable=False))
    receiving_unit: str = Field(sa_column=Column(String(20), nullable=False, index=True))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    submitted_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    received_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    applicant_name: str = Field(sa_column=Column(String(200), nullable=False))
    applicant_phone: str | None = Field(default=None, sa_column=Column(String(20)))
    applicant_email: str | None = Field(default=None, sa_column=Column(String(200)))
    applicant_id_number: str | None = Field(default=None, sa_column=Column(String(12)))
    documents: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class DossierSequence(SQLModel, table=True):
    """The last sequence number a unit issued on a day."""

    __tablename__ = "dossier_sequence"
    __table_args__ = (PrimaryKeyConstraint("receiving_unit", "day"),)

    receiving_unit: str = Field(sa_column=Column(String(20), nullable=False))
    day: date = Field(sa_column=Column(Date, nullable=False))
    last: int = Field(sa_column=Column(Integer, nullable=False))


TABLES: list[Table] = [table(Dossier), table(DossierSequence)]


async def next_sequence(session: AsyncSession, unit: str, day: date) -> int:
    """Take the next sequence number of ``unit`` on ``day`` inside the caller's transaction.

    One atomic upsert: concurrent requests (and instances, on PostgreSQL) serialise on
    the sequence row, so no two dossiers of a unit and day share a number.
    """
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    sequences = table(DossierSequence)
    upsert = (
        insert(sequences)
        .values(receiving_unit=unit, day=day, last=1)
        .on_conflict_do_update(
            index_elements=["receiving_unit", "day"], set_={"last": sequences.c.last + 1}
        )
        .returning(sequences.c.last)
    )
    conn = await session.connection()
    return int((await conn.execute(upsert)).scalar_one())


async def get_dossier(session: AsyncSession, code: str) -> Dossier | None:
    """The dossier with this code, if any."""
    return await session.get(Dossier, code)
