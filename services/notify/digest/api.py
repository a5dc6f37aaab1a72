"""The digest's HTTP side: office heads at ``/api/v1/notifications/heads``, and queueing a
digest by hand. Heads' names and e-mails are personal data: every endpoint here needs an
admin key (401 without a live key, 403 for another role); never logged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, model_validator

from services.notify.digest import domain
from services.notify.digest.service import Digests
from shared.auth import Authenticator, Role
from shared.errors import NotFound

_ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    401: {"description": "No live API key."},
    403: {"description": "Not an admin key."},
}


class HeadIn(BaseModel):
    """The head of a unit (thủ trưởng cơ quan), who receives the unit's digest."""

    unit: str = Field(description="Agency code of the unit.")
    name: str
    email: str

    @model_validator(mode="after")
    def _valid(self) -> HeadIn:
        problem = domain.head_problem(self.unit, self.name, self.email)
        if problem:
            raise ValueError(problem)
        return self


class DigestIn(BaseModel):
    """Queue a period's digest by hand (it is sent once per unit and period, whoever asks)."""

    period: str = Field(description="`2026-10` (a month) or `2026-W43` (an ISO week).")
    unit: str | None = Field(None, description="Only this unit; every unit with a head if unset.")


def router(digests: Digests, auth: Authenticator) -> APIRouter:
    """The office heads and digest endpoints (admin keys only)."""
    api = APIRouter(
        prefix="/api/v1/notifications",
        tags=["notifications"],
        dependencies=[Depends(auth.require(Role.ADMIN))],
        responses=_ADMIN_ONLY,
    )

    @api.get("/heads")
    async def list_heads() -> list[HeadIn]:
        """Every office head, by unit."""
        return [HeadIn(unit=h.unit, name=h.name, email=h.email) for h in await digests.heads()]

    @api.put("/heads", status_code=204)
    async def put_head(body: HeadIn) -> None:
        """Record (or replace) the head of a unit."""
        await digests.set_head(body.unit, name=body.name, email=body.email)

    @api.delete("/heads", status_code=204, responses={404: {}})
    async def delete_head(unit: Annotated[str, Query(description="Agency code.")]) -> None:
        """Forget the head of a unit (its digests stop)."""
        if not await digests.remove_head(unit):
            raise NotFound("no head recorded for this unit")

    @api.post("/digests")
    async def queue_digest(body: DigestIn) -> dict[str, list[str]]:
        """Queue the digest of a period now; answers the keys newly queued."""
        period = domain.parse_period(body.period)
        return {"queued": await digests.queue(period, unit=body.unit)}

    return api
