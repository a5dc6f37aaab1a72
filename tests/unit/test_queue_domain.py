"""The queue's pure rules: classes, transitions, group choice, numbering and days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.intake.queue.domain import (
    CounterConfig,
    CounterState,
    IllegalCounterChange,
    IllegalTicketTransition,
    NoCounterServes,
    Priority,
    TicketAction,
    TicketState,
    check_linkable,
    choose_group,
    next_ticket_state,
    pause_change,
    queue_day,
    seconds_between,
    ticket_number,
)
from shared.calendar import VN_TZ

COUNTERS = [
    CounterConfig("Q2", "U", "A", frozenset({"Hộ tịch"}), frozenset()),
    CounterConfig("Q1", "U", "A", frozenset({"Hộ tịch", "Chứng thực"}), frozenset()),
    CounterConfig("Q3", "U", "B", frozenset({"Đất đai"}), frozenset({"2.000635"})),
]


def test_elderly_are_called_before_priority_before_normal() -> None:
    assert sorted(Priority, key=lambda p: p.rank) == [
        Priority.ELDERLY,
        Priority.PRIORITY,
        Priority.NORMAL,
    ]


@pytest.mark.parametrize(
    ("current", "action", "after"),
    [
        (None, TicketAction.CALL, TicketState.CALLED),
        (TicketState.WAITING, TicketAction.CALL, TicketState.CALLED),
        (TicketState.CALLED, TicketAction.SERVE, TicketState.SERVING),
        (TicketState.CALLED, TicketAction.NO_SHOW, TicketState.CANCELLED),
        (TicketState.SERVING, TicketAction.DONE, TicketState.DONE),
    ],
)
def test_legal_transitions(
    current: TicketState | None, action: TicketAction, after: TicketState
) -> None:
    assert next_ticket_state(current, action) is after


@pytest.mark.parametrize(
    ("current", "action"),
    [
        (None, TicketAction.SERVE),
        (None, TicketAction.DONE),
        (TicketState.WAITING, TicketAction.DONE),
        (TicketState.CALLED, TicketAction.DONE),
        (TicketState.CALLED, TicketAction.CALL),
        (TicketState.SERVING, TicketAction.NO_SHOW),
        (TicketState.DONE, TicketAction.SERVE),
        (TicketState.CANCELLED, TicketAction.SERVE),
    ],
)
def test_illegal_transitions_name_the_current_state(
    current: TicketState | None, action: TicketAction
) -> None:
    with pytest.raises(IllegalTicketTransition) as caught:
        next_ticket_state(current, action)
    assert caught.value.current is current


def test_only_a_ticket_at_a_counter_can_be_linked() -> None:
    check_linkable(TicketState.SERVING)
    check_linkable(TicketState.DONE)
    for state in [TicketState.WAITING, TicketState.CALLED, TicketState.CANCELLED]:
        with pytest.raises(IllegalTicketTransition):
            check_linkable(state)


def test_pause_and_resume_toggle_once() -> None:
    assert pause_change(CounterState.OPEN, pause=True) is CounterState.PAUSED
    assert pause_change(CounterState.PAUSED, pause=False) is CounterState.OPEN
    with pytest.raises(IllegalCounterChange):
        pause_change(CounterState.PAUSED, pause=True)
    with pytest.raises(IllegalCounterChange):
        pause_change(CounterState.OPEN, pause=False)


def test_group_by_field_procedure_or_request() -> None:
    group, counters = choose_group(COUNTERS, "Hộ tịch", None)
    assert (group, [c.counter_id for c in counters]) == ("A", ["Q1", "Q2"])
    assert choose_group(COUNTERS, "Hộ tịch", "2.000635")[0] == "A"  # first serving group
    assert choose_group(COUNTERS, "Hộ tịch", "2.000635", "B")[0] == "B"  # by procedure
    with pytest.raises(NoCounterServes):
        choose_group(COUNTERS, "Đất đai", None, "A")
    with pytest.raises(NoCounterServes):
        choose_group(COUNTERS, "Ngoại giao", None)


def test_numbers_and_days() -> None:
    assert ticket_number("A", 12) == "A-012"
    assert ticket_number("B", 1234) == "B-1234"
    before_midnight = datetime(2026, 6, 2, 16, 59, tzinfo=UTC)  # 23:59 in Vietnam
    assert queue_day(before_midnight).isoformat() == "2026-06-02"
    assert queue_day(before_midnight + timedelta(minutes=1)).isoformat() == "2026-06-03"
    start = datetime(2026, 6, 2, 9, tzinfo=VN_TZ)
    assert seconds_between(start, start + timedelta(minutes=3)) == 180.0
    assert seconds_between(start, start - timedelta(minutes=3)) == 0.0
    with pytest.raises(ValueError, match="naive"):
        queue_day(datetime(2026, 6, 2, 9))  # noqa: DTZ001 - the refusal under test
