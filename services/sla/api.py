"""SLA's HTTP API: the clock of a dossier."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, HTTPException, status
from pydantic import BaseModel

from services.sla import domain
from services.sla.app import Tracker, build
from shared.clock import in_vietnam
from shared.service import create_http_app
from shared.settings import Settings, get_settings


class ClockOut(BaseModel):
    """A dossier's clock."""

    code: str
    office: str | None
    started_at: datetime | None
    due_at: datetime | None
    state: domain.ClockState


def router(tracker: Tracker) -> APIRouter:
    """The clock endpoints."""
    api = APIRouter(prefix="/api/v1/sla", tags=["sla"])

    @api.get("/{code}", response_model=ClockOut)
    async def get_clock(code: str) -> ClockOut:
        """Due time and state of one dossier."""
        row = await tracker.get(code)
        if row is None or row.started_at is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no clock for {code}")
        return ClockOut(
            code=row.code,
            office=row.office,
            started_at=in_vietnam(row.started_at),
            due_at=row.due_at and in_vietnam(row.due_at),
            state=domain.state_at(row.due_at, datetime.now(UTC)),
        )

    return api


def create_app(settings: Settings | None = None) -> FastAPI:
    """SLA's process."""
    tracker = build(settings or get_settings())
    return create_http_app(
        tracker.runtime,
        title="motcua sla",
        description="The legal clock of every open dossier (thời hạn giải quyết).",
        routers=[router(tracker)],
    )
