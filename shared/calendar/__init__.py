"""The working-day calendar and the due time (ngày hẹn trả), shared by intake and sla.

Exceptions: :class:`CalendarRangeError` (a :class:`ValueError`, and a
``shared.errors.Unavailable``) when a computation needs a day outside the known years;
:class:`CalendarEditError` (a :class:`ValueError`, and a ``shared.errors.Invalid``) for
refused special days or province edits; :class:`ValueError` for naive datetimes and bad
values.
"""

from shared.calendar.duetime import WorkCalendar
from shared.calendar.model import (
    DEFAULT_HOURS,
    DEFAULT_SAME_DAY_CUTOFF,
    HOURS_0700,
    HOURS_0730,
    VN_TZ,
    WORKING_DAY,
    CalendarEditError,
    CalendarRangeError,
    DayKind,
    Duration,
    DurationUnit,
    SpecialDay,
    WorkingHours,
    WorkPeriod,
)
from shared.calendar.overrides import (
    ProvinceOverrides,
    overrides_path,
    parse_rows,
    read_overrides,
    write_overrides,
)
from shared.calendar.seed import (
    build_calendar,
    default_calendar,
    load_calendar,
    province_table,
    shipped_data,
)
from shared.calendar.slip import format_slip_time

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_SAME_DAY_CUTOFF",
    "HOURS_0700",
    "HOURS_0730",
    "VN_TZ",
    "WORKING_DAY",
    "CalendarEditError",
    "CalendarRangeError",
    "DayKind",
    "Duration",
    "DurationUnit",
    "ProvinceOverrides",
    "SpecialDay",
    "WorkCalendar",
    "WorkPeriod",
    "WorkingHours",
    "build_calendar",
    "default_calendar",
    "format_slip_time",
    "load_calendar",
    "overrides_path",
    "parse_rows",
    "province_table",
    "read_overrides",
    "shipped_data",
    "write_overrides",
]
