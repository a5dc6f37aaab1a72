"""What sla's API answers: a dossier's clock, explained by its ledger, built from the
fold (``services.sla.domain.Clock``). Times are in Vietnam time (+07:00)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from services.sla import store
from services.sla.domain import DOSSIER_STEP, HOUR, Clock, ClockState, Outcome, Policy
from shared.clock import in_vietnam, in_vietnam_or_none

ZERO = timedelta(0)


class LedgerLineOut(BaseModel):
    """One ledger line: when, what, why, and the due time after it."""

    at: datetime
    kind: str
    reason: str | None
    due_at: datetime | None
    extended_due_at: datetime | None
    note: str


class StepOut(BaseModel):
    """One step of an inter-agency chain (form 6)."""

    index: int
    office: str
    started_at: datetime | None
    due_at: datetime | None
    ended_at: datetime | None
    outcome: Outcome | None


class WarningOut(BaseModel):
    """A flag of the running clock: when it falls due, its window, whether it was raised.

    ``step`` is null for the dossier itself; ``window_hours`` is the working time left at
    ``at`` (the due-soon and apology windows scale with the time limit; 0 for overdue).
    """

    kind: str
    step: int | None
    at: datetime
    window_hours: float
    emitted: bool


class ClockOut(BaseModel):
    """A dossier's clock. ``due_at`` is the due time of the class; an apology's new date
    is ``extended_due_at``. Times are in Vietnam time (+07:00)."""

    code: str
    due_at: datetime | None
    state: ClockState
    outcome: Outcome | None
    working_hours_used: float
    working_hours_left: float | None
    ledger: list[LedgerLineOut]
    steps: list[StepOut]
    extended_due_at: datetime | None
    started_at: datetime
    office: str | None
    supplement_requests: int
    closure: str | None
    warnings: list[WarningOut]


def _hours(span: timedelta) -> float:
    return round(span / HOUR, 4)


def ledger_out(clock: Clock) -> list[LedgerLineOut]:
    """The clock's ledger lines."""
    return [
        LedgerLineOut(
            at=in_vietnam(line.at),
            kind=line.kind,
            reason=line.reason,
            due_at=in_vietnam_or_none(line.due_at),
            extended_due_at=in_vietnam_or_none(line.extended_due_at),
            note=line.note,
        )
        for line in clock.ledger
    ]


def steps_out(clock: Clock, policy: Policy) -> list[StepOut]:
    """The clock's chain steps, each with its class once it ended."""
    return [
        StepOut(
            index=step.index,
            office=step.office,
            started_at=in_vietnam_or_none(step.started_at),
            due_at=in_vietnam_or_none(step.due_at),
            ended_at=in_vietnam_or_none(step.ended_at),
            outcome=clock.step_outcome(step, policy),
        )
        for step in clock.steps
    ]


def warnings_out(clock: Clock, policy: Policy, emitted: set[tuple[str, int]]) -> list[WarningOut]:
    """The clock's thresholds, each marked if its flag was raised."""
    return [
        WarningOut(
            kind=t.kind,
            step=None if t.step == DOSSIER_STEP else t.step,
            at=in_vietnam(t.at),
            window_hours=_hours(max(clock.calendar.working_time_between(t.at, t.due_at), ZERO)),
            emitted=(t.kind, t.step) in emitted,
        )
        for t in clock.thresholds(policy)
    ]


def clock_out(
    row: store.ClockRow,
    clock: Clock,
    *,
    emitted: set[tuple[str, int]],
    now: datetime,
    policy: Policy,
) -> ClockOut:
    """The clock of ``row`` (folded into ``clock``) as the API shows it at ``now``."""
    left = clock.working_left(now)
    return ClockOut(
        code=row.code,
        due_at=in_vietnam_or_none(clock.due_at),
        state=clock.state_at(now, policy),
        outcome=clock.outcome(policy),
        working_hours_used=_hours(clock.working_used(now)),
        working_hours_left=None if left is None else _hours(left),
        ledger=ledger_out(clock),
        steps=steps_out(clock, policy),
        extended_due_at=in_vietnam_or_none(clock.shown_due_at if clock.extensions else None),
        started_at=in_vietnam(clock.started_at),
        office=row.office,
        supplement_requests=clock.supplement_requests,
        closure=clock.closure.value if clock.closure else None,
        warnings=warnings_out(clock, policy, emitted),
    )
