"""The portal sync's HTTP API, for administrators: where the sync stands, one dossier's
ledger, and sending again (one dossier, or every dossier of the failed list); and one
public summary for the monitoring dashboard.

Access: admin keys only (``X-API-Key``, checked against the portal's copy of the keys
intake issues): 401 without a live key, 403 for any other role. The exception is
``GET /api/v1/portal/summary``, public like notify's ``/dashboard`` that shows it: counts
per receiving unit and the oldest pending age, no dossier code, no personal data.
"""

# No ``from __future__ import annotations``: FastAPI evaluates the endpoints' annotations,
# and ``Depends(admin)`` names a variable local to ``router``.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, Field, model_validator

from services.portal import process, views
from services.portal.app import Operations
from services.portal.settings import PortalSettings
from shared.auth import Authenticator, Principal, Role
from shared.clock import Clock, utc_now
from shared.keys_sync import key_lookup
from shared.service import create_http_app
from shared.settings import Settings, get_settings

ADMIN: dict[int | str, dict[str, Any]] = {
    401: {"description": "No live API key."},
    403: {"description": "The key is not an admin key."},
}


class ResyncIn(BaseModel):
    """Send one dossier again (``code``), or every dossier of the failed list."""

    code: str | None = Field(None, min_length=1, max_length=40)
    failed: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> "ResyncIn":
        if (self.code is None) == (not self.failed):
            raise ValueError("give either code or failed: true")
        return self


def router(operations: Operations, auth: Authenticator) -> APIRouter:
    """The admin endpoints of the sync, and its public summary."""
    public = APIRouter(prefix="/api/v1/portal", tags=["portal"])
    api = APIRouter(responses=ADMIN)
    admin = auth.require(Role.ADMIN)

    @public.get("/summary")
    async def sync_summary() -> views.SyncSummaryOut:
        """Public: dossiers synced, pending, failed and the oldest pending age, per unit
        (the dashboard's "Đồng bộ Cổng DVCQG"); counts only, no key needed."""
        return views.summary_out(await operations.status(), operations.clock())

    @api.get("/status")
    async def sync_status(_: Annotated[Principal, Depends(admin)]) -> views.SyncStatusOut:
        """Dossiers synced, pending and failed, the oldest pending state, per unit."""
        return views.status_out(await operations.status())

    @api.get("/dossiers/{code}", responses={404: {"description": "Not in the ledger."}})
    async def dossier_sync(
        code: str, _: Annotated[Principal, Depends(admin)]
    ) -> views.DossierSyncOut:
        """One dossier's ledger: acknowledged step and status, attempts, last error."""
        return views.dossier_out(await operations.dossier(code))

    @api.post("/resync", responses={404: {"description": "Not in the ledger."}})
    async def resync(body: ResyncIn, _: Annotated[Principal, Depends(admin)]) -> views.ResyncOut:
        """Send one dossier again now, or every dossier of the failed list."""
        if body.code is not None:
            await operations.resync(body.code)
            return views.ResyncOut(resynced=1)
        return views.ResyncOut(resynced=await operations.resync_failed())

    public.include_router(api)
    return public


def create_app(
    settings: Settings | None = None,
    *,
    portal: PortalSettings | None = None,
    clock: Clock = utc_now,
) -> FastAPI:
    """The portal sync's process: consumer, sender, gauges and the admin API."""
    built = process.build(settings or get_settings(), portal=portal, clock=clock)
    auth = Authenticator(key_lookup(built.runtime.db))
    operations = built.operations
    return create_http_app(
        built.runtime,
        title="motcua portal",
        description="The sync of every dossier's state to the national public-service portal "
        "(Cổng DVCQG).",
        routers=[router(operations, auth)],
        background=[built.sender.send_forever, operations.gauge_job],
    )
