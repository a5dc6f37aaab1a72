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

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI

from services.sla import process, store, views
from services.sla.app import Tracker
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
from shared.keys_sync import key_lookup
from shared.service import create_http_app
from shared.settings import Settings, get_settings


def units_of(row: store.ClockRow) -> DossierUnits:
    """The units that have a part in a tracked dossier: the receiving unit, the routed
    office and the office of every chain step (those recorded so far)."""
    offices = (step[0] for step in row.steps or [] if step)
    return DossierUnits.of(row.receiving_unit, row.office, *offices)


async def clock_of(tracker: Tracker, code: str, principal: Principal) -> views.ClockOut:
    """The clock of ``code`` as ``principal`` may see it: ``NotFound`` (as for an unknown
    code) when it is not tracked yet, not received yet, or the key's unit has no part in it."""
    found = await tracker.get(code)
    clock = None if found is None else tracker.replay(*found)
    if found is None or clock is None or not may_reach(principal, Access.READ, units_of(found[0])):
        raise dossier_not_found(code)
    return views.clock_out(
        found[0],
        clock,
        emitted=await tracker.emitted(code),
        now=tracker.now(),
        policy=tracker.policy,
    )


def router(tracker: Tracker, auth: Authenticator) -> APIRouter:
    """The clock endpoints (every one needs an API key)."""
    api = APIRouter(prefix="/api/v1/sla", tags=["sla"])
    reader = require_access(auth, Access.READ)

    @api.get(
        "/{code}",
        response_model=views.ClockOut,
        responses={
            401: {"description": "No live API key."},
            403: {"description": "The key's role reads no dossier (kiosk)."},
            404: {
                "description": "No clock for this code (yet), or the key's unit has no part in it."
            },
        },
    )
    async def get_clock(
        code: str, principal: Annotated[Principal, Depends(reader)]
    ) -> views.ClockOut:
        """Due time, working time used and left, state, ledger and steps of one dossier.

        Any live key; a key bound to a unit only for dossiers received or handled there.
        """
        return await clock_of(tracker, code, principal)

    return api


def create_app(settings: Settings | None = None, sla: SlaSettings | None = None) -> FastAPI:
    """SLA's process: consumer, deadline scheduler, gauges and the clock API (behind the
    keys intake issues, as sla's copy of them holds them)."""
    built = process.build(settings or get_settings(), sla=sla)
    tracker = built.tracker
    auth = Authenticator(key_lookup(tracker.db))
    return create_http_app(
        built.runtime,
        title="motcua sla",
        description="The legal clock of every open dossier (thời hạn giải quyết).",
        routers=[router(tracker, auth)],
        background=[tracker.run_scheduler, tracker.run_gauges],
    )
