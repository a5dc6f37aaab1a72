"""The calendar's data: working hours, special days, duration units.

Everything here is an immutable value; :mod:`shared.calendar.duetime` computes with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from itertools import pairwise
from zoneinfo import ZoneInfo

from shared.errors import Invalid, Unavailable

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
"""Every time the calendar returns is in this zone (UTC+07:00, no daylight saving)."""

WORKING_DAY = timedelta(hours=8)
"""One working day (ngày làm việc) is eight working hours, whatever the daily schedule."""


class CalendarRangeError(Unavailable, ValueError):
    """A computation needs a day outside the years the calendar knows; never guessed
    (503 where it reaches a request: the server's calendar lacks the year)."""


class CalendarEditError(Invalid, ValueError):
    """Special days, or a province's edits, refused: the message names the day, row or
    file and what is wrong (422 where it reaches a request)."""


class DayKind(StrEnum):
    """What a special day changes in the weekly pattern."""

    OFF = "off"
    """A day off (ngày nghỉ): a holiday, an observed day, or a swapped day off."""
    MAKEUP_WORKDAY = "makeup_workday"
    """A make-up working day (ngày làm bù), usually a Saturday given up for a swap."""


@dataclass(frozen=True, slots=True)
class SpecialDay:
    """One row of the special-days table; ``source`` says where the row comes from."""

    day: date
    kind: DayKind
    description: str
    source: str

    def __post_init__(self) -> None:
        if not self.source.strip():
            raise ValueError(f"special day {self.day.isoformat()} has no source")


@dataclass(frozen=True, slots=True)
class WorkPeriod:
    """A span of working time within one day, ``start`` included, ``end`` excluded."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working periods are wall-clock times in Vietnam, without a zone")
        if self.start >= self.end:
            raise ValueError(f"working period {self.start}-{self.end} ends before it starts")

    @property
    def length(self) -> timedelta:
        """The working time in the period."""
        return _as_timedelta(self.end) - _as_timedelta(self.start)


def _as_timedelta(clock: time) -> timedelta:
    return timedelta(
        hours=clock.hour, minutes=clock.minute, seconds=clock.second, microseconds=clock.microsecond
    )


Day = tuple[WorkPeriod, ...]
"""The working periods of one day, in order and not overlapping; empty for a day off."""


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """Working periods per weekday (Monday first) and on a make-up working day.

    Invariant: each day's periods are sorted and do not overlap.
    """

    weekly: tuple[Day, Day, Day, Day, Day, Day, Day]
    makeup_day: Day

    def __post_init__(self) -> None:
        for periods in (*self.weekly, self.makeup_day):
            for before, after in pairwise(periods):
                if after.start < before.end:
                    raise ValueError(f"working periods overlap: {before} and {after}")

    @classmethod
    def monday_to_friday(cls, *periods: tuple[str, str]) -> WorkingHours:
        """The same periods ("HH:MM", "HH:MM") Monday to Friday and on make-up days."""
        day = tuple(WorkPeriod(time.fromisoformat(a), time.fromisoformat(b)) for a, b in periods)
        return cls(weekly=(day, day, day, day, day, (), ()), makeup_day=day)


HOURS_0730 = WorkingHours.monday_to_friday(("07:30", "11:30"), ("13:00", "17:00"))
"""The default: Monday to Friday 07:30–11:30 and 13:00–17:00."""
HOURS_0700 = WorkingHours.monday_to_friday(("07:00", "11:30"), ("13:30", "17:00"))
"""The other common schedule: Monday to Friday 07:00–11:30 and 13:30–17:00."""
DEFAULT_HOURS = HOURS_0730

DEFAULT_SAME_DAY_CUTOFF = time(15, 0)
"""Same-day dossiers received before this time are due at the end of that working day."""


class DurationUnit(StrEnum):
    """How a procedure's processing time (thời hạn giải quyết) is published."""

    WORKING_DAYS = "working_days"
    """Ngày làm việc: eight working hours each; fractions (half days) allowed."""
    WORKING_HOURS = "working_hours"
    """Giờ làm việc."""
    CALENDAR_DAYS = "calendar_days"
    """Ngày: whole days of 24 hours; the due date is pushed off days off."""
    SAME_DAY = "same_day"
    """Trong ngày: due at the end of the working day (see the cut-off)."""
    NONE = "none"
    """No due time (không quy định thời hạn)."""


@dataclass(frozen=True, slots=True, init=False)
class Duration:
    """A processing time: a non-negative amount of a unit.

    ``value`` is kept as a :class:`~decimal.Decimal` (a float goes through its shortest
    repr, so ``0.5`` is exactly one half). It is ignored for ``same_day`` and ``none``,
    and must be whole for ``calendar_days``.
    """

    value: Decimal
    unit: DurationUnit
    # Converted once here: the SLA tracker computes millions of due times.
    _working_time: timedelta | None = field(repr=False, compare=False)

    def __init__(self, value: Decimal | float | str, unit: DurationUnit | str) -> None:
        try:
            amount = value if isinstance(value, Decimal) else Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"duration value {value!r} is not a number") from None
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"duration value must be a finite number >= 0, got {value!r}")
        try:
            kind = DurationUnit(unit)
        except ValueError:
            units = ", ".join(u.value for u in DurationUnit)
            raise ValueError(f"unknown duration unit {unit!r}; expected one of {units}") from None
        if kind is DurationUnit.CALENDAR_DAYS and amount != amount.to_integral_value():
            raise ValueError(f"calendar_days must be a whole number, got {value!r}")
        object.__setattr__(self, "value", amount)
        object.__setattr__(self, "unit", kind)
        object.__setattr__(self, "_working_time", _working_time(amount, kind))

    def working_time(self) -> timedelta:
        """The working time of a ``working_days`` or ``working_hours`` duration.

        Rounded to the microsecond (half to even); a ValueError for the other units.
        """
        if self._working_time is None:
            raise ValueError(f"{self.unit.value} is not an amount of working time")
        return self._working_time


def _working_time(amount: Decimal, unit: DurationUnit) -> timedelta | None:
    if unit is DurationUnit.WORKING_DAYS:
        per_unit = WORKING_DAY
    elif unit is DurationUnit.WORKING_HOURS:
        per_unit = timedelta(hours=1)
    else:
        return None
    micros = amount * (per_unit // timedelta(microseconds=1))
    return timedelta(microseconds=int(micros.to_integral_value(ROUND_HALF_EVEN)))
