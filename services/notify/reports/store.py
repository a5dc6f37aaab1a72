"""The report's tables: one fact row per dossier, and the pre-aggregated counts.

Invariant: ``report_day`` and ``report_due`` always equal ``domain.aggregate`` of every
``report_fact`` row (rows whose count fell to zero may remain); they move in the same
transaction as the facts. ``report_due_soon`` and ``report_needs_apology`` hold the SLA
clock's dossier-level warnings of open dossiers for the dashboard and the digest (dossier
codes, offices and due times only, no personal data); a row goes when its dossier closes.

Every statement the report runs on these tables is a function here, taking the caller's
session (the inbox transaction of a batch, a recompute's, a reader's).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import TypeVar

from sqlalchemy import Column, Date, Index, Integer, String, Table, case, func
from sqlmodel import Field, SQLModel, col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from services.notify.reports.domain import OPEN_DAY, DayKey, DueKey, Fact, Period, start_of
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


class ReportMonth(SQLModel, table=True):
    """The monthly roll-up of ``report_day``: counts by (dimension, key, first day of the
    month, measure).

    Invariant: each row equals the sum of ``report_day`` over its month; it moves with them
    in the same statement set (``add_counts``), is cleared with them (``clear_counts``).
    """

    __tablename__ = "report_month"
    __table_args__ = (Index("ix_report_month_dim_month", "dim", "month", "key", "measure", "n"),)

    dim: str = Field(sa_column=Column(String(12), primary_key=True))
    key: str = Field(sa_column=Column(String(260), primary_key=True))
    month: date = Field(sa_column=Column(Date, primary_key=True))
    measure: str = Field(sa_column=Column(String(24), primary_key=True))
    n: int = Field(sa_column=Column(Integer, nullable=False))


class ReportDueMonth(SQLModel, table=True):
    """The monthly roll-up of ``report_due``: counts by (dimension, key, month of the due
    day, month of the closing day, measure); a dossier still open has ``OPEN_MONTH``.

    Invariant: each row equals the sum of ``report_due`` over its two months; maintained
    like ``ReportMonth``.
    """

    __tablename__ = "report_due_month"
    __table_args__ = (
        Index(
            "ix_report_due_month_dim_closed",
            "dim",
            "closed_month",
            "due_month",
            "key",
            "measure",
            "n",
        ),
    )

    dim: str = Field(sa_column=Column(String(12), primary_key=True))
    key: str = Field(sa_column=Column(String(260), primary_key=True))
    due_month: date = Field(sa_column=Column(Date, primary_key=True))
    closed_month: date = Field(sa_column=Column(Date, primary_key=True))
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
    table(ReportMonth),
    table(ReportDueMonth),
    table(DueSoon),
    table(NeedsApology),
]

Sums = dict[str, dict[str, int]]
"""Key → measure → sum."""
W = TypeVar("W", bound=WarnedDossier)


# --- the projection ---------------------------------------------------------------------


_FACTS = table(ReportFact)
_FACT_COLUMNS = Fact.__slots__
"""The fact table's columns, in ``Fact``'s order (the same names)."""


async def facts_of(session: AsyncSession, codes: Collection[str]) -> dict[str, Fact]:
    """The stored facts of these dossiers, by code (one ``IN (...)`` query of the columns,
    no ORM object)."""
    if not codes:
        return {}
    conn = await session.connection()
    rows = await conn.execute(
        select(*(_FACTS.c[name] for name in _FACT_COLUMNS)).where(_FACTS.c.code.in_(list(codes)))
    )
    return {row[0]: Fact(*row) for row in rows}


async def put_facts(session: AsyncSession, facts: Iterable[Fact]) -> None:
    """Store these facts whole (one ``INSERT ... ON CONFLICT (code) DO UPDATE`` executed
    for many rows, no ORM object): a new dossier's row is added, a known one's replaced."""
    rows = [{name: getattr(fact, name) for name in _FACT_COLUMNS} for fact in facts]
    if not rows:
        return
    statement = upsert_insert(session, _FACTS)
    statement = statement.on_conflict_do_update(
        index_elements=["code"],
        set_={name: statement.excluded[name] for name in _FACT_COLUMNS if name != "code"},
    )
    await (await session.connection()).execute(statement, rows)


async def replace_warned(
    session: AsyncSession,
    model: type[WarnedDossier],
    warned: Mapping[str, Mapping[str, object]],
    closed: Collection[str],
) -> None:
    """Replace ``model``'s rows of the dossiers in ``warned`` with those rows (column name
    to value), and delete the rows of the dossiers in ``closed`` (a closed dossier gets no
    new row): one delete and one multi-row insert, no ORM object.

    Invariant: a dossier has a row only while open, holding its latest warning of that kind.
    """
    target = table(model)
    gone = set(closed) | set(warned)
    if not gone:
        return
    conn = await session.connection()
    await conn.execute(delete(target).where(target.c.code.in_(list(gone))))
    rows = [dict(row) for code, row in warned.items() if code not in closed]
    if rows:
        await conn.execute(target.insert(), rows)


async def clear_counts(session: AsyncSession) -> None:
    """Delete every aggregate row (``report_day``, ``report_due`` and their monthly
    roll-ups): the start of a rebuild, in the rebuild's transaction."""
    for model in (ReportDay, ReportDue, ReportMonth, ReportDueMonth):
        await session.exec(delete(model))


async def facts_after(session: AsyncSession, last: str, limit: int) -> list[ReportFact]:
    """Up to ``limit`` fact rows whose code comes after ``last``, by code (a page of a
    rebuild)."""
    rows = await session.exec(
        select(ReportFact)
        .where(col(ReportFact.code) > last)
        .order_by(col(ReportFact.code))
        .limit(limit)
    )
    return list(rows.all())


# --- the report -------------------------------------------------------------------------


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def next_month(day: date) -> date:
    """The first day of the month after ``day``'s."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


OPEN_MONTH = month_start(OPEN_DAY)
"""``report_due_month.closed_month`` of a dossier still open (no real closing is in that
month)."""


async def day_sums(session: AsyncSession, dim: str, first: date, last: date | None) -> Sums:
    """By-day counts of ``dim`` summed over the days ``[first, last]`` (``None``: no end),
    by key and measure.

    The whole months of the range are read from the monthly roll-up (``report_month``),
    the days of the partial months at either end from ``report_day``: at most about 60
    daily rows and one row a month per key and measure, whatever the range's length.
    """
    months_from = first if first.day == 1 else next_month(first)
    months_to = None if last is None else month_start(last + timedelta(days=1))
    sums: Sums = defaultdict(dict)
    if months_to is not None and months_from >= months_to:  # no whole month
        await _add_day_rows(session, sums, dim, first, last + timedelta(days=1) if last else None)
        return sums
    month = col(ReportMonth.month)
    query = (
        select(ReportMonth.key, ReportMonth.measure, func.sum(ReportMonth.n))
        .where(ReportMonth.dim == dim, month >= months_from)
        .group_by(col(ReportMonth.key), col(ReportMonth.measure))
    )
    if months_to is not None:
        query = query.where(month < months_to)
    _add_rows(sums, (await session.exec(query)).all())
    if first < months_from:
        await _add_day_rows(session, sums, dim, first, months_from)
    if months_to is not None and last is not None and months_to <= last:
        await _add_day_rows(session, sums, dim, months_to, last + timedelta(days=1))
    return sums


async def _add_day_rows(
    session: AsyncSession, sums: Sums, dim: str, first: date, before: date | None
) -> None:
    """Add the by-day counts of the days ``[first, before)`` (``None``: no end) to ``sums``
    (one grouped query)."""
    day = col(ReportDay.day)
    query = (
        select(ReportDay.key, ReportDay.measure, func.sum(ReportDay.n))
        .where(ReportDay.dim == dim, day >= first)
        .group_by(col(ReportDay.key), col(ReportDay.measure))
    )
    if before is not None:
        query = query.where(day < before)
    _add_rows(sums, (await session.exec(query)).all())


def _add_rows(sums: Sums, rows: Iterable[tuple[str, str, int | None]]) -> None:
    for key, measure, n in rows:
        by_measure = sums[key]
        by_measure[measure] = by_measure.get(measure, 0) + int(n or 0)


async def due_sums(session: AsyncSession, dim: str, period: Period) -> tuple[Sums, Sums]:
    """By-due counts of ``dim`` of dossiers not closed by ``period``'s last counted day:
    those open now, and those due before ``Period.overdue_before``, by key and measure (one
    grouped query).

    A past period that ends on a month's last day is read from the monthly roll-up
    (``report_due_month``): then "closed after the last counted day" and "due before the
    day after the period" both fall on month boundaries. Any other period reads
    ``report_due``.
    """
    after = period.overdue_before
    if period.last_counted + timedelta(days=1) == after and after.day == 1:
        return await _due_month_sums(session, dim, after)
    closed_day = col(ReportDue.closed_day)
    query = (
        select(
            ReportDue.key,
            ReportDue.measure,
            func.sum(case((closed_day == OPEN_DAY, ReportDue.n), else_=0)),
            func.sum(case((col(ReportDue.due_day) < after, ReportDue.n), else_=0)),
        )
        .where(ReportDue.dim == dim, closed_day > period.last_counted)
        .group_by(col(ReportDue.key), col(ReportDue.measure))
    )
    return _split(await session.exec(query))


async def _due_month_sums(session: AsyncSession, dim: str, after: date) -> tuple[Sums, Sums]:
    """``due_sums`` from the monthly roll-up, for a period whose day after is ``after``, the
    first of a month: closed in or after that month (or open now), and due before it."""
    closed_month = col(ReportDueMonth.closed_month)
    query = (
        select(
            ReportDueMonth.key,
            ReportDueMonth.measure,
            func.sum(case((closed_month == OPEN_MONTH, ReportDueMonth.n), else_=0)),
            func.sum(case((col(ReportDueMonth.due_month) < after, ReportDueMonth.n), else_=0)),
        )
        .where(ReportDueMonth.dim == dim, closed_month >= after)
        .group_by(col(ReportDueMonth.key), col(ReportDueMonth.measure))
    )
    return _split(await session.exec(query))


def _split(rows: Iterable[tuple[str, str, int | None, int | None]]) -> tuple[Sums, Sums]:
    open_now: Sums = defaultdict(dict)
    overdue: Sums = defaultdict(dict)
    for key, measure, now_n, overdue_n in rows:
        open_now[key][measure] = int(now_n or 0)
        overdue[key][measure] = int(overdue_n or 0)
    return open_now, overdue


_OPEN_RECEIVED = (
    col(ReportFact.finished_at).is_(None),
    col(ReportFact.withdrawn_at).is_(None),
    col(ReportFact.received_at).is_not(None),
)
"""A fact received and not closed (finished, withdrawn or refused)."""


async def overdue_dossiers(
    session: AsyncSession, today: date, limit: int, *, unit: str | None = None
) -> list[ReportFact]:
    """Dossiers open now and overdue by date (due before today), oldest due first; of one
    receiving unit if ``unit`` is given."""
    query = select(ReportFact).where(col(ReportFact.due_at) < start_of(today))
    return await _open_facts(session, query, limit, unit)


async def needs_apology_dossiers(
    session: AsyncSession, today: date, limit: int, *, unit: str | None = None
) -> list[ReportFact]:
    """Dossiers open now whose office must issue the apology letter (a
    ``report_needs_apology`` row) and not overdue by date (due today or later), soonest due
    first; of one receiving unit if ``unit`` is given.

    Invariant: no dossier is in both this list and ``overdue_dossiers`` of the same day.
    """
    query = (
        select(ReportFact)
        .join(NeedsApology, col(NeedsApology.code) == col(ReportFact.code))
        .where(col(ReportFact.due_at) >= start_of(today))
    )
    return await _open_facts(session, query, limit, unit)


async def _open_facts(
    session: AsyncSession, query: SelectOfScalar[ReportFact], limit: int, unit: str | None
) -> list[ReportFact]:
    """``query``'s facts still open, by due time then code, at most ``limit``; of one
    receiving unit if ``unit`` is given."""
    query = (
        query.where(*_OPEN_RECEIVED)
        .order_by(col(ReportFact.due_at), col(ReportFact.code))
        .limit(limit)
    )
    if unit is not None:
        query = query.where(ReportFact.unit == unit)
    return list((await session.exec(query)).all())


async def warned_dossiers(
    session: AsyncSession, model: type[W], today: date, limit: int
) -> list[W]:
    """Dossiers with a row in ``model``'s warning table (open ones only: the projection
    drops a row when its dossier closes) not yet overdue by date, soonest due first."""
    rows = await session.exec(
        select(model)
        .where(col(model.due_at) >= start_of(today))
        .order_by(col(model.due_at), col(model.code))
        .limit(limit)
    )
    return list(rows.all())


# --- the aggregates ---------------------------------------------------------------------


def month_changes(
    changes: Mapping[DayKey | DueKey, int],
) -> tuple[Counter[tuple[str, str, date, str]], Counter[tuple[str, str, date, date, str]]]:
    """``changes`` summed by month: the changes of ``report_month`` (dim, key, month,
    measure) and of ``report_due_month`` (dim, key, due month, closing month, measure)."""
    days: Counter[tuple[str, str, date, str]] = Counter()
    dues: Counter[tuple[str, str, date, date, str]] = Counter()
    for k, n in changes.items():
        if isinstance(k, DayKey):
            days[k.dim, k.key, month_start(k.day), k.measure] += n
        else:
            dues[k.dim, k.key, month_start(k.due_day), month_start(k.closed_day), k.measure] += n
    return days, dues


async def add_counts(session: AsyncSession, changes: Mapping[DayKey | DueKey, int]) -> None:
    """Add ``changes`` to the aggregate rows and to their monthly roll-ups (upsert ``n = n
    + change``), in four statements, in the caller's transaction."""
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
    months, due_months = month_changes(changes)
    month_rows = [
        {"dim": dim, "key": key, "month": month, "measure": measure, "n": n}
        for (dim, key, month, measure), n in months.items()
    ]
    due_month_rows = [
        {
            "dim": dim,
            "key": key,
            "due_month": due,
            "closed_month": closed,
            "measure": measure,
            "n": n,
        }
        for (dim, key, due, closed, measure), n in due_months.items()
    ]
    for model, rows in (
        (ReportDay, day_rows),
        (ReportDue, due_rows),
        (ReportMonth, month_rows),
        (ReportDueMonth, due_month_rows),
    ):
        if not rows:
            continue
        target = table(model)
        statement = upsert_insert(session, target)
        await session.exec(
            statement.on_conflict_do_update(
                index_elements=[c.name for c in target.primary_key.columns],
                set_={"n": target.c.n + statement.excluded.n},
            ),
            params=rows,
        )
