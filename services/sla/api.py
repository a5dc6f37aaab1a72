"""SLA's HTTP API: the clock of a dossier, explained by its ledger."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, FastAPI, HTTPException, status
from pydantic import BaseModel

from services.sla.app import SlaSettings, Tracker, build
from services.sla.domain import HOUR, ClockState, Outcome
from shared.clock import in_vietnam
from shared.service import create_http_app
from shared.settings import Settings, get_settings


def _vn(value: datetime | None) -> datetime | None:
    return None if value is None else in_vietnam(value)


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


def router(tracker: Tracker) -> APIRouter:
    """The clock endpoints."""
    api = APIRouter(prefix="/api/v1/sla", tags=["sla"])

    @api.get("/{code}", response_model=ClockOut)
    async def get_clock(code: str) -> ClockOut:
        """Due time, working time used and left, state, ledger and steps of one dossier."""
        found = await tracker.get(code)
        clock = None if found is None else tracker.replay(*found)
        if found is None or clock is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no clock for {code}")
        row = found[0]
        now = tracker.now()
        left = clock.working_left(now)
        policy = tracker.policy
        return ClockOut(
            code=code,
            due_at=_vn(clock.due_at),
            state=clock.state_at(now, policy),
            outcome=clock.outcome(policy),
            working_hours_used=round(clock.working_used(now) / HOUR, 4),
            working_hours_left=None if left is None else round(left / HOUR, 4),
            ledger=[
                LedgerLineOut(
                    at=in_vietnam(line.at),
                    kind=line.kind,
                    reason=line.reason,
                    due_at=_vn(line.due_at),
                    extended_due_at=_vn(line.extended_due_at),
                    note=line.note,
                )
                for line in clock.ledger
            ],
            steps=[
                StepOut(
                    index=step.index,
                    office=step.office,
                    started_at=_vn(step.started_at),
                    due_at=_vn(step.due_at),
                    ended_at=_vn(step.ended_at),
                    outcome=clock.step_outcome(step, policy),
                )
                for step in clock.steps
            ],
            extended_due_at=_vn(clock.shown_due_at if clock.extensions else None),
            started_at=in_vietnam(clock.started_at),
            office=row.office,
            supplement_requests=clock.supplement_requests,
            closure=clock.closure.value if clock.closure else None,
        )

    return api


def create_app(settings: Settings | None = None, sla: SlaSettings | None = None) -> FastAPI:
    """SLA's process: consumer, deadline scheduler, gauges and the clock API."""
    tracker = build(settings or get_settings(), sla=sla)
    return create_http_app(
        tracker.runtime,
        title="motcua sla",
        description="The legal clock of every open dossier (thời hạn giải quyết).",
        routers=[router(tracker)],
        background=[tracker.run_scheduler, tracker.run_gauges],
    )
