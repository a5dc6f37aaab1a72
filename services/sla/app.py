"""SLA's wiring: start the clock on reception, note the office on routing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlmodel import col, select
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
        """Start clocks and record offices (inside the inbox transaction).

        Batched: the batch's dossiers are loaded with one query; events apply in order
        to those rows in memory and are flushed together at commit.
        """
        codes = {e.dossier_code for e in events if e.dossier_code}
        if not codes:
            return
        rows = {
            row.code: row
            for row in (
                await session.exec(
                    select(store.TrackedDossier).where(col(store.TrackedDossier.code).in_(codes))
                )
            ).all()
        }
        now = datetime.now(UTC)
        for envelope in events:
            code = envelope.dossier_code
            if code is None:
                continue
            if envelope.type == DossierReceived.event_type:
                self._received(session, self._row(session, rows, code, now), envelope, now)
            elif envelope.type == DossierRouted.event_type:
                routed: DossierRouted = envelope.body(DossierRouted)
                self._row(session, rows, code, now).office = routed.office

    @staticmethod
    def _received(
        session: AsyncSession, row: store.TrackedDossier, envelope: Envelope, now: datetime
    ) -> None:
        if row.started_at is not None:
            return
        received: DossierReceived = envelope.body(DossierReceived)
        row.procedure_code = received.procedure_code
        row.receiving_unit = received.receiving_unit
        row.started_at = received.received_at
        row.due_at = received.due_at
        enqueue(
            session,
            Envelope.wrap(
                ClockStarted(started_at=received.received_at, due_at=received.due_at),
                occurred_at=now,
                source=SERVICE,
                dossier_code=row.code,
                correlation_id=envelope.correlation_id,
            ),
            DOSSIER_SLA.name,
        )
        TRACKED.inc()

    @staticmethod
    def _row(
        session: AsyncSession, rows: dict[str, store.TrackedDossier], code: str, now: datetime
    ) -> store.TrackedDossier:
        row = rows.get(code)
        if row is None:
            row = rows[code] = store.TrackedDossier(code=code, tracked_at=now)
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
