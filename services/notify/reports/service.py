"""The report's use cases: the report of a period, the dashboard's data, the recompute,
the gauges.

Gauges ``motcua_on_time_rate{unit,field}`` and ``motcua_rate_766{unit,field}`` hold the
current month's rates, refreshed every ``GAUGE_SECONDS``; labels are unit and field codes
only (never personal data); a pair with nothing to count has no series. Procedure names
come from the catalogue notify follows (``services.notify.catalogue``).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prometheus_client import Gauge

from services.notify.catalogue import CatalogueInUse
from services.notify.reports import domain, query, store
from services.notify.reports.projection import recompute
from services.notify.reports.store import DueSoon, NeedsApology, WarnedDossier
from shared.clock import Clock, in_vietnam, utc_now
from shared.service import ServiceRuntime, every

GAUGE_SECONDS = 60.0
ON_TIME_RATE = Gauge(
    "motcua_on_time_rate",
    "Early or on-time share of dossiers finished this month, percent.",
    ["unit", "field"],
)
RATE_766 = Gauge(
    "motcua_rate_766",
    "766 on-time rate this month (finished or open within time), percent.",
    ["unit", "field"],
)
_LIST_LIMIT = 100


def month_of(day: date) -> tuple[date, date]:
    """The first and last day of ``day``'s month."""
    first = day.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return first, last


class Reports:
    """The report's use cases over notify's database."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        clock: Clock = utc_now,
        catalogue: CatalogueInUse | None = None,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.catalogue = catalogue or CatalogueInUse()

    def today(self) -> date:
        """Today in Vietnam."""
        return in_vietnam(self.clock()).date()

    async def report(self, first: date, last: date, group_by: str) -> query.Report:
        """The report of ``[first, last]`` grouped by ``group_by``."""
        period = domain.Period(first=first, last=last, today=self.today())
        async with self.runtime.db.sessions() as session:
            await self.catalogue.restore(session)
            return await query.sla_report(session, period, group_by, catalogue=self.catalogue())

    async def recompute(self) -> int:
        """Rebuild the aggregates from the fact table; return the facts read."""
        async with self.runtime.db.transaction() as session:
            return await recompute(session)

    async def dashboard(self) -> dict[str, Any]:
        """Today's and this month's rates per unit, this month's satisfaction per unit;
        overdue, due-soon and needs-apology dossiers (codes, units or offices, due times:
        no personal data)."""
        today = self.today()
        first, last = month_of(today)
        day_report = await self.report(today, today, "unit")
        month_report = await self.report(first, last, "unit")
        async with self.runtime.db.sessions() as session:
            overdue = await store.overdue_dossiers(session, today, _LIST_LIMIT)
            due_soon = await store.warned_dossiers(session, DueSoon, today, _LIST_LIMIT)
            needs_apology = await store.warned_dossiers(session, NeedsApology, today, _LIST_LIMIT)
        return {
            "today": query.report_json(day_report),
            "month": query.report_json(month_report),
            "satisfaction": query.satisfaction_json(month_report),
            "overdue": [
                {
                    "code": f.code,
                    "unit": f.unit,
                    "due_at": in_vietnam(f.due_at).isoformat() if f.due_at else None,
                }
                for f in overdue
            ],
            "due_soon": [_warned_json(d) for d in due_soon],
            "needs_apology": [_warned_json(d) for d in needs_apology],
            "generated_at": in_vietnam(self.clock()).isoformat(),
        }

    async def refresh_gauges(self) -> None:
        """Set the gauges to this month's rates per (unit, field)."""
        first, last = month_of(self.today())
        report = await self.report(first, last, domain.UNIT_FIELD)
        values = []
        for row in report.rows:
            unit, _, field = row.key.partition("|")
            values.append(
                (unit, field, domain.on_time_rate(row.counts), domain.rate_766(row.counts))
            )
        ON_TIME_RATE.clear()
        RATE_766.clear()
        for unit, field, on_time, r766 in values:
            if on_time is not None:
                ON_TIME_RATE.labels(unit, field).set(float(on_time))
            if r766 is not None:
                RATE_766.labels(unit, field).set(float(r766))

    async def gauges_forever(self) -> None:
        """Refresh the gauges until cancelled."""
        await every(GAUGE_SECONDS, self.refresh_gauges, "report gauges")


def _warned_json(row: WarnedDossier) -> dict[str, Any]:
    return {"code": row.code, "office": row.office, "due_at": in_vietnam(row.due_at).isoformat()}


EARLIEST_DAY = date(2000, 1, 1)
"""No dossier of the system is older: a report before it is a typo."""
YEARS_AHEAD = 10
"""How far past today a report may end (a due date can be in the future; a year 9999 is
a typo that dates cannot even hold once a day is added)."""


def period_problems(first: date, last: date, today: date) -> list[tuple[str, str]]:
    """What is wrong with the report period ``[first, last]``, by query field: each day
    between ``EARLIEST_DAY`` and ``YEARS_AHEAD`` years after ``today``."""
    latest = today.replace(year=today.year + YEARS_AHEAD, day=min(today.day, 28))
    return [
        (name, f"must be between {EARLIEST_DAY.isoformat()} and {latest.isoformat()}")
        for name, day in (("from", first), ("to", last))
        if not EARLIEST_DAY <= day <= latest
    ]
