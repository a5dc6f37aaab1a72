"""The digest's pure rules: report periods, when a digest falls due, its key and figures.

Periods are Vietnam calendar months (label ``2026-10``) or ISO weeks, Monday to Sunday
(label ``2026-W43``). The digest of a period falls due at a set local time on the first
working day after the period ends (``send_time``), and stays due until the next period's
digest does: a scheduler that was down at the moment catches up when it comes back, but a
period it missed entirely is only sent by hand. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

from services.notify.reports import domain as report
from shared.calendar import VN_TZ
from shared.errors import Invalid

PeriodKind = Literal["month", "week"]
DIGEST_TRIGGER = "digest"
"""The ``trigger`` of a digest in the message table (a digest is about no dossier)."""

UNIT_MAX, NAME_MAX, EMAIL_MAX = 60, 200, 254
"""Longest unit code, head's name and e-mail: the sizes of ``office_head``'s columns."""
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MONTH = re.compile(r"^(?P<year>\d{4})-(?P<month>\d{2})$")
_WEEK = re.compile(r"^(?P<year>\d{4})-W(?P<week>\d{2})$")
_MAX_DAYS_OFF = 31
"""Longest run of days off searched for the first working day (Tết is about nine)."""


@dataclass(frozen=True, slots=True)
class DigestPeriod:
    """A report period of the digest: ``first`` to ``last``, Vietnam dates, both included."""

    kind: PeriodKind
    first: date
    last: date

    @property
    def label(self) -> str:
        """``2026-10`` for a month, ``2026-W43`` for an ISO week: part of the message key."""
        if self.kind == "month":
            return f"{self.first.year:04d}-{self.first.month:02d}"
        year, week, _ = self.first.isocalendar()
        return f"{year:04d}-W{week:02d}"

    @property
    def title(self) -> str:
        """The period as the e-mail names it (kỳ báo cáo)."""
        if self.kind == "month":
            return f"tháng {self.first.month:02d}/{self.first.year}"
        year, week, _ = self.first.isocalendar()
        return f"tuần {week:02d}/{year}"


def period_containing(day: date, kind: PeriodKind) -> DigestPeriod:
    """The month or ISO week that contains ``day``."""
    if kind == "month":
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        return DigestPeriod(kind, first, last)
    first = day - timedelta(days=day.weekday())
    return DigestPeriod(kind, first, first + timedelta(days=6))


def previous_period(day: date, kind: PeriodKind) -> DigestPeriod:
    """The period just before the one that contains ``day``."""
    return period_containing(period_containing(day, kind).first - timedelta(days=1), kind)


class PeriodError(Invalid, ValueError):
    """A label that names no month nor ISO week (422)."""


def parse_period(label: str) -> DigestPeriod:
    """A period from its label (``2026-10`` or ``2026-W43``); ``PeriodError`` (a
    ``ValueError``) otherwise."""
    try:
        if match := _MONTH.match(label):
            return period_containing(date(int(match["year"]), int(match["month"]), 1), "month")
        if match := _WEEK.match(label):
            return period_containing(
                date.fromisocalendar(int(match["year"]), int(match["week"]), 1), "week"
            )
    except ValueError:
        pass
    msg = f"not a period: {label!r} (use 2026-10 for a month or 2026-W43 for a week)"
    raise PeriodError(msg)


def send_time(period: DigestPeriod, at: time, is_working_day: Callable[[date], bool]) -> datetime:
    """When the digest of ``period`` falls due: ``at`` (Vietnam time) on the first working
    day after the period ends."""
    day = period.last + timedelta(days=1)
    for _ in range(_MAX_DAYS_OFF):
        if is_working_day(day):
            return datetime.combine(day, at, tzinfo=VN_TZ)
        day += timedelta(days=1)
    msg = f"no working day within {_MAX_DAYS_OFF} days after {period.last.isoformat()}"
    raise ValueError(msg)


def due_period(
    now: datetime, kind: PeriodKind, at: time, is_working_day: Callable[[date], bool]
) -> DigestPeriod | None:
    """The period whose digest is due at ``now`` (aware), or ``None`` before its send time.

    Invariant: the answer is the period before the one containing ``now``'s Vietnam date,
    once ``now`` reaches its ``send_time``; asking again later gives the same period, so a
    scheduler relies on the message key, not on being called once.
    """
    local = now.astimezone(VN_TZ)
    period = previous_period(local.date(), kind)
    return period if local >= send_time(period, at, is_working_day) else None


def head_problem(unit: str, name: str, email: str) -> str | None:
    """What is wrong with an office head's record, or ``None`` (the message never repeats
    the values: they are personal data)."""
    if not 0 < len(unit) <= UNIT_MAX:
        return f"the unit code needs 1 to {UNIT_MAX} characters"
    if not 0 < len(name) <= NAME_MAX:
        return f"the name needs 1 to {NAME_MAX} characters"
    if len(email) > EMAIL_MAX or not _EMAIL.match(email):
        return "the e-mail is not an address"
    return None


def digest_key(unit: str, period: DigestPeriod) -> str:
    """The message key of one unit's digest of one period: ``digest:<unit>:<period>``."""
    return f"{DIGEST_TRIGGER}:{unit}:{period.label}"


def rate_text(rate: Decimal | None) -> str:
    """A rate as the e-mail shows it: ``98,81%``, or ``—`` when nothing was counted."""
    return "—" if rate is None else f"{rate:.2f}".replace(".", ",") + "%"


@dataclass(frozen=True, slots=True)
class DossierLine:
    """One dossier of a digest's list (overdue, or needing the apology letter): code,
    procedure, due time (no names)."""

    code: str
    procedure: str
    due: str


@dataclass(frozen=True, slots=True)
class Figures:
    """One unit's Biểu 06 figures of a period, as the digest shows them."""

    received: int
    carried_over: int
    new: int
    finished: int
    early: int
    on_time: int
    late: int
    open_total: int
    within_time: int
    overdue: int
    on_time_rate: str
    rate_766: str


def figures(counts: report.Counts) -> Figures:
    """The digest's figures of a report row (the same rates as ``/api/v1/reports/sla``)."""
    return Figures(
        received=counts.received,
        carried_over=counts.carried_over,
        new=counts.new_online + counts.new_counter_post,
        finished=counts.finished,
        early=counts.early,
        on_time=counts.on_time,
        late=counts.late,
        open_total=counts.open_total,
        within_time=counts.within_time,
        overdue=counts.overdue,
        on_time_rate=rate_text(report.on_time_rate(counts)),
        rate_766=rate_text(report.rate_766(counts)),
    )
