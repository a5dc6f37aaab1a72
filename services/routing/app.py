"""Routing's wiring: consume received dossiers, decide, record, publish the decision."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.routing import domain, store
from shared.catalogue import Catalogue, seed_catalogue
from shared.consume import subscribe
from shared.events import (
    DossierReceived,
    DossierRouted,
    DossierUnroutable,
    Envelope,
)
from shared.outbox import enqueue
from shared.service import ServiceRuntime
from shared.settings import ServiceName, Settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING

SERVICE: ServiceName = "routing"

ROUTED = Counter("motcua_dossiers_routed_total", "Dossiers routed, by office.", ["office"])
UNROUTABLE = Counter("motcua_dossiers_unroutable_total", "Dossiers sent to the manual queue.")
MANUAL_QUEUE = Gauge("motcua_routing_manual_queue", "Dossiers waiting in the manual queue.")


class Routing:
    """Routing's use cases."""

    def __init__(self, runtime: ServiceRuntime, catalogue: Catalogue) -> None:
        self.runtime = runtime
        self.catalogue = catalogue

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Route every received dossier once (inside the inbox transaction).

        Batched: one query finds the dossiers already decided, new rows are added
        together and flushed as one multi-row insert at commit.
        """
        received = {
            envelope.dossier_code: envelope
            for envelope in events
            if envelope.type == DossierReceived.event_type and envelope.dossier_code
        }
        if not received:
            return
        codes = list(received)
        decided = set(
            (
                await session.exec(
                    select(store.Assignment.dossier_code).where(
                        col(store.Assignment.dossier_code).in_(codes)
                    )
                )
            ).all()
        ) | set(
            (
                await session.exec(
                    select(store.ManualQueueEntry.dossier_code).where(
                        col(store.ManualQueueEntry.dossier_code).in_(codes)
                    )
                )
            ).all()
        )
        now = datetime.now(UTC)
        for code, envelope in received.items():
            if code not in decided:
                self._decide(session, code, envelope, now)

    def _decide(self, session: AsyncSession, code: str, envelope: Envelope, now: datetime) -> None:
        received: DossierReceived = envelope.body(DossierReceived)
        decision = domain.decide(self.catalogue, received.procedure_code, received.receiving_unit)
        payload: DossierRouted | DossierUnroutable
        if isinstance(decision, domain.Routed):
            session.add(
                store.Assignment(
                    dossier_code=code,
                    procedure_code=received.procedure_code,
                    office=decision.office,
                    field=decision.field,
                    rule=decision.rule,
                    catalogue_version=self.catalogue.version,
                    routed_at=now,
                )
            )
            payload = DossierRouted(
                procedure_code=received.procedure_code,
                office=decision.office,
                field=decision.field,
                rule=decision.rule,
                catalogue_version=self.catalogue.version,
            )
            ROUTED.labels(decision.office).inc()
        else:
            session.add(
                store.ManualQueueEntry(
                    dossier_code=code,
                    procedure_code=received.procedure_code,
                    reason=decision.reason,
                    queued_at=now,
                )
            )
            payload = DossierUnroutable(
                procedure_code=received.procedure_code, reason=decision.reason
            )
            UNROUTABLE.inc()
            MANUAL_QUEUE.inc()
        enqueue(
            session,
            Envelope.wrap(
                payload,
                occurred_at=now,
                source=SERVICE,
                dossier_code=code,
                correlation_id=envelope.correlation_id,
            ),
            DOSSIER_ROUTING.name,
        )


def build(settings: Settings) -> Routing:
    """Routing's runtime, use cases and subscriber."""
    runtime = ServiceRuntime(SERVICE, settings, tables=store.TABLES, publishes=[DOSSIER_ROUTING])
    routing = Routing(runtime, seed_catalogue())
    subscribe(runtime, routing.apply, DOSSIER_LIFECYCLE)
    return routing
