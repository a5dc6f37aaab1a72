"""The report's HTTP side: ``/api/v1/reports/*`` and the ``/dashboard`` page (the use
cases and the gauges: ``service``).

Access: the reports (``GET /api/v1/reports/sla``, ``GET /api/v1/reports/dashboard``) and
``/dashboard`` with its assets are public, no API key: they hold aggregate rates and
dossier codes with their unit, office and due time, no personal data, and the dashboard
is a wall display whose script calls its data endpoint without a key. Recomputing the
aggregates (``POST /api/v1/reports/recompute``) needs an admin key (401 / 403).
"""

from __future__ import annotations

from datetime import date
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, HTMLResponse, Response

from services.notify.reports import export, query
from services.notify.reports.service import Reports, period_problems
from shared.auth import Authenticator, Role
from shared.errors import Invalid, InvalidFields, NotFound

__all__ = ["GroupBy", "Reports", "router"]

_DASHBOARD = resources.files("services.notify.dashboard")
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

GroupBy = Literal["unit", "field", "procedure", "level", "channel"]
ReportFormat = Literal["json", "csv", "xlsx"]


def router(reports: Reports, auth: Authenticator) -> APIRouter:
    """``/api/v1/reports/*`` and ``/dashboard``: public (aggregate rates, no personal
    data; the wall display calls its data endpoint without a key), except the recompute,
    which needs an admin key."""
    api = APIRouter(tags=["reports"])
    _report_routes(api, reports)
    _recompute_route(api, reports, auth)
    _dashboard_routes(api, reports)
    return api


def _exported(
    report: query.Report, format: ReportFormat, name: str, *, rated: bool = False
) -> dict[str, Any] | Response:
    """The report as JSON, or as a CSV or XLSX attachment named ``name``; with ``rated``,
    its satisfaction blocks too."""
    if format == "csv":
        return Response(
            "\ufeff" + export.to_csv(report, rated=rated),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}.csv"'},
        )
    if format == "xlsx":
        return Response(
            export.to_xlsx(report, rated=rated),
            media_type=_XLSX,
            headers={"content-disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return query.report_json(report, satisfaction=rated)


def _report_routes(api: APIRouter, reports: Reports) -> None:
    """``GET /api/v1/reports/sla``: public."""

    @api.get("/api/v1/reports/sla", response_model=None)
    async def sla_report(
        first: Annotated[date, Query(alias="from", description="First day (Vietnam date).")],
        last: Annotated[date, Query(alias="to", description="Last day, included.")],
        group_by: GroupBy = "unit",
        format: ReportFormat = "json",
        satisfaction: Annotated[
            bool, Query(description="Add each row's satisfaction block (ratings, index 5.4).")
        ] = False,
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
        - rates have two decimals (half up), ``null`` when nothing to count;
        - with ``satisfaction=true``, each row and the total add ``satisfaction``: the
          ratings given in the period by level (``rat_hai_long``, ``hai_long``,
          ``khong_hai_long``, ``rated``), ``late_share`` (100 − ``rate_766``: late over
          finished + open), ``dissatisfied_share`` (không hài lòng over rated) and
          ``index_5_4`` = 100 − late share − dissatisfied share (766 index 5.4; at least
          0, ``null`` when either share has nothing to count); CSV and XLSX add the
          columns.
        """
        if last < first:
            raise Invalid("`to` is before `from`")
        problems = period_problems(first, last, reports.today())
        if problems:
            raise InvalidFields(problems, location="query")
        report = await reports.report(first, last, group_by)
        return _exported(
            report,
            format,
            f"bao-cao-{group_by}-{first.isoformat()}-{last.isoformat()}",
            rated=satisfaction,
        )


def _recompute_route(api: APIRouter, reports: Reports, auth: Authenticator) -> None:
    """``POST /api/v1/reports/recompute``: admin key."""

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


def _dashboard_routes(api: APIRouter, reports: Reports) -> None:
    """``GET /api/v1/reports/dashboard``, ``/dashboard`` and its assets: public."""

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
