"""What the API and the gauges read: one dossier's clock, the open dossiers by state."""

from __future__ import annotations

from prometheus_client import Gauge

from services.sla import store
from services.sla.app.core import TrackerCore
from shared.service import every

OPEN_DOSSIERS = Gauge(
    "motcua_sla_open_dossiers", "Open dossiers by clock state and office.", ["state", "office"]
)
OVERDUE_DOSSIERS = Gauge("motcua_sla_overdue_dossiers", "Open dossiers past their due time.")


class Queries(TrackerCore):
    """Reads for the clock API and the state gauges."""

    async def emitted(self, code: str) -> set[tuple[str, int]]:
        """The flags already raised for ``code``: (kind, step), the dossier's step -1."""
        async with self.db.sessions() as session:
            return (await store.emitted_flags(session, [code]))[code]

    async def get(self, code: str) -> tuple[store.ClockRow, list[store.LedgerEntry]] | None:
        """The clock row of one dossier and its ledger."""
        async with self.db.sessions() as session:
            clocks, ledgers, _ = await store.load(session, [code])
        row = clocks.get(code)
        return None if row is None else (row, ledgers[code])

    async def refresh_gauges(self) -> None:
        """Set the state gauges from the table."""
        async with self.db.sessions() as session:
            counts = await store.open_by_state(session, self.now())
        OPEN_DOSSIERS.clear()
        for state, office, count in counts:
            OPEN_DOSSIERS.labels(state, office).set(count)
        OVERDUE_DOSSIERS.set(sum(n for state, _, n in counts if state == "overdue"))

    async def run_gauges(self) -> None:
        """Refresh the gauges periodically."""
        await every(self.sla.gauge_seconds, self.refresh_gauges, "sla gauges")
