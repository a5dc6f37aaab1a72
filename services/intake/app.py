"""Intake's wiring: the runtime (database, broker, outbox relay) and the use cases.

Every use case writes the dossier, its history and its event in one transaction; the
relay publishes the event afterwards. Nothing here waits for Kafka. A request sent
with an ``Idempotency-Key`` stores its answer in that same transaction.

The catalogue is a read copy: the newest version routing published (kept in intake's
``catalogue_copy`` table, read back on the first use after a start), else the shipped
seed. A procedure a later version removed stays known for dossiers already in hand
(slip, acceptance) but is refused for new ones.

The use cases are by role (:mod:`~services.intake.reception`,
:mod:`~services.intake.actions`, :mod:`~services.intake.lookup`, over
:mod:`~services.intake.core`); :class:`Intake` joins them with the consumers and
background jobs; :mod:`~services.intake.process` wires it all. Every SQL statement is in
:mod:`~services.intake.store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake import store
from services.intake.actions import DOSSIER_ACTIONS, Actions
from services.intake.core import (
    SERVICE,
    ActionRequest,
    Answer,
    CatalogueError,
    Idempotency,
    IdempotencyConflict,
    NewDossier,
    NoSlip,
)
from services.intake.keyring import announce_keys
from services.intake.lookup import PUBLIC_LOOKUP_PATH, Lookup
from services.intake.reception import DOSSIERS_RECEIVED, Reception
from shared.events import DossierRouted, Envelope, of_type
from shared.service import every, until_done
from shared.signing import key_signing

__all__ = [
    "DOSSIERS_RECEIVED",
    "DOSSIER_ACTIONS",
    "PUBLIC_LOOKUP_PATH",
    "SERVICE",
    "ActionRequest",
    "Answer",
    "CatalogueError",
    "Idempotency",
    "IdempotencyConflict",
    "Intake",
    "NewDossier",
    "NoSlip",
]

_KEYS_RETRY_SECONDS = 2.0
_PURGE_SECONDS = 3600.0


class Intake(Reception, Actions, Lookup):
    """Intake's use cases over its runtime: reception, actions and look-ups, the routing
    consumer and the background jobs."""

    async def apply_routing(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Keep who handles each dossier from routing's ``dossier.routed`` (a re-route
        replaces the offices before it): the offices whose keys act on it.

        Two statements a batch; of a dossier routed twice in one batch, the later wins
        (events come in partition order)."""
        latest: dict[str, list[str]] = {}
        for routed, envelope in of_type(events, DossierRouted):
            if envelope.dossier_code is None:
                continue
            offices = [step.office for step in routed.steps] or [routed.office]
            if offices[0] != routed.office:
                offices.insert(0, routed.office)
            latest[envelope.dossier_code] = offices
        await store.replace_handlers(session, latest)

    async def keys_job(self) -> None:
        """At start: announce the keys whose state never reached the outbox (keys made
        before keys were events), then wake the relay; retried while the database is away.
        """

        async def catch_up() -> None:
            signing = key_signing(self.runtime.settings)
            if await announce_keys(self.runtime.db, signing, clock=self.clock):
                self.runtime.relay.wake()

        await until_done(catch_up, "intake key announcement", _KEYS_RETRY_SECONDS)

    async def purge_answers(self) -> None:
        """Forget the idempotent answers older than the kept window (a retry after it is
        a new request)."""
        before = self.clock() - timedelta(hours=self.options.idempotency_keep_hours)
        async with self.runtime.db.transaction() as session:
            await store.purge_answers(session, before)

    async def purge_job(self) -> None:
        """Purge old idempotent answers hourly (a background job of the process)."""
        await every(_PURGE_SECONDS, self.purge_answers, "intake idempotency purge")
