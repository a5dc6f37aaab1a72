"""Chain steps (liên thông) in the time a dossier has: one rule for sla and routing.

A step starts with its own working hours when the steps still to come fit the working
time the dossier has left; otherwise it gets its share of what is left (its hours over
the hours still to come). Either way its due time is never later than the dossier's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from shared.calendar import WorkCalendar

_US = timedelta(microseconds=1)


def working_hours(hours: Decimal) -> timedelta:
    """Working hours as a duration, to the microsecond."""
    return timedelta(microseconds=int(hours * 3_600_000_000))


@dataclass(frozen=True, slots=True)
class StepTime:
    """A step's working time and due time; ``scaled_from`` holds its own hours when they
    did not fit and it was given less."""

    given: timedelta
    due_at: datetime
    scaled_from: Decimal | None = None


def fit_step(
    calendar: WorkCalendar,
    start: datetime,
    hours: Sequence[Decimal],
    dossier_due: datetime | None,
) -> StepTime:
    """The working time and due time of the step starting at ``start``.

    ``hours``: this step's working hours, then those of every later step. Without a
    dossier due time, the step gets its own hours.
    """
    own = working_hours(hours[0])
    if dossier_due is None:
        return StepTime(own, calendar.add_working_time(start, own))
    left = max(timedelta(0), calendar.working_time_between(start, dossier_due))
    to_come = sum(hours, Decimal(0))
    if working_hours(to_come) <= left:
        return StepTime(own, min(calendar.add_working_time(start, own), dossier_due))
    given = timedelta(microseconds=int(left // _US * hours[0] / to_come))
    due = min(calendar.add_working_time(start, given), dossier_due)
    return StepTime(given, due, scaled_from=hours[0])
