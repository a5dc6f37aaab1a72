"""Administrator edits of a province's calendar, as pure functions over its overrides.

Shared by the command line and the HTTP API so both refuse the same things the same
way: a row may fall in the known years or open the year right after them (a calendar
grows a year at a time, as each year's schedule is decreed); a removal must name a
special day.
"""

from __future__ import annotations

from datetime import date

from shared.calendar.model import CalendarEditError, SpecialDay
from shared.calendar.overrides import ProvinceOverrides
from shared.calendar.seed import province_table


def with_days(overrides: ProvinceOverrides, rows: list[SpecialDay]) -> ProvinceOverrides:
    """``overrides`` with ``rows`` added or replaced; ``CalendarEditError`` naming a day
    out of range."""
    if not rows:
        raise CalendarEditError("no days to add")
    known, _ = province_table(overrides)
    last_year = known.stop - 1
    for row in rows:
        if not known.start <= row.day.year <= last_year + 1:
            raise CalendarEditError(
                f"{row.day.isoformat()} is outside {known.start}-{last_year}; "
                f"only the next year, {last_year + 1}, can be added"
            )
    opened = max(row.day.year for row in rows)
    if opened > last_year:
        overrides = ProvinceOverrides(overrides.rows, overrides.removed, opened)
    return overrides.with_rows(rows)


def without_day(overrides: ProvinceOverrides, day: date) -> ProvinceOverrides:
    """``day`` back to the weekly pattern;
    ``CalendarEditError`` if it is not a special day."""
    _, table = province_table(overrides)
    if all(row.day != day for row in table):
        raise CalendarEditError(f"{day.isoformat()} is not a special day")
    _, base = province_table(ProvinceOverrides(last_year=overrides.last_year))
    return overrides.without(day, in_base=any(row.day == day for row in base))


def known_years(overrides: ProvinceOverrides) -> range:
    """The years a calendar with these edits can compute in."""
    known, _ = province_table(overrides)
    return known
