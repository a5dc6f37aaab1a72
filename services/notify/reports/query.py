"""Reading the report: three grouped sums over the aggregates, never a scan of dossiers.

For a period ``[from, to]`` (Vietnam dates) grouped by one dimension:

1. by-day counts summed over the period's days, by key and measure;
2. the same over the days after the period (to walk "open now" back to the period end);
3. by-due counts of dossiers not closed by the period's last counted day: those open now,
   and those due before ``Period.overdue_before`` (overdue at the end).

Whole months are read from the monthly roll-ups (``report_month``, ``report_due_month``),
only the days of partial months from the daily rows: the rows scanned grow with (keys ×
(months + about 60 days)), not with dossiers nor with the period's length. The
statements are ``store.day_sums`` and ``store.due_sums``; the lists of dossiers (overdue,
needing the apology letter, warned) are ``store`` functions too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify.reports import domain, store
from services.notify.reports.satisfaction import Satisfaction, block_json, by_key
from services.notify.store import ratings as rating_store
from shared.catalogue import Catalogue, seed_catalogue


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
    satisfaction: dict[str, Satisfaction] = field(default_factory=dict)
    """Each row's ratings given in the period, by key (a key without any is absent)."""
    total_satisfaction: Satisfaction = field(default_factory=Satisfaction)


async def sla_report(
    session: AsyncSession,
    period: domain.Period,
    group_by: str,
    *,
    catalogue: Catalogue | None = None,
) -> Report:
    """The Biểu 06 report of ``period`` grouped by ``group_by`` (a dimension name).

    Rows whose every count is zero and that had no rating are left out; the total adds
    every row. Ratings count on the days they were given (``satisfaction``).
    """
    in_period = await store.day_sums(session, group_by, period.first, period.last)
    after = await store.day_sums(session, group_by, period.last + timedelta(days=1), None)
    open_now, overdue = await store.due_sums(session, group_by, period)
    rated = by_key(
        await rating_store.level_counts(session, group_by, period.first, period.last_counted)
    )
    rows: list[Row] = []
    total = domain.Counts()
    total_rated = Satisfaction()
    keys = set(in_period) | set(after) | set(open_now) | set(rated)
    for key in sorted(keys):
        counts = domain.counts_from(
            in_period.get(key, {}), after.get(key, {}), open_now.get(key, {}), overdue.get(key, {})
        )
        if domain.is_empty(counts) and key not in rated:
            continue
        if key in rated:
            total_rated.add(rated[key])
        rows.append(Row(key, label_of(group_by, key, catalogue or seed_catalogue()), counts))
        total.add(counts)
    return Report(
        period=period,
        group_by=group_by,
        rows=rows,
        total=total,
        satisfaction=rated,
        total_satisfaction=total_rated,
    )


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


def report_json(report: Report, *, satisfaction: bool = False) -> dict[str, Any]:
    """The report as the JSON contract of ``GET /api/v1/reports/sla``; with
    ``satisfaction``, each row and the total also hold their ``satisfaction`` block."""
    rows = [{"key": r.key, "label": r.label, **counts_json(r.counts)} for r in report.rows]
    total = counts_json(report.total)
    if satisfaction:
        for out, row in zip(rows, report.rows, strict=True):
            out["satisfaction"] = block_json(row.counts, report.satisfaction.get(row.key))
        total["satisfaction"] = block_json(report.total, report.total_satisfaction)
    return {
        "from": report.period.first.isoformat(),
        "to": report.period.last.isoformat(),
        "group_by": report.group_by,
        "rows": rows,
        "total": total,
    }


def satisfaction_json(report: Report) -> dict[str, Any]:
    """The satisfaction blocks alone (the dashboard's table): per row key, and the total."""
    return {
        "from": report.period.first.isoformat(),
        "to": report.period.last.isoformat(),
        "rows": [
            {"key": r.key, **block_json(r.counts, report.satisfaction.get(r.key))}
            for r in report.rows
        ],
        "total": block_json(report.total, report.total_satisfaction),
    }
