"""Pure rules of the clock: the state of a dossier at an instant."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum


class ClockState(StrEnum):
    """Where a dossier stands against its due time."""

    IN_TIME = "in_time"  # trong hạn
    OVERDUE = "overdue"  # quá hạn
    NO_DUE_TIME = "no_due_time"


def state_at(due_at: datetime | None, now: datetime) -> ClockState:
    """The clock state of an open dossier at ``now`` (overdue strictly after the due time)."""
    if due_at is None:
        return ClockState.NO_DUE_TIME
    return ClockState.OVERDUE if now > due_at else ClockState.IN_TIME
