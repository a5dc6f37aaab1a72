"""The due time (ngày hẹn trả) and the working time between two instants.

Pure computation over a precomputed table: one entry per day of the known years with
that day's working periods and the working time before it, so that adding any amount
is a binary search plus a walk over at most a day's periods.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from shared.calendar.model import (
    DEFAULT_HOURS,
    DEFAULT_SAME_DAY_CUTOFF,
    VN_TZ,
    CalendarRangeError,
    DayKind,
    Duration,
    DurationUnit,
    SpecialDay,
    WorkingHours,
    WorkPeriod,
)

_US = timedelta(microseconds=1)
_Span = tuple[int, int]
"""A working period as microseconds since local midnight: [start, end)."""


def _micros(clock: time) -> int:
    return ((clock.hour * 60 + clock.minute) * 60 + clock.second) * 1_000_000 + clock.microsecond


def _spans(periods: tuple[WorkPeriod, ...]) -> tuple[_Span, ...]:
    return tuple((_micros(p.start), _micros(p.end)) for p in periods)


def to_local(value: datetime, name: str) -> datetime:
    """``value`` in Vietnam time; a ValueError naming ``name`` if it is naive."""
    if value.tzinfo is VN_TZ:
        return value
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(VN_TZ)


class WorkCalendar:
    """Working time in Vietnam for the years ``first_year``..``last_year`` (inclusive).

    A day is a working day when its weekday has working periods and it is not an ``off``
    special day, or when it is a ``makeup_workday``. Special days outside the known
    years are ignored; any computation that needs a day outside them raises
    :class:`CalendarRangeError`. Inputs may be in any zone; outputs are in Vietnam time.
    """

    def __init__(
        self,
        special_days: Iterable[SpecialDay],
        *,
        first_year: int,
        last_year: int,
        hours: WorkingHours = DEFAULT_HOURS,
        same_day_cutoff: time = DEFAULT_SAME_DAY_CUTOFF,
    ) -> None:
        if first_year > last_year:
            raise ValueError(f"first_year {first_year} is after last_year {last_year}")
        self.first_day = date(first_year, 1, 1)
        self.last_day = date(last_year, 12, 31)
        self.hours = hours
        self.same_day_cutoff = same_day_cutoff
        self.special_days = tuple(
            sorted(
                (s for s in special_days if self.first_day <= s.day <= self.last_day),
                key=lambda s: s.day,
            )
        )
        kinds = {s.day: s.kind for s in self.special_days}
        weekly = tuple(_spans(day) for day in hours.weekly)
        makeup = _spans(hours.makeup_day)
        self._first_ordinal = self.first_day.toordinal()
        self._count = self.last_day.toordinal() - self._first_ordinal + 1
        self._days: list[tuple[_Span, ...]] = []
        self._midnights: list[datetime] = []
        for index in range(self._count):
            day = date.fromordinal(self._first_ordinal + index)
            kind = kinds.get(day)
            if kind is DayKind.OFF:
                self._days.append(())
            elif kind is DayKind.MAKEUP_WORKDAY:
                self._days.append(makeup)
            else:
                self._days.append(weekly[day.weekday()])
            self._midnights.append(datetime(day.year, day.month, day.day, tzinfo=VN_TZ))
        # _before[i]: working time of the known days before day i; _through[i]: up to its end.
        self._before: list[int] = []
        self._through: list[int] = []
        total = 0
        for spans in self._days:
            self._before.append(total)
            total += sum(end - start for start, end in spans)
            self._through.append(total)
        # _next_working[i]: the first working day at or after day i (self._count if none).
        self._next_working = [self._count] * (self._count + 1)
        for index in range(self._count - 1, -1, -1):
            self._next_working[index] = (
                index if self._days[index] else self._next_working[index + 1]
            )

    @property
    def known_years(self) -> range:
        """The years whose special days the calendar knows."""
        return range(self.first_day.year, self.last_day.year + 1)

    def _range_error(self, needed: str) -> CalendarRangeError:
        return CalendarRangeError(
            f"{needed}: the calendar knows only {self.first_day.isoformat()} to "
            f"{self.last_day.isoformat()}; add the next year's days off first"
        )

    def _locate(self, value: datetime, name: str) -> tuple[int, int]:
        local = to_local(value, name)
        index = local.toordinal() - self._first_ordinal
        if not 0 <= index < self._count:
            raise self._range_error(f"{name} {local.date().isoformat()} is outside the calendar")
        offset = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000
        return index, offset + local.microsecond

    def _at(self, index: int, offset: int) -> datetime:
        return self._midnights[index] + timedelta(microseconds=offset)

    def _position(self, index: int, offset: int) -> int:
        """Working time from the first known day to ``offset`` on day ``index``."""
        worked = self._before[index]
        for start, end in self._days[index]:
            if offset <= start:
                break
            worked += (offset if offset < end else end) - start
        return worked

    def _day(self, index: int) -> date:
        return self.first_day + timedelta(days=index)

    def _first_working(self, index: int) -> int:
        """The first working day at or after day ``index``."""
        found = self._next_working[index] if index < self._count else self._count
        if found == self._count:
            raise self._range_error(
                f"no known working day on or after {self._day(index).isoformat()}"
            )
        return found

    def _next_start(self, index: int, offset: int) -> tuple[int, int]:
        for start, end in self._days[index]:
            if offset < end:
                return index, max(offset, start)
        following = self._first_working(index + 1)
        return following, self._days[following][0][0]

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` has working time; CalendarRangeError outside the known years."""
        index = day.toordinal() - self._first_ordinal
        if not 0 <= index < self._count:
            raise self._range_error(f"{day.isoformat()} is outside the calendar")
        return bool(self._days[index])

    def next_working_start(self, at: datetime) -> datetime:
        """``at`` itself if it is working time, else the start of the next working period.

        Periods include their start and exclude their end: at 11:30 the next start is 13:00,
        at 17:00 the next working morning.
        """
        return self._at(*self._next_start(*self._locate(at, "at")))

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The earliest instant at which ``amount`` of working time has elapsed since ``start``.

        ``start`` outside working time counts from the next working start. Being the
        earliest such instant, a result that uses up a period exactly is that period's end
        (11:30, 17:00), not the next start. A zero amount gives the working start itself.
        """
        if amount < timedelta(0):
            raise ValueError(f"amount must not be negative, got {amount}")
        index, offset = self._next_start(*self._locate(start, "start"))
        if not amount:
            return self._at(index, offset)
        target = self._position(index, offset) + amount // _US
        found = bisect_left(self._through, target, lo=index)
        if found == self._count:
            raise self._range_error(
                f"{amount / timedelta(hours=1):g} working hours from {start.isoformat()} "
                "run past the last known day"
            )
        left = target - self._before[found]
        *head, (last_start, _) = self._days[found]
        for period_start, period_end in head:
            if left <= period_end - period_start:
                return self._at(found, period_start + left)
            left -= period_end - period_start
        return self._at(found, last_start + left)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The working time from ``start`` to ``end``; negative when ``end`` comes first.

        The inverse of :meth:`add_working_time`:
        ``working_time_between(s, add_working_time(s, a)) == a`` for any ``a >= 0``.
        """
        return (
            self._position(*self._locate(end, "end"))
            - self._position(*self._locate(start, "start"))
        ) * _US

    def same_working_time(self, other: WorkCalendar) -> bool:
        """Whether ``other`` gives every computation the same answer: the same known
        days, the same working periods on each, the same same-day cut-off (descriptions
        and sources of special days do not matter)."""
        return (
            self.first_day == other.first_day
            and self.same_day_cutoff == other.same_day_cutoff
            and self._days == other._days
        )

    def due_at(self, start: datetime, duration: Duration) -> datetime | None:
        """The due time (ngày hẹn trả) of a dossier received at ``start``.

        Conventions, all in Vietnam time:

        - ``start`` outside working time (evening, lunch break, weekend, day off) counts
          from the next working start;
        - ``working_days`` (8 working hours each, fractions allowed) and ``working_hours``:
          the working time is added; when it runs out exactly at the end of a working
          period the due time is that end (e.g. 17:00), not the next start;
        - ``calendar_days``: N×24 h after the (moved) start, at the same clock time; if that
          date is not a working day, the same clock time on the next working day;
        - ``same_day``: received on a working day before the cut-off (default 15:00) → the
          end of that working day; otherwise → the end of the next working day;
        - ``none``: no due time, ``None``.

        A due time in the next year uses that year's table; one beyond the known years
        raises :class:`CalendarRangeError`.
        """
        if duration.unit is DurationUnit.NONE:
            to_local(start, "start")
            return None
        if duration.unit is DurationUnit.SAME_DAY:
            return self._same_day(start)
        if duration.unit is DurationUnit.CALENDAR_DAYS:
            return self._calendar_days(start, int(duration.value))
        return self.add_working_time(start, duration.working_time())

    def _same_day(self, start: datetime) -> datetime:
        index, offset = self._locate(start, "start")
        if not (self._days[index] and offset < _micros(self.same_day_cutoff)):
            index = self._first_working(index + 1)
        return self._at(index, self._days[index][-1][1])

    def _calendar_days(self, start: datetime, days: int) -> datetime:
        index, offset = self._next_start(*self._locate(start, "start"))
        target = index + days
        if target >= self._count:
            raise self._range_error(
                f"{days} calendar days from {start.isoformat()} end after the last known day"
            )
        found = self._first_working(target)
        return self._at(*self._next_start(found, offset))
