"""Pure rules of the queue: priority classes, ticket states, counters, numbering.

No I/O and no clock here: every time is passed in, so a unit test can call each rule.
A ticket belongs to one counter group's queue of one unit and one day (Vietnam date);
its number is ``<group>-<sequence>`` with the sequence starting at 1 each day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from shared.clock import in_vietnam
from shared.errors import Conflict

__all__ = [
    "GROUP_PATTERN",
    "NO_SHOW_REASON",
    "CounterConfig",
    "CounterPaused",
    "CounterState",
    "IllegalCounterChange",
    "IllegalTicketTransition",
    "NoCounterServes",
    "Priority",
    "TicketAction",
    "TicketState",
    "check_linkable",
    "choose_group",
    "next_ticket_state",
    "pause_change",
    "queue_day",
    "seconds_between",
    "ticket_number",
]

GROUP_PATTERN = r"^[A-Z]{1,3}$"


class Priority(StrEnum):
    """Priority class of a ticket (đối tượng ưu tiên); called elderly first, normal last."""

    NORMAL = "normal"
    PRIORITY = "priority"  # người khuyết tật, phụ nữ có thai, …
    ELDERLY = "elderly"  # người cao tuổi

    @property
    def rank(self) -> int:
        """Call order of the class: lower is called first (elderly 0, priority 1, normal 2)."""
        return _RANKS[self]


_RANKS = {Priority.ELDERLY: 0, Priority.PRIORITY: 1, Priority.NORMAL: 2}


class TicketState(StrEnum):
    """Where a ticket is: waiting → called → serving → done, or called → cancelled."""

    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"
    CANCELLED = "cancelled"


class TicketAction(StrEnum):
    """What a counter does to a ticket."""

    CALL = "call"
    SERVE = "serve"
    DONE = "done"
    NO_SHOW = "no_show"
    LINK_DOSSIER = "link_dossier"  # no state change: allowed once the ticket reached a counter


class CounterState(StrEnum):
    """Whether a counter is calling (open) or paused with a reason."""

    OPEN = "open"
    PAUSED = "paused"


NO_SHOW_REASON = "absent"
"""The reason a ticket cancelled by a no-show carries."""

_TRANSITIONS: dict[tuple[TicketState, TicketAction], TicketState] = {
    (TicketState.WAITING, TicketAction.CALL): TicketState.CALLED,
    (TicketState.CALLED, TicketAction.SERVE): TicketState.SERVING,
    (TicketState.CALLED, TicketAction.NO_SHOW): TicketState.CANCELLED,
    (TicketState.SERVING, TicketAction.DONE): TicketState.DONE,
}


class IllegalTicketTransition(Conflict, ValueError):
    """``action`` is not allowed in ticket state ``current`` (409; the answer gives the
    ticket's ``state``, null for no ticket at the counter)."""

    def __init__(self, current: TicketState | None, action: TicketAction) -> None:
        where = current.value if current else "no ticket at the counter"
        super().__init__(f"cannot {action.value} ({where})")
        self.current = current
        self.action = action

    def body(self) -> dict[str, Any]:
        """The message and the ticket's state."""
        return {**super().body(), "state": self.current.value if self.current else None}


class CounterPaused(Conflict, ValueError):
    """A paused counter cannot call (409; the answer gives ``state`` paused and the
    ``reason``)."""

    def __init__(self, counter_id: str, reason: str) -> None:
        super().__init__(f"counter {counter_id} is paused: {reason}")
        self.reason = reason

    def body(self) -> dict[str, Any]:
        """The message, the counter's state and why it is paused."""
        return {**super().body(), "state": CounterState.PAUSED.value, "reason": self.reason}


class IllegalCounterChange(Conflict, ValueError):
    """Pausing a paused counter or resuming an open one (409; the answer gives the
    counter's ``state``)."""

    def __init__(self, current: CounterState) -> None:
        super().__init__(f"the counter is already {current.value}")
        self.current = current

    def body(self) -> dict[str, Any]:
        """The message and the counter's state."""
        return {**super().body(), "state": self.current.value}


class NoCounterServes(ValueError):
    """No counter of the unit serves the field or procedure (or not in that group)."""


def next_ticket_state(current: TicketState | None, action: TicketAction) -> TicketState:
    """The state after ``action``; ``IllegalTicketTransition`` for anything not in
    waiting → called → serving → done, called → cancelled (no-show). ``None`` stands for
    a counter with no ticket in hand, where only calling is possible."""
    if current is None and action is TicketAction.CALL:
        return TicketState.CALLED
    after = _TRANSITIONS.get((current, action)) if current is not None else None
    if after is None:
        raise IllegalTicketTransition(current, action)
    return after


def check_linkable(current: TicketState) -> None:
    """A dossier can be linked to a ticket being served or done, else
    ``IllegalTicketTransition``: it is received at the counter that serves the ticket."""
    if current not in {TicketState.SERVING, TicketState.DONE}:
        raise IllegalTicketTransition(current, TicketAction.LINK_DOSSIER)


def pause_change(current: CounterState, *, pause: bool) -> CounterState:
    """The counter state after a pause (``pause=True``) or a resume; a second pause or a
    resume of an open counter is ``IllegalCounterChange``."""
    wanted = CounterState.PAUSED if pause else CounterState.OPEN
    if current is wanted:
        raise IllegalCounterChange(current)
    return wanted


@dataclass(frozen=True, slots=True)
class CounterConfig:
    """A counter (quầy) as configured: its unit, its group's queue and what it serves."""

    counter_id: str
    unit: str
    group: str
    fields: frozenset[str]
    procedures: frozenset[str]

    def serves(self, field: str, procedure_code: str | None) -> bool:
        """Whether it serves the field, or the procedure by code."""
        return field in self.fields or (
            procedure_code is not None and procedure_code in self.procedures
        )


def choose_group(
    counters: Iterable[CounterConfig],
    field: str,
    procedure_code: str | None,
    requested: str | None = None,
) -> tuple[str, list[CounterConfig]]:
    """The group whose queue a new ticket joins and that group's counters serving it.

    ``requested`` must be a serving group; without it the first serving group in
    alphabetical order is taken, so the choice is deterministic. ``NoCounterServes`` when
    no counter (of the requested group) serves the field or procedure.
    """
    serving = [c for c in counters if c.serves(field, procedure_code)]
    groups = sorted({c.group for c in serving})
    if requested is not None:
        groups = [g for g in groups if g == requested]
    if not groups:
        where = f" in group {requested}" if requested else ""
        msg = f"no counter{where} serves {procedure_code or field}"
        raise NoCounterServes(msg)
    group = groups[0]
    return group, sorted((c for c in serving if c.group == group), key=lambda c: c.counter_id)


def queue_day(at: datetime) -> date:
    """The queue's day: the Vietnam date of ``at`` (numbering restarts each day)."""
    return in_vietnam(at).date()


def ticket_number(group: str, sequence: int) -> str:
    """The printed number: group and a sequence of at least three digits, e.g. ``A-012``."""
    return f"{group}-{sequence:03d}"


def seconds_between(start: datetime, end: datetime) -> float:
    """Elapsed seconds, never negative (a clock set back does not make time negative)."""
    return max(0.0, (end - start).total_seconds())
