"""The report's HTTP side: ``/api/v1/reports/*``, the ``/dashboard`` page, the gauges.

Access: the reports (``GET /api/v1/reports/sla``, ``GET /api/v1/reports/dashboard``) and
``/dashboard`` with its assets are public, no API key: they hold aggregate rates and
dossier codes with their unit, office and due time, no personal data, and the dashboard
is a wall display whose script calls its data endpoint without a key. Recomputing the
aggregates (``POST /api/v1/reports/recompute``) needs an admin key (401 / 403).

Gauges ``motcua_on_time_rate{unit,field}`` and ``motcua_rate_766{unit,field}`` hold the
current month's rates, refreshed every ``GAUGE_SECONDS``; labels are unit and field codes
only (never personal data); a pair with nothing to count has no series.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, HTMLResponse, Response
from prometheus_client import Gauge

from services.notify.reports import domain, export, query, store
from services.notify.reports.projection import recompute
from services.notify.reports.store import DueSoon, NeedsApology, WarnedDossier
from shared.auth import Authenticator, Role
from shared.clock import Clock, in_vietnam, utc_now
from shared.errors import Invalid, InvalidFields, NotFound
from shared.service import ServiceRuntime, every

log = logging.getLogger(__name__)

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
_DASHBOARD = resources.files("services.notify.dashboard")
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}

GroupBy = Literal["unit", "field", "procedure", "level", "channel"]


def month_of(day: date) -> tuple[date, date]:
    """The first and last day of ``day``'s month."""
    first = day.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return first, last


class Reports:
    """The report's use cases over notify's database."""

    def __init__(self, runtime: ServiceRuntime, *, clock: Clock = utc_now) -> None:
        self.runtime = runtime
        self.clock = clock

    def today(self) -> date:
        """Today in Vietnam."""
        return in_vietnam(self.clock()).date()

    async def report(self, first: date, last: date, group_by: str) -> query.Report:
        """The report of ``[first, last]`` grouped by ``group_by``."""
        period = domain.Period(first=first, last=last, today=self.today())
        async with self.runtime.db.sessions() as session:
            return await query.sla_report(session, period, group_by)

    async def recompute(self) -> int:
        """Rebuild the aggregates from the fact table; return the facts read."""
        async with self.runtime.db.transaction() as session:
            return await recompute(session)

    async def dashboard(self) -> dict[str, Any]:
        """Today's and this month's rates per unit; overdue, due-soon and needs-apology
        dossiers (codes, units or offices, due times: no personal data)."""
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


def router(reports: Reports, auth: Authenticator) -> APIRouter:
    """``/api/v1/reports/*`` and ``/dashboard``: public (aggregate rates, no personal
    data; the wall display calls its data endpoint without a key), except the recompute,
    which needs an admin key."""
    api = APIRouter(tags=["reports"])

    @api.get("/api/v1/reports/sla", response_model=None)
    async def sla_report(
        first: Annotated[date, Query(alias="from", description="First day (Vietnam date).")],
        last: Annotated[date, Query(alias="to", description="Last day, included.")],
        group_by: GroupBy = "unit",
        format: Literal["json", "csv", "xlsx"] = "json",
    ) -> dict[str, Any] | Response:
        """The early / on-time / late report (Biểu 06/VPCP/KSTT) of a period.

        - received = carried over (received before ``from``, not finished or withdrawn
          before it) + new online + new at the counter or by post (received within);
        - finished within the period: early, on time, late (the SLA clock's class);
        - open at the end of the period, or now if earlier: overdue when due before that
          day (by date: a dossier due today is still within time today), else within time;
        - ``on_time_rate`` = (early + on time) ÷ finished × 100;
        - ``rate_766`` = (finished early or on time + open within time) ÷ (finished +
          open) × 100, a dossier with more than one supplement request counting late;
        - withdrawn or refused dossiers (``withdrawn_or_refused``) are in no rate;
        - rates have two decimals (half up), ``null`` when nothing to count.
        """
        if last < first:
            raise Invalid("`to` is before `from`")
        problems = period_problems(first, last, reports.today())
        if problems:
            raise InvalidFields(problems, location="query")
        report = await reports.report(first, last, group_by)
        name = f"bao-cao-{group_by}-{first.isoformat()}-{last.isoformat()}"
        if format == "csv":
            return Response(
                "\ufeff" + export.to_csv(report),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{name}.csv"'},
            )
        if format == "xlsx":
            return Response(
                export.to_xlsx(report),
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                headers={"content-disposition": f'attachment; filename="{name}.xlsx"'},
            )
        return query.report_json(report)

    @api.post(
        "/api/v1/reports/recompute",
        dependencies=[Depends(auth.require(Role.ADMIN))],
        responses={
            401: {"description": "No live API key."},
            403: {"description": "Not an admin key."},
        },
    )
    async def recompute_aggregates() -> dict[str, int]:
        """Rebuild the pre-aggregated counts from the per-dossier facts (admin key)."""
        return {"facts": await reports.recompute()}

    @api.get("/api/v1/reports/dashboard")
    async def dashboard_data() -> dict[str, Any]:
        """What ``/dashboard`` shows: today's and this month's rates per unit, lists.
        Public: the wall display calls it without a key."""
        return await reports.dashboard()

    @api.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    async def dashboard_page() -> HTMLResponse:
        return HTMLResponse(_DASHBOARD.joinpath("index.html").read_text("utf-8"))

    @api.get("/dashboard/{asset}", include_in_schema=False)
    async def dashboard_asset(asset: str) -> FileResponse:
        if asset not in _ASSETS:
            raise NotFound("Not Found")
        with resources.as_file(_DASHBOARD.joinpath(asset)) as path:
            return FileResponse(path, media_type=_ASSETS[asset])

    return api
