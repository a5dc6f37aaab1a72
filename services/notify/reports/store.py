"""The report's tables: one fact row per dossier, and the pre-aggregated counts.

Invariant: ``report_day`` and ``report_due`` always equal ``domain.aggregate`` of every
``report_fact`` row (rows whose count fell to zero may remain); they move in the same
transaction as the facts. ``report_due_soon`` and ``report_needs_apology`` hold the SLA
clock's dossier-level warnings of open dossiers for the dashboard and the digest (dossier
codes, offices and due times only, no personal data); a row goes when its dossier closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import Column, Date, Index, Integer, String, Table
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify.reports.domain import DayKey, DueKey, Fact
from shared.db import AwareDateTime, table, upsert_insert


class ReportFact(SQLModel, table=True):
    """What the report knows of one dossier (see ``domain.Fact``)."""

    __tablename__ = "report_fact"
    __table_args__ = (Index("ix_report_fact_open_due", "finished_at", "withdrawn_at", "due_at"),)

    code: str = Field(sa_column=Column(String(60), primary_key=True))
    unit: str = Field(default="", sa_column=Column(String(60), nullable=False))
    field: str = Field(default="", sa_column=Column(String(200), nullable=False))
    procedure: str = Field(default="", sa_column=Column(String(40), nullable=False))
    level: str = Field(default="", sa_column=Column(String(10), nullable=False))
    channel: str = Field(default="", sa_column=Column(String(10), nullable=False))
    received_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    finished_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    outcome: str | None = Field(default=None, sa_column=Column(String(10)))
    supplement_requests: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    withdrawn_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))

    def to_fact(self) -> Fact:
        """The pure fact."""
        return Fact(
            code=self.code,
            unit=self.unit,
            field=self.field,
            procedure=self.procedure,
            level=self.level,
            channel=self.channel,
            received_at=self.received_at,
            due_at=self.due_at,
            finished_at=self.finished_at,
            outcome=self.outcome,
            supplement_requests=self.supplement_requests,
            withdrawn_at=self.withdrawn_at,
        )

    def load(self, fact: Fact) -> None:
        """Copy a pure fact's values into this row."""
        for name in Fact.__slots__:
            if name != "code":
                setattr(self, name, getattr(fact, name))


class ReportDay(SQLModel, table=True):
    """Counts by (dimension, key, Vietnam day, measure)."""

    __tablename__ = "report_day"
    __table_args__ = (Index("ix_report_day_dim_day", "dim", "day", "key", "measure", "n"),)

    dim: str = Field(sa_column=Column(String(12), primary_key=True))
    key: str = Field(sa_column=Column(String(260), primary_key=True))
    day: date = Field(sa_column=Column(Date, primary_key=True))
    measure: str = Field(sa_column=Column(String(24), primary_key=True))
    n: int = Field(sa_column=Column(Integer, nullable=False))


class ReportDue(SQLModel, table=True):
    """Counts by (dimension, key, due day, closing day, measure); ``OPEN_DAY``: open / none."""

    __tablename__ = "report_due"
    __table_args__ = (
        Index("ix_report_due_dim_closed", "dim", "closed_day", "due_day", "key", "measure", "n"),
    )

    dim: str = Field(sa_column=Column(String(12), primary_key=True))
    key: str = Field(sa_column=Column(String(260), primary_key=True))
    due_day: date = Field(sa_column=Column(Date, primary_key=True))
    closed_day: date = Field(sa_column=Column(Date, primary_key=True))
    measure: str = Field(sa_column=Column(String(24), primary_key=True))
    n: int = Field(sa_column=Column(Integer, nullable=False))


class WarnedDossier(SQLModel):
    """An open dossier the SLA clock warned about (``sla.warning`` with no step): the
    columns every warning table shares."""

    code: str = Field(primary_key=True, max_length=60)
    office: str | None = Field(default=None, max_length=60)
    due_at: datetime = Field(sa_type=AwareDateTime, nullable=False)
    warned_at: datetime = Field(sa_type=AwareDateTime, nullable=False)


class DueSoon(WarnedDossier, table=True):
    """A dossier the SLA clock said is due soon (``sla.warning`` kind ``due_soon``)."""

    __tablename__ = "report_due_soon"


class NeedsApology(WarnedDossier, table=True):
    """A dossier whose office must issue the apology letter before the due time
    (``sla.warning`` kind ``apology_needed``; văn bản xin lỗi, Mẫu 04)."""

    __tablename__ = "report_needs_apology"


TABLES: list[Table] = [
    table(ReportFact),
    table(ReportDay),
    table(ReportDue),
    table(DueSoon),
    table(NeedsApology),
]


async def add_counts(session: AsyncSession, changes: Mapping[DayKey | DueKey, int]) -> None:
    """Add ``changes`` to the aggregate rows (upsert ``n = n + change``), in two statements."""
    day_rows = [
        {"dim": k.dim, "key": k.key, "day": k.day, "measure": k.measure, "n": n}
        for k, n in changes.items()
        if isinstance(k, DayKey)
    ]
    due_rows = [
        {
            "dim": k.dim,
            "key": k.key,
            "due_day": k.due_day,
            "closed_day": k.closed_day,
            "measure": k.measure,
            "n": n,
        }
        for k, n in changes.items()
        if isinstance(k, DueKey)
    ]
    for model, rows, keys in (
        (ReportDay, day_rows, ["dim", "key", "day", "measure"]),
        (ReportDue, due_rows, ["dim", "key", "due_day", "closed_day", "measure"]),
    ):
        if not rows:
            continue
        target = table(model)
        statement = upsert_insert(session, target)
        await session.exec(
            statement.on_conflict_do_update(
                index_elements=keys, set_={"n": target.c.n + statement.excluded.n}
            ),
            params=rows,
        )
