"""Time: an injectable clock, the process's settable clock, and the Vietnam time zone.

Production reads the real clock. For development and tests the whole local stack can run
from another instant at normal speed (``MOTCUA_CLOCK_START``): the supervisor turns it
into one offset from the real clock, computed once, and hands that same offset to every
process it starts (``MOTCUA_CLOCK_OFFSET_SECONDS``), so all services agree on "now".
Each process applies it once at start (:func:`set_offset`); :func:`utc_now` then includes
it everywhere a use case takes the default clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.calendar import VN_TZ

Clock = Callable[[], datetime]
"""A source of timezone-aware 'now'; tests inject a fixed or virtual one."""

CLOCK_START_VARIABLE = "MOTCUA_CLOCK_START"
CLOCK_OFFSET_VARIABLE = "MOTCUA_CLOCK_OFFSET_SECONDS"

_offset = timedelta(0)


class ClockStartError(ValueError):
    """``MOTCUA_CLOCK_START`` is not an ISO 8601 instant with its UTC offset."""


def utc_now() -> datetime:
    """The process's clock, in UTC: the real one plus the development offset (zero
    unless :func:`set_offset` was called)."""
    return datetime.now(UTC) + _offset


def set_offset(offset: timedelta) -> None:
    """Run this process's :func:`utc_now` ``offset`` ahead of the real clock (negative:
    behind). Called once at process start, before any service is built."""
    global _offset  # noqa: PLW0603 - one process-wide setting, applied once at start
    _offset = offset


def clock_offset() -> timedelta:
    """The offset in force (zero in production)."""
    return _offset


def parse_clock_start(text: str) -> datetime:
    """The instant of a ``MOTCUA_CLOCK_START`` value, e.g. ``2026-12-02T14:30:00+07:00``.

    Raises :class:`ClockStartError` naming the variable when the value is not an ISO 8601
    date and time or has no UTC offset (a naive time would be read in the machine's zone).
    """
    try:
        start = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"{CLOCK_START_VARIABLE}={text!r} is not an ISO 8601 date and time"
        raise ClockStartError(msg) from None
    if start.tzinfo is None:
        msg = f"{CLOCK_START_VARIABLE}={text!r} has no UTC offset (write e.g. +07:00)"
        raise ClockStartError(msg)
    return start


def offset_to(start: datetime, real_now: datetime | None = None) -> timedelta:
    """The offset that makes a clock read ``start`` at ``real_now`` (default: now)."""
    return start - (real_now or datetime.now(UTC))


def process_offset(clock_start: str | None, offset_seconds: float | None) -> timedelta:
    """The offset a process starts with: the supervisor's when it handed one down,
    else one computed here from ``clock_start``, else none."""
    if offset_seconds is not None:
        return timedelta(seconds=offset_seconds)
    if clock_start:
        return offset_to(parse_clock_start(clock_start))
    return timedelta(0)


def in_vietnam(value: datetime) -> datetime:
    """The same instant shown in Vietnam time (Asia/Ho_Chi_Minh, +07:00)."""
    if value.tzinfo is None:
        msg = "naive datetime: every motcua time is timezone-aware"
        raise ValueError(msg)
    return value.astimezone(VN_TZ)


def in_vietnam_or_none(value: datetime | None) -> datetime | None:
    """:func:`in_vietnam` of ``value``, or ``None`` for no time (an optional field)."""
    return None if value is None else in_vietnam(value)
