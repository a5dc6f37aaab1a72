"""SLA's wiring: start the clock on reception, note the office on routing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.sla import store
from shared.consume import subscribe
from shared.events import ClockStarted, DossierReceived, DossierRouted, Envelope
from shared.outbox import enqueue
from shared.service import ServiceRuntime
from shared.settings import ServiceName, Settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_SLA

SERVICE: ServiceName = "sla"

TRACKED = Counter("motcua_dossiers_tracked_total", "Dossiers whose clock the tracker started.")


class Tracker:
    """SLA's use cases."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Start clocks and record offices (inside the inbox transaction)."""
        for envelope in events:
            code = envelope.dossier_code
            if code is None:
                continue
            if envelope.type == DossierReceived.event_type:
                await self._received(session, code, envelope)
            elif envelope.type == DossierRouted.event_type:
                routed: DossierRouted = envelope.body(DossierRouted)
                row = await self._row(session, code)
                row.office = routed.office
                session.add(row)

    async def _received(self, session: AsyncSession, code: str, envelope: Envelope) -> None:
        received: DossierReceived = envelope.body(DossierReceived)
        row = await self._row(session, code)
        if row.started_at is not None:
            return
        row.procedure_code = received.procedure_code
        row.receiving_unit = received.receiving_unit
        row.started_at = received.received_at
        row.due_at = received.due_at
        session.add(row)
        enqueue(
            session,
            Envelope.wrap(
                ClockStarted(started_at=received.received_at, due_at=received.due_at),
                occurred_at=datetime.now(UTC),
                source=SERVICE,
                dossier_code=code,
                correlation_id=envelope.correlation_id,
            ),
            DOSSIER_SLA.name,
        )
        TRACKED.inc()

    @staticmethod
    async def _row(session: AsyncSession, code: str) -> store.TrackedDossier:
        row = await session.get(store.TrackedDossier, code)
        if row is None:
            row = store.TrackedDossier(code=code, tracked_at=datetime.now(UTC))
            session.add(row)
        return row

    async def get(self, code: str) -> store.TrackedDossier | None:
        """The clock of one dossier."""
        async with self.runtime.db.sessions() as session:
            return await session.get(store.TrackedDossier, code)


def build(settings: Settings) -> Tracker:
    """SLA's runtime, use cases and subscriber."""
    runtime = ServiceRuntime(SERVICE, settings, tables=store.TABLES, publishes=[DOSSIER_SLA])
    tracker = Tracker(runtime)
    subscribe(runtime, tracker.apply, DOSSIER_LIFECYCLE, DOSSIER_ROUTING)
    return tracker
