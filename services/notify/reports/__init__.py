"""The early / on-time / late report: facts and counts from events, the query, exports.

``domain`` (pure rules), ``store`` (tables), ``projection`` (events in), ``query``
(the report), ``export`` (CSV, XLSX), ``api`` (HTTP, dashboard, gauges).
"""

from services.notify.reports.projection import ReportProjection, recompute
from services.notify.reports.store import TABLES

__all__ = ["TABLES", "ReportProjection", "recompute"]
