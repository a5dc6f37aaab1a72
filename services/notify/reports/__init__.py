"""The early / on-time / late report: facts and counts from events, the query, exports.

``domain`` (pure rules), ``store`` (tables), ``projection`` (events in), ``query``
(the report), ``export`` (CSV, XLSX), ``service`` (the use cases, the gauges), ``api``
(HTTP, the dashboard).
"""

from services.notify.reports.projection import ReportProjection, recompute
from services.notify.reports.service import Reports
from services.notify.reports.store import TABLES

__all__ = ["TABLES", "ReportProjection", "Reports", "recompute"]
