"""The SLA clock as a ledger: DOMAIN.md's worked examples, pauses, restarts, classes."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from services.sla.domain import (
    DOSSIER_STEP,
    ChainStep,
    ClockState,
    Entry,
    Granularity,
    Outcome,
    Policy,
    SupplementRule,
    Terms,
    classify,
    fold,
    replay,
)
from shared.calendar import VN_TZ, Duration, DurationUnit, build_calendar

CAL = build_calendar()
POLICY = Policy()
H = timedelta(hours=1)


def vn(text: str) -> datetime:
    """A Vietnam time from "YYYY-MM-DD HH:MM"."""
    return datetime.fromisoformat(text).replace(tzinfo=VN_TZ)


def terms(
    received: str = "2026-06-01 08:00",
    days: float = 2,
    rule: SupplementRule = "pause",
    steps: tuple[ChainStep, ...] = (),
) -> Terms:
    return Terms(
        received_at=vn(received),
        time_limit=Duration(days, DurationUnit.WORKING_DAYS),
        supplement_rule=rule,
        steps=steps,
    )


def ledger(*actions: tuple[str, str]) -> list[Entry]:
    return [Entry(i, vn(at), action) for i, (action, at) in enumerate(actions, start=1)]


def test_the_clock_starts_with_the_time_limit_from_reception() -> None:
    clock = replay(terms(), [], CAL, POLICY)
    assert clock.due_at == vn("2026-06-03 08:00")
    assert clock.ledger[0].kind == "start"
    assert clock.ledger[0].due_at == vn("2026-06-03 08:00")
    assert clock.working_used(vn("2026-06-01 14:00")) == 4.5 * H
    assert clock.working_left(vn("2026-06-01 14:00")) == 11.5 * H


def test_the_appointment_slip_wins_and_the_ledger_says_so() -> None:
    slip = vn("2026-06-04 08:00")
    clock = replay(
        Terms(vn("2026-06-01 08:00"), Duration(2, DurationUnit.WORKING_DAYS), "pause", slip),
        [],
        CAL,
        POLICY,
    )
    assert clock.due_at == slip
    assert "appointment slip" in clock.ledger[0].note
    assert "2026-06-03T08:00:00+07:00" in clock.ledger[0].note


def test_pause_rule_worked_example() -> None:
    clock = replay(
        terms(),
        ledger(
            ("request_supplement", "2026-06-01 14:00"), ("submit_supplement", "2026-06-04 10:00")
        ),
        CAL,
        POLICY,
    )
    assert clock.due_at == vn("2026-06-05 15:00")
    pause, resume = clock.ledger[1:]
    assert pause.due_at == vn("2026-06-03 08:00")
    assert resume.due_at == vn("2026-06-05 15:00")
    assert "21.5 working hours later" in resume.note
    assert clock.working_used(vn("2026-06-04 10:00")) == 4.5 * H
    assert clock.working_left(vn("2026-06-04 10:00")) == 11.5 * H


def test_restart_rule_worked_example() -> None:
    clock = replay(
        terms(rule="restart"),
        ledger(
            ("request_supplement", "2026-06-01 14:00"), ("submit_supplement", "2026-06-04 10:00")
        ),
        CAL,
        POLICY,
    )
    assert clock.due_at == vn("2026-06-08 10:00")
    assert "restarted" in clock.ledger[-1].note
    assert clock.working_used(vn("2026-06-04 10:00")) == timedelta(0)
    assert clock.working_left(vn("2026-06-04 10:00")) == 16 * H


def test_several_pauses_each_move_the_due_time_by_their_wait() -> None:
    clock = replay(
        terms(),
        ledger(
            ("request_payment", "2026-06-01 09:00"),
            ("payment_received", "2026-06-01 14:00"),
            ("stop", "2026-06-02 08:00"),
            ("resume", "2026-06-02 10:00"),
        ),
        CAL,
        POLICY,
    )
    assert [line.due_at for line in clock.ledger] == [
        vn("2026-06-03 08:00"),
        vn("2026-06-03 08:00"),
        vn("2026-06-03 11:30"),
        vn("2026-06-03 11:30"),
        vn("2026-06-03 15:00"),
    ]


def test_overlapping_pauses_run_the_clock_only_when_the_last_closes() -> None:
    entries = ledger(
        ("request_supplement", "2026-06-01 14:00"),
        ("request_payment", "2026-06-02 09:00"),
        ("submit_supplement", "2026-06-03 09:00"),
        ("payment_received", "2026-06-04 10:00"),
    )
    mid = replay(terms(), entries[:3], CAL, POLICY)
    assert mid.state_at(vn("2026-06-03 12:00"), POLICY) is ClockState.PAUSED
    assert "still stopped for payment" in mid.ledger[-1].note
    assert replay(terms(), entries, CAL, POLICY).due_at == vn("2026-06-05 15:00")


def test_a_pause_over_the_holidays_counts_no_days_off() -> None:
    # Due Wed 29/04/2026 10:00 (Mon 27/04 is the observed Giỗ Tổ day off).
    clock = replay(
        terms(received="2026-04-23 10:00", days=3),
        ledger(
            ("request_supplement", "2026-04-24 10:00"), ("submit_supplement", "2026-04-28 10:00")
        ),
        CAL,
        POLICY,
    )
    # 8 working hours waited (Fri 5.5, Tue 2.5); 30/04 and 01/05 are days off.
    assert "8 working hours later" in clock.ledger[-1].note
    assert clock.due_at == vn("2026-05-04 10:00")


def test_a_resume_without_a_pause_is_recorded_and_ignored() -> None:
    clock = replay(terms(), ledger(("submit_supplement", "2026-06-02 10:00")), CAL, POLICY)
    assert clock.due_at == vn("2026-06-03 08:00")
    assert clock.ledger[-1].note.startswith("ignored")


@pytest.mark.parametrize(
    ("finished", "by", "outcome"),
    [
        ("2026-06-04 16:00", "date", Outcome.EARLY),
        ("2026-06-05 16:30", "date", Outcome.ON_TIME),
        ("2026-06-05 16:30", "time", Outcome.LATE),
        ("2026-06-05 14:00", "time", Outcome.ON_TIME),
        ("2026-06-08 08:00", "date", Outcome.LATE),
    ],
)
def test_classification_examples(finished: str, by: Granularity, outcome: Outcome) -> None:
    assert classify(vn(finished), vn("2026-06-05 15:00"), 0, granularity=by) is outcome


def test_two_supplement_requests_are_late_whatever_the_dates() -> None:
    clock = replay(
        terms(),
        ledger(
            ("request_supplement", "2026-06-01 09:00"),
            ("submit_supplement", "2026-06-01 10:00"),
            ("request_supplement", "2026-06-01 13:00"),
            ("submit_supplement", "2026-06-01 14:00"),
            ("resolve", "2026-06-01 16:00"),
        ),
        CAL,
        POLICY,
    )
    assert clock.supplement_requests == 2
    assert clock.outcome(POLICY) is Outcome.LATE
    one = replay(terms(), ledger(("resolve", "2026-06-01 16:00")), CAL, POLICY)
    assert one.outcome(POLICY) is Outcome.EARLY


def test_an_apology_shows_a_new_date_but_the_dossier_stays_late() -> None:
    entries = [
        Entry(1, vn("2026-06-02 10:00"), "extend", "thiếu hồ sơ", vn("2026-06-05 17:00")),
        Entry(2, vn("2026-06-04 10:00"), "resolve"),
    ]
    clock = replay(terms(), entries, CAL, POLICY)
    assert clock.due_at == vn("2026-06-03 08:00")
    assert clock.shown_due_at == vn("2026-06-05 17:00")
    assert clock.ledger[1].extended_due_at == vn("2026-06-05 17:00")
    assert clock.outcome(POLICY) is Outcome.LATE


def test_extensions_beyond_the_limit_are_not_applied() -> None:
    entries = [
        Entry(1, vn("2026-06-02 10:00"), "extend", None, vn("2026-06-05 17:00")),
        Entry(2, vn("2026-06-04 10:00"), "extend", None, vn("2026-06-09 17:00")),
    ]
    clock = replay(terms(), entries, CAL, POLICY)
    assert clock.shown_due_at == vn("2026-06-05 17:00")
    assert clock.ledger[-1].note.startswith("not applied")


def test_withdrawal_stops_the_clock_without_a_class() -> None:
    clock = replay(
        terms(),
        ledger(
            ("withdraw_request", "2026-06-02 09:00"),
            ("withdraw", "2026-06-02 10:00"),
            ("resolve", "2026-06-02 11:00"),
        ),
        CAL,
        POLICY,
    )
    assert clock.state_at(vn("2026-06-10 10:00"), POLICY) is ClockState.FINISHED
    assert clock.outcome(POLICY) is None
    assert clock.closed_at == vn("2026-06-02 10:00")
    assert clock.ledger[-1].note.startswith("ignored")
    assert clock.thresholds(POLICY) == []


def test_a_finished_dossier_cannot_be_withdrawn() -> None:
    clock = replay(
        terms(),
        ledger(("resolve", "2026-06-02 11:00"), ("withdraw", "2026-06-02 12:00")),
        CAL,
        POLICY,
    )
    assert clock.outcome(POLICY) is Outcome.EARLY


def test_the_end_is_the_resolve_when_both_exist_and_the_return_otherwise() -> None:
    both = replay(
        terms(),
        ledger(("resolve", "2026-06-02 11:00"), ("return_result", "2026-06-04 09:00")),
        CAL,
        POLICY,
    )
    assert both.closed_at == vn("2026-06-02 11:00")
    returned = replay(terms(), ledger(("return_result", "2026-06-04 09:00")), CAL, POLICY)
    assert returned.closed_at == vn("2026-06-04 09:00")
    assert returned.outcome(POLICY) is Outcome.LATE


def test_late_and_repeated_actions_are_folded_by_sequence() -> None:
    entries = ledger(
        ("request_supplement", "2026-06-01 14:00"), ("submit_supplement", "2026-06-04 10:00")
    )
    shuffled = [entries[1], entries[0], entries[1]]
    assert replay(terms(), shuffled, CAL, POLICY).due_at == vn("2026-06-05 15:00")


def test_states_at_instants() -> None:
    clock = replay(terms(), [], CAL, POLICY)
    assert clock.state_at(vn("2026-06-01 09:00"), POLICY) is ClockState.IN_TIME
    assert clock.state_at(vn("2026-06-02 08:00"), POLICY) is ClockState.DUE_SOON
    assert clock.state_at(vn("2026-06-03 08:00"), POLICY) is ClockState.DUE_SOON
    assert clock.state_at(vn("2026-06-03 08:01"), POLICY) is ClockState.OVERDUE
    paused = replay(terms(), ledger(("stop", "2026-06-01 09:00")), CAL, POLICY)
    assert paused.state_at(vn("2026-06-09 09:00"), POLICY) is ClockState.PAUSED
    assert paused.working_left(vn("2026-06-09 09:00")) == 15 * H


def test_flag_instants_and_once_each() -> None:
    clock = replay(terms(), [], CAL, POLICY)
    instants = {t.kind: t.at for t in clock.thresholds(POLICY)}
    assert instants["due_soon"] == vn("2026-06-02 08:00")
    assert instants["apology_needed"] == vn("2026-06-02 14:30")
    assert instants["overdue"] - vn("2026-06-03 08:00") == timedelta(microseconds=1)
    now = vn("2026-06-02 15:00")
    due = clock.flags_due(now, POLICY, [])
    assert [t.kind for t in due] == ["due_soon", "apology_needed"]
    emitted = [(t.kind, t.step) for t in due]
    assert clock.flags_due(now, POLICY, emitted) == []
    assert clock.next_deadline(POLICY, emitted) == instants["overdue"]
    assert clock.next_deadline(POLICY, [*emitted, ("overdue", DOSSIER_STEP)]) is None


def test_a_pause_postpones_the_flags() -> None:
    clock = replay(terms(), ledger(("stop", "2026-06-01 09:00")), CAL, POLICY)
    assert clock.next_deadline(POLICY, []) is None
    resumed = replay(
        terms(), ledger(("stop", "2026-06-01 09:00"), ("resume", "2026-06-02 09:00")), CAL, POLICY
    )
    assert resumed.due_at == vn("2026-06-04 08:00")
    assert resumed.next_deadline(POLICY, []) == vn("2026-06-03 08:00")


def test_chain_steps_each_late_or_on_time() -> None:
    steps = (ChainStep("000.00.01.H56", Decimal(8)), ChainStep("000.00.02.H56", Decimal(8)))
    clock = replay(
        terms(steps=steps),
        ledger(("transfer", "2026-06-01 16:00"), ("resolve", "2026-06-03 07:45")),
        CAL,
        POLICY,
    )
    first, second = clock.steps
    assert first.due_at == vn("2026-06-02 08:00")
    assert clock.step_outcome(first, POLICY) is Outcome.EARLY
    assert second.started_at == vn("2026-06-01 16:00")
    assert second.due_at == vn("2026-06-02 16:00")
    assert clock.step_outcome(second, POLICY) is Outcome.LATE
    assert clock.outcome(POLICY) is Outcome.ON_TIME


def test_the_current_step_has_its_own_flags() -> None:
    steps = (ChainStep("A", Decimal(8)), ChainStep("B", Decimal(4)))
    clock = replay(terms(steps=steps), ledger(("transfer", "2026-06-01 16:00")), CAL, POLICY)
    step_flags = [t for t in clock.thresholds(POLICY) if t.step == 1]
    assert {t.kind for t in step_flags} == {"due_soon", "apology_needed", "overdue"}
    assert all(t.office == "B" and t.due_at == vn("2026-06-02 10:30") for t in step_flags)


def limit_terms(
    received: str, value: float, unit: DurationUnit, steps: tuple[ChainStep, ...] = ()
) -> Terms:
    return Terms(vn(received), Duration(value, unit), "pause", steps=steps)


@pytest.mark.parametrize(
    ("value", "unit", "due_soon", "apology"),
    [
        # same day from 08:00: 7.5 working hours to 17:00, so half and a quarter of them
        (1, DurationUnit.SAME_DAY, 3.75 * H, 1.875 * H),
        (0.5, DurationUnit.WORKING_DAYS, 2 * H, 1 * H),
        (1, DurationUnit.WORKING_DAYS, 4 * H, 2 * H),
        (3, DurationUnit.WORKING_DAYS, 8 * H, 3 * H),
        (20, DurationUnit.WORKING_DAYS, 8 * H, 3 * H),
        (4, DurationUnit.WORKING_HOURS, 2 * H, 1 * H),
        (1, DurationUnit.CALENDAR_DAYS, 4 * H, 2 * H),
        (15, DurationUnit.CALENDAR_DAYS, 8 * H, 3 * H),
    ],
)
def test_warning_windows_scale_with_the_time_limit(
    value: float, unit: DurationUnit, due_soon: timedelta, apology: timedelta
) -> None:
    received = vn("2026-06-03 08:00")
    clock = replay(limit_terms("2026-06-03 08:00", value, unit), [], CAL, POLICY)
    assert clock.due_at is not None
    flags = {t.kind: t.at for t in clock.thresholds(POLICY)}
    assert CAL.working_time_between(flags["due_soon"], clock.due_at) == due_soon
    assert CAL.working_time_between(flags["apology_needed"], clock.due_at) == apology
    assert received < flags["due_soon"] < flags["apology_needed"] < flags["overdue"]
    assert clock.flags_due(received, POLICY, []) == []
    assert clock.state_at(received, POLICY) is ClockState.IN_TIME
    just_before = flags["due_soon"] - timedelta(seconds=1)
    assert clock.state_at(just_before, POLICY) is ClockState.IN_TIME
    assert clock.state_at(flags["due_soon"], POLICY) is ClockState.DUE_SOON


def test_a_same_day_dossier_received_in_the_afternoon_is_not_flagged_at_once() -> None:
    """The reported case: received 14:11, due 17:00; it used to be 'overdue' at once."""
    received = vn("2026-12-01 14:11")
    clock = replay(limit_terms("2026-12-01 14:11", 1, DurationUnit.SAME_DAY), [], CAL, POLICY)
    assert clock.due_at == vn("2026-12-01 17:00")
    assert clock.flags_due(received + timedelta(seconds=1), POLICY, []) == []
    flags = {t.kind: t.at for t in clock.thresholds(POLICY)}
    assert flags["apology_needed"] == vn("2026-12-01 16:17:45")  # a quarter of 2 h 49 min
    assert clock.flags_due(vn("2026-12-01 17:00"), POLICY, [])[-1].kind == "apology_needed"
    assert clock.flags_due(vn("2026-12-01 17:00:01"), POLICY, [])[-1].kind == "overdue"


def test_a_zero_time_limit_gets_only_the_overdue_flag() -> None:
    clock = replay(limit_terms("2026-06-03 08:00", 0, DurationUnit.WORKING_DAYS), [], CAL, POLICY)
    assert [t.kind for t in clock.thresholds(POLICY)] == ["overdue"]


def test_a_step_that_does_not_fit_the_time_left_is_scaled_into_it() -> None:
    """A same-day dossier received at 14:11: its one 8-hour step ends at 17:00, not the
    next day at 14:11, and the ledger says why."""
    steps = (ChainStep("A", Decimal(8)),)
    clock = replay(
        limit_terms("2026-12-01 14:11", 1, DurationUnit.SAME_DAY, steps=steps), [], CAL, POLICY
    )
    assert clock.steps[0].due_at == clock.due_at == vn("2026-12-01 17:00")
    assert "do not fit" in clock.ledger[0].note


def test_later_steps_share_what_is_left_and_never_end_after_the_dossier() -> None:
    steps = (ChainStep("A", Decimal(4)), ChainStep("B", Decimal(2)), ChainStep("C", Decimal(2)))
    base = limit_terms("2026-06-03 08:00", 1, DurationUnit.WORKING_DAYS, steps=steps)
    # A took 6 of the 8 hours: B and C (4 h) share the 2 h left, one hour each
    clock = replay(base, ledger(("transfer", "2026-06-03 15:30")), CAL, POLICY)
    assert clock.steps[1].due_at == vn("2026-06-03 16:30")
    assert "given 1 h" in clock.ledger[-1].note
    # a transfer after the dossier's due time: the step is due when the dossier was
    late = replay(base, ledger(("transfer", "2026-06-04 10:00")), CAL, POLICY)
    assert late.steps[1].due_at == late.due_at == vn("2026-06-04 08:00")
    # steps that fit keep their own hours
    fits = replay(base, ledger(("transfer", "2026-06-03 11:00")), CAL, POLICY)
    assert fits.steps[1].due_at == vn("2026-06-03 14:30")
    assert "do not fit" not in fits.ledger[-1].note


CHAIN = (ChainStep("A", Decimal(8)), ChainStep("B", Decimal(4)))


@pytest.mark.parametrize(
    ("clock_terms", "actions"),
    [
        (terms(), ()),
        (terms(steps=CHAIN), ()),
        (terms(steps=CHAIN), (("transfer", "2026-06-01 15:00"),)),
        (terms(), (("stop", "2026-06-01 09:00"),)),
        (terms(), (("stop", "2026-06-01 09:00"), ("resume", "2026-06-02 16:00"))),
        (terms(rule="restart"), (("stop", "2026-06-01 09:00"), ("resume", "2026-06-05 10:00"))),
        (terms(), (("resolve", "2026-06-02 10:00"),)),
        (limit_terms("2026-06-03 08:00", 0, DurationUnit.WORKING_DAYS), ()),
        (limit_terms("2026-12-01 14:11", 1, DurationUnit.SAME_DAY), ()),
        (limit_terms("2026-12-01 16:59", 1, DurationUnit.SAME_DAY), ()),
        (limit_terms("2026-06-03 08:00", 1, DurationUnit.NONE), ()),
    ],
)
def test_the_fold_keeps_the_instants_the_clock_computes(
    clock_terms: Terms, actions: tuple[tuple[str, str], ...]
) -> None:
    """``fold`` takes the due-soon instant from the flags it computes once; it is what
    the clock itself says, running, paused, closed, with or without a window."""
    folded = fold(clock_terms, ledger(*actions), CAL, POLICY)
    assert folded.thresholds == tuple(folded.clock.thresholds(POLICY))
    assert folded.due_soon_at == folded.clock.due_soon_at(POLICY)
