"""The early / on-time / late report: facts and counts from events, the query, exports.

``domain`` (pure rules), ``store`` (tables), ``projection`` (events in), ``query``
(the report), ``export`` (CSV, XLSX), ``service`` (the use cases, the gauges), ``api``
(HTTP, the dashboard), ``satisfaction`` (the ratings and index 5.4 of 766).
"""

from services.notify.reports.projection import ReportProjection, recompute
from services.notify.reports.service import Reports
from services.notify.reports.store import TABLES as _FACT_TABLES
from services.notify.store.ratings import TABLES as _RATING_TABLES

TABLES = [*_FACT_TABLES, *_RATING_TABLES]
"""The report's tables: facts and counts, and the ratings (``satisfaction``)."""

__all__ = ["TABLES", "ReportProjection", "Reports", "recompute"]
