"""Time: an injectable clock and the Vietnam time zone every answer is shown in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from shared.calendar import VN_TZ

Clock = Callable[[], datetime]
"""A source of timezone-aware 'now'; tests inject a fixed or virtual one."""


def utc_now() -> datetime:
    """The real clock, in UTC."""
    return datetime.now(UTC)


def in_vietnam(value: datetime) -> datetime:
    """The same instant shown in Vietnam time (Asia/Ho_Chi_Minh, +07:00)."""
    if value.tzinfo is None:
        msg = "naive datetime: every motcua time is timezone-aware"
        raise ValueError(msg)
    return value.astimezone(VN_TZ)
