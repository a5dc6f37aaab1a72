"""SLA's HTTP API: the clock of a dossier, explained by its ledger.

Access: every endpoint needs a live API key (``X-API-Key``, checked against sla's copy of
the keys intake issues: 401 without one). ``shared.auth``'s access rule: a key bound to a
unit reads only the dossiers that unit has a part in: received there, or handled there
(the routed office or the office of a chain step); any other dossier answers 404, exactly
as an unknown one. Admin keys and keys of every unit (``*``) read every dossier; a kiosk
key reads none (403).
"""

# No ``from __future__ import annotations`` here: FastAPI evaluates the endpoint's
# annotations, and ``Depends(reader)`` names a variable local to ``router``.

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel

from services.sla import store
from services.sla.app import Tracker, build
from services.sla.domain import DOSSIER_STEP, HOUR, ClockState, Outcome
from services.sla.settings import SlaSettings
from shared.auth import (
    Access,
    Authenticator,
    DossierUnits,
    Principal,
    dossier_not_found,
    may_reach,
    require_access,
)
from shared.clock import in_vietnam, in_vietnam_or_none
from shared.keys_sync import key_lookup
from shared.service import create_http_app
from shared.settings import Settings, get_settings


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


ZERO = timedelta(0)


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


def units_of(row: store.DossierClock) -> DossierUnits:
    """The units that have a part in a tracked dossier: the receiving unit, the routed
    office and the office of every chain step (those recorded so far)."""
    offices = (step[0] for step in row.steps or [] if step)
    return DossierUnits.of(row.receiving_unit, row.office, *offices)


def router(tracker: Tracker, auth: Authenticator) -> APIRouter:
    """The clock endpoints (every one needs an API key)."""
    api = APIRouter(prefix="/api/v1/sla", tags=["sla"])
    reader = require_access(auth, Access.READ)

    @api.get(
        "/{code}",
        response_model=ClockOut,
        responses={
            401: {"description": "No live API key."},
            403: {"description": "The key's role reads no dossier (kiosk)."},
            404: {
                "description": "No clock for this code (yet), or the key's unit has no part in it."
            },
        },
    )
    async def get_clock(code: str, principal: Annotated[Principal, Depends(reader)]) -> ClockOut:
        """Due time, working time used and left, state, ledger and steps of one dossier.

        Any live key; a key bound to a unit only for dossiers received or handled there.
        """
        found = await tracker.get(code)
        clock = None if found is None else tracker.replay(*found)
        if (
            found is None
            or clock is None
            or not may_reach(principal, Access.READ, units_of(found[0]))
        ):
            raise dossier_not_found(code)
        row = found[0]
        emitted = await tracker.emitted(code)
        now = tracker.now()
        left = clock.working_left(now)
        policy = tracker.policy
        return ClockOut(
            code=code,
            due_at=in_vietnam_or_none(clock.due_at),
            state=clock.state_at(now, policy),
            outcome=clock.outcome(policy),
            working_hours_used=round(clock.working_used(now) / HOUR, 4),
            working_hours_left=None if left is None else round(left / HOUR, 4),
            ledger=[
                LedgerLineOut(
                    at=in_vietnam(line.at),
                    kind=line.kind,
                    reason=line.reason,
                    due_at=in_vietnam_or_none(line.due_at),
                    extended_due_at=in_vietnam_or_none(line.extended_due_at),
                    note=line.note,
                )
                for line in clock.ledger
            ],
            steps=[
                StepOut(
                    index=step.index,
                    office=step.office,
                    started_at=in_vietnam_or_none(step.started_at),
                    due_at=in_vietnam_or_none(step.due_at),
                    ended_at=in_vietnam_or_none(step.ended_at),
                    outcome=clock.step_outcome(step, policy),
                )
                for step in clock.steps
            ],
            extended_due_at=in_vietnam_or_none(clock.shown_due_at if clock.extensions else None),
            started_at=in_vietnam(clock.started_at),
            office=row.office,
            supplement_requests=clock.supplement_requests,
            closure=clock.closure.value if clock.closure else None,
            warnings=[
                WarningOut(
                    kind=t.kind,
                    step=None if t.step == DOSSIER_STEP else t.step,
                    at=in_vietnam(t.at),
                    window_hours=round(
                        max(clock.calendar.working_time_between(t.at, t.due_at), ZERO) / HOUR, 4
                    ),
                    emitted=(t.kind, t.step) in emitted,
                )
                for t in clock.thresholds(policy)
            ],
        )

    return api


def create_app(settings: Settings | None = None, sla: SlaSettings | None = None) -> FastAPI:
    """SLA's process: consumer, deadline scheduler, gauges and the clock API (behind the
    keys intake issues, as sla's copy of them holds them)."""
    tracker = build(settings or get_settings(), sla=sla)
    auth = Authenticator(key_lookup(tracker.runtime.db))
    return create_http_app(
        tracker.runtime,
        title="motcua sla",
        description="The legal clock of every open dossier (thời hạn giải quyết).",
        routers=[router(tracker, auth)],
        background=[tracker.run_scheduler, tracker.run_gauges],
    )
