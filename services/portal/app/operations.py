"""What an operator asks of the sync: where it stands, one dossier's ledger, send again;
and the gauges that show it on the dashboards.

Nothing here names a person: the ledger's views carry codes, steps, national statuses,
times and the portal's error codes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Gauge

from services.portal import store
from services.portal.settings import PortalSettings
from shared.clock import Clock, utc_now
from shared.db import Database
from shared.errors import NotFound
from shared.service import every

PENDING = Gauge("motcua_portal_pending", "Dossiers with a state not yet acknowledged.")
FAILED = Gauge("motcua_portal_failed", "Dossiers in the failed list (a 4xx answer).")
LAG = Gauge(
    "motcua_portal_lag_seconds",
    "Age of the oldest state not yet acknowledged by the portal (0 when none).",
)


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """Where the sync stands, in all and per receiving unit."""

    configured: bool
    synced: int
    pending: int
    failed: int
    oldest_pending: datetime | None
    units: list[store.UnitCounts]


@dataclass(frozen=True, slots=True)
class StateView:
    """One state of a dossier as the ledger holds it."""

    step: int
    national_status: int
    action: str | None
    at: datetime
    status: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class DossierSync:
    """One dossier's ledger row and states."""

    code: str
    created: bool
    acked_step: int
    acked_status: int | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    failed: bool
    synced_at: datetime | None
    waiting_for: list[str]
    states: list[StateView]


class Operations:
    """The operator's view of the ledger."""

    def __init__(self, db: Database, settings: PortalSettings, *, clock: Clock = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    async def status(self) -> SyncStatus:
        """Dossiers synced, pending, failed, and the oldest pending state, per unit."""
        async with self.db.sessions() as session:
            units = await store.counts(session)
        oldest = [u.oldest_pending for u in units if u.oldest_pending is not None]
        return SyncStatus(
            configured=self.settings.configured,
            synced=sum(u.synced for u in units),
            pending=sum(u.pending for u in units),
            failed=sum(u.failed for u in units),
            oldest_pending=min(oldest) if oldest else None,
            units=sorted(units, key=lambda u: u.unit or ""),
        )

    async def dossier(self, code: str) -> DossierSync:
        """One dossier's ledger; ``NotFound`` for a dossier the ledger does not hold."""
        async with self.db.sessions() as session:
            row = await store.dossier(session, code)
            states = await store.states_of(session, code)
        if row is None:
            raise NotFound(f"the portal ledger holds no dossier {code}")
        missing = {"lifecycle facts": row.facts is None, "applicant": row.applicant is None}
        waiting = [what for what, absent in missing.items() if absent]
        return DossierSync(
            code=row.code,
            created=row.created,
            acked_step=row.acked_step,
            acked_status=row.acked_status,
            attempts=row.attempts,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
            failed=row.failed,
            synced_at=row.synced_at,
            waiting_for=waiting,
            states=[
                StateView(s.step, s.national_status, s.action, s.at, s.status, s.sent_at)
                for s in states
            ],
        )

    async def resync(self, code: str) -> None:
        """Send the dossier again now (out of the failed list; its latest state again if
        nothing is pending); ``NotFound`` for a dossier the ledger does not hold."""
        async with self.db.transaction() as session:
            if not await store.resync(session, code, self.clock()):
                raise NotFound(f"the portal ledger holds no dossier {code}")

    async def resync_failed(self) -> int:
        """Try every dossier of the failed list again now; return how many."""
        async with self.db.transaction() as session:
            return await store.resync_failed(session, self.clock())

    async def refresh_gauges(self) -> None:
        """Set the pending, failed and lag gauges from the ledger."""
        current = await self.status()
        PENDING.set(current.pending)
        FAILED.set(current.failed)
        oldest = current.oldest_pending
        LAG.set(max(0.0, (self.clock() - oldest).total_seconds()) if oldest else 0.0)

    async def gauge_job(self) -> None:
        """Refresh the gauges every ``gauge_seconds`` until cancelled."""
        await every(self.settings.gauge_seconds, self.refresh_gauges, "portal gauges")
