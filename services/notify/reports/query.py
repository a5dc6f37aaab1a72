"""Reading the report: three grouped sums over the aggregates, never a scan of dossiers.

For a period ``[from, to]`` (Vietnam dates) grouped by one dimension:

1. by-day counts summed over the period's days, by key and measure;
2. the same over the days after the period (to walk "open now" back to the period end);
3. by-due counts of dossiers not closed by the period's last counted day: those open now,
   and those due before ``Period.overdue_before`` (overdue at the end).

The rows scanned grow with (keys × days in and after the period), not with dossiers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from services.notify.reports import domain
from services.notify.reports.store import (
    NeedsApology,
    ReportDay,
    ReportDue,
    ReportFact,
    WarnedDossier,
)
from shared.calendar import VN_TZ
from shared.catalogue import Catalogue, seed_catalogue

Sums = dict[str, dict[str, int]]
"""Key → measure → sum."""
W = TypeVar("W", bound=WarnedDossier)


@dataclass(frozen=True, slots=True)
class Row:
    """One key's line of the report."""

    key: str
    label: str
    counts: domain.Counts


@dataclass(frozen=True, slots=True)
class Report:
    """The report of one period grouped by one dimension."""

    period: domain.Period
    group_by: str
    rows: list[Row]
    total: domain.Counts


async def _day_sums(session: AsyncSession, dim: str, first: date, last: date | None) -> Sums:
    day = col(ReportDay.day)
    query = (
        select(ReportDay.key, ReportDay.measure, func.sum(ReportDay.n))
        .where(ReportDay.dim == dim, day >= first)
        .group_by(col(ReportDay.key), col(ReportDay.measure))
    )
    if last is not None:
        query = query.where(day <= last)
    sums: Sums = defaultdict(dict)
    for key, measure, n in (await session.exec(query)).all():
        sums[key][measure] = int(n or 0)
    return sums


async def _due_sums(session: AsyncSession, dim: str, period: domain.Period) -> tuple[Sums, Sums]:
    closed_day = col(ReportDue.closed_day)
    query = (
        select(
            ReportDue.key,
            ReportDue.measure,
            func.sum(case((closed_day == domain.OPEN_DAY, ReportDue.n), else_=0)),
            func.sum(case((col(ReportDue.due_day) < period.overdue_before, ReportDue.n), else_=0)),
        )
        .where(ReportDue.dim == dim, closed_day > period.last_counted)
        .group_by(col(ReportDue.key), col(ReportDue.measure))
    )
    open_now: Sums = defaultdict(dict)
    overdue: Sums = defaultdict(dict)
    for key, measure, now_n, overdue_n in (await session.exec(query)).all():
        open_now[key][measure] = int(now_n or 0)
        overdue[key][measure] = int(overdue_n or 0)
    return open_now, overdue


async def sla_report(
    session: AsyncSession,
    period: domain.Period,
    group_by: str,
    *,
    catalogue: Catalogue | None = None,
) -> Report:
    """The Biểu 06 report of ``period`` grouped by ``group_by`` (a dimension name).

    Rows whose every count is zero are left out; the total adds every row.
    """
    in_period = await _day_sums(session, group_by, period.first, period.last)
    after = await _day_sums(session, group_by, period.last + timedelta(days=1), None)
    open_now, overdue = await _due_sums(session, group_by, period)
    rows: list[Row] = []
    total = domain.Counts()
    keys = set(in_period) | set(after) | set(open_now)
    for key in sorted(keys):
        counts = domain.counts_from(
            in_period.get(key, {}), after.get(key, {}), open_now.get(key, {}), overdue.get(key, {})
        )
        if domain.is_empty(counts):
            continue
        rows.append(Row(key, label_of(group_by, key, catalogue or seed_catalogue()), counts))
        total.add(counts)
    return Report(period=period, group_by=group_by, rows=rows, total=total)


def label_of(group_by: str, key: str, catalogue: Catalogue) -> str:
    """A key's Vietnamese label (units are shown by their agency code)."""
    if group_by == "level":
        return domain.LEVEL_LABELS.get(key, key)
    if group_by == "channel":
        return domain.CHANNEL_LABELS.get(key, key)
    if group_by == "procedure":
        procedure = catalogue.get(key)
        return procedure.name if procedure else key
    return key


def procedure_text(code: str, catalogue: Catalogue) -> str:
    """A procedure as e-mails to office heads name it: ``code - name``, or the code alone
    when the catalogue does not know it."""
    name = label_of("procedure", code, catalogue)
    return code if name == code else f"{code} - {name}"


def _rate(value: Any) -> float | None:
    return None if value is None else float(value)


def counts_json(counts: domain.Counts) -> dict[str, Any]:
    """The contract's counts and rates of one row (or the total)."""
    return {
        "received": {
            "total": counts.received,
            "carried_over": counts.carried_over,
            "new_online": counts.new_online,
            "new_counter_post": counts.new_counter_post,
        },
        "finished": {
            "total": counts.finished,
            "early": counts.early,
            "on_time": counts.on_time,
            "late": counts.late,
        },
        "open": {
            "total": counts.open_total,
            "within_time": counts.within_time,
            "overdue": counts.overdue,
        },
        "withdrawn_or_refused": counts.excluded,
        "on_time_rate": _rate(domain.on_time_rate(counts)),
        "rate_766": _rate(domain.rate_766(counts)),
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as the JSON contract of ``GET /api/v1/reports/sla``."""
    return {
        "from": report.period.first.isoformat(),
        "to": report.period.last.isoformat(),
        "group_by": report.group_by,
        "rows": [{"key": r.key, "label": r.label, **counts_json(r.counts)} for r in report.rows],
        "total": counts_json(report.total),
    }


def start_of(day: date) -> datetime:
    """Midnight of a Vietnam date, as an aware instant."""
    return datetime.combine(day, time(0), tzinfo=VN_TZ)


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
