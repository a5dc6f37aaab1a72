"""The consumer's role: apply a batch of lifecycle and routing events to the clocks.

Events change a dossier's terms and ledger; the fold is recomputed in the same
transaction. The final class is written to ``sla_flag`` (unique per dossier, kind and
step) in the transaction of the outbox row that announces it, so it is published once
per dossier, however often an event is redelivered. The due times of a dossier with a
chain (``sla.due_times``: the dossier's and every step's) are published in the
transaction that stores them on its clock row, only when the refold moved them (the
first computation, the end of a pause, a restart, a transfer, a new chain): a
redelivered event publishes nothing, and the latest ``sla.due_times`` of a dossier holds
its current due times.

A batch costs a constant number of statements, whatever its size: three reads (clocks,
ledgers, flags of its dossiers, ``IN (...)``), then one write each for the clocks (an
upsert; for a rebuild, the sole writer, a plain insert of the clocks first seen and an
upsert of the others), the new ledger entries, the final classes' flags and the outbox
rows. Events are applied in the batch's order, so each dossier's events in their topic
order. Clocks without actions are folded once per distinct terms (``TrackerCore.fold``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter
from sqlalchemy import event
from sqlmodel.ext.asyncio.session import AsyncSession

from services.sla import store
from services.sla.app.core import FINISHED_FLAG, TrackerCore, moved_due_times
from services.sla.domain import DOSSIER_STEP, Clock
from shared.events import (
    Channel,
    ClockStarted,
    DossierActionRecorded,
    DossierReceived,
    DossierRouted,
    Envelope,
    SlaDueTimes,
    SlaFinished,
)
from shared.handlers import Handlers

TRACKED = Counter("motcua_dossiers_tracked_total", "Dossiers whose clock the tracker started.")
FINISHED = Counter("motcua_sla_finished_total", "Dossiers finished, by class.", ["outcome"])

_HANDLED = {DossierReceived.event_type, DossierActionRecorded.event_type, DossierRouted.event_type}


@dataclass(slots=True)
class _Batch:
    """What one batch read and what it will write, in memory until its writes."""

    now: datetime
    clocks: dict[str, store.ClockRow]
    ledgers: dict[str, list[store.LedgerEntry]]
    emitted: store.Emitted
    touched: dict[str, uuid.UUID] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    new_entries: list[store.LedgerEntry] = field(default_factory=list)
    moved: dict[str, SlaDueTimes] = field(default_factory=dict)
    """The due times to publish, per dossier whose refold moved them."""

    def row(self, code: str) -> store.ClockRow:
        """The clock row of ``code``, made if the dossier is seen for the first time
        (received and routed may come in either order)."""
        found = self.clocks.get(code)
        if found is None:
            found = self.clocks[code] = store.ClockRow(code=code, tracked_at=self.now)
        return found

    def recorders(self) -> Handlers[bool]:
        """Per event type, how this batch records an event (``False``: nothing changed)."""
        record: Handlers[bool] = Handlers()
        record.add(DossierReceived, self.received)
        record.add(DossierActionRecorded, self.action)
        record.add(DossierRouted, self.routed)
        return record

    def received(self, received: DossierReceived, envelope: Envelope) -> bool:
        """Record the terms; ``False`` for a repeated reception."""
        row = self.row(envelope.dossier_code or "")
        if row.started_at is not None:
            return False
        row.started_at = received.received_at
        row.slip_due_at = received.due_at
        row.limit_value = str(received.time_limit.value)
        row.limit_unit = received.time_limit.unit
        row.supplement_rule = received.supplement_rule
        row.procedure_code = received.procedure_code
        row.receiving_unit = received.receiving_unit
        row.channel = received.channel.value
        self.started.add(row.code)
        return True

    def action(self, action: DossierActionRecorded, envelope: Envelope) -> bool:
        """Add the action to the ledger; ``False`` if its ``sequence`` is there already."""
        code = self.row(envelope.dossier_code or "").code
        ledger = self.ledgers.setdefault(code, [])
        if any(e.sequence == action.sequence for e in ledger):
            return False
        entry = store.LedgerEntry(
            code,
            action.sequence,
            action.action.value,
            action.at,
            action.reason,
            action.new_due_at,
            action.office,
        )
        ledger.append(entry)
        self.new_entries.append(entry)
        return True

    def routed(self, routed: DossierRouted, envelope: Envelope) -> bool:
        """Record the responsible office and the chain."""
        row = self.row(envelope.dossier_code or "")
        row.office = routed.office
        row.steps = [[s.office, str(s.hours)] for s in routed.steps]
        return True


class Tracking(TrackerCore):
    """The consumer: record events on clock rows and ledgers, refold, announce."""

    async def apply(
        self, session: AsyncSession, events: Sequence[Envelope], *, sole_writer: bool = False
    ) -> list[store.Written]:
        """Record the batch's events and refold the dossiers they touch (one transaction).

        An action whose ``sequence`` is already in the ledger is skipped (a late or
        repeated action is kept once); the final class is announced only if this
        transaction inserted its flag. With ``sole_writer`` (a rebuild: no other
        transaction writes these dossiers' rows meanwhile) the clocks not found in the
        table are inserted with a plain ``INSERT``, and the outbox rows written are
        answered, in publishing order, for the rebuild to sieve; otherwise every clock is
        upserted (another instance may insert the same dossier first) and nothing is
        answered.
        """
        codes = {e.dossier_code for e in events if e.dossier_code and e.type in _HANDLED}
        if not codes:
            return []
        clocks, ledgers, emitted = await store.load(session, codes)
        stored = set(clocks)
        batch = _Batch(self.now(), clocks, ledgers, emitted)
        record = batch.recorders()
        for envelope in events:
            if envelope.dossier_code is not None and record.handle(envelope):
                batch.touched[envelope.dossier_code] = envelope.correlation_id
        folded = {code: self._refold(batch, code) for code in batch.touched}
        if sole_writer:
            await store.insert_clocks(
                session, [batch.clocks[code] for code in batch.touched if code not in stored]
            )
            touched = [batch.clocks[code] for code in batch.touched if code in stored]
        else:
            touched = [batch.clocks[code] for code in batch.touched]
        await store.save_clocks(session, touched)
        await store.add_ledger_entries(session, batch.new_entries)
        rows = await self._announced(session, batch, folded)
        event.listen(session.sync_session, "after_commit", self._wake_scheduler, once=True)
        if not sole_writer:
            await store.add_outbox_rows(session, rows)
            return []
        return await store.add_outbox_rows_returning(session, rows)

    def _wake_scheduler(self, _session: object) -> None:
        self._wake.set()

    def _refold(self, batch: _Batch, code: str) -> Clock | None:
        """Recompute the row's summary from terms and ledger (and bump its version)."""
        row = batch.clocks[code]
        row.version += 1
        folded = self.fold(row, batch.ledgers.get(code, []))
        if folded is None:
            return None
        clock = folded.clock
        if clock.closure is not None:
            row.phase = clock.closure.value
        else:
            row.phase = "paused" if clock.open_pauses else "running"
        row.due_at = clock.due_at
        row.due_soon_at = folded.due_soon_at
        row.finished_at = clock.closed_at
        outcome = clock.outcome(self.policy)
        row.outcome = outcome.value if outcome else None
        row.next_deadline = folded.next_deadline(batch.emitted[code])
        if (due_times := moved_due_times(row, clock)) is not None:
            batch.moved[code] = due_times
        return clock

    async def _announced(
        self, session: AsyncSession, batch: _Batch, folded: dict[str, Clock | None]
    ) -> list[dict[str, object]]:
        """The outbox rows of the batch, in dossier order: each clock the batch started,
        the due times its refold moved, then each final class whose flag this call
        inserted (once per dossier)."""
        finished = {
            code: payload
            for code, clock in folded.items()
            if (FINISHED_FLAG, DOSSIER_STEP) not in batch.emitted[code]
            and (payload := self._finished(batch.clocks[code], clock)) is not None
        }
        inserted = await store.insert_flags(
            session,
            [
                {"code": c, "kind": FINISHED_FLAG, "step": DOSSIER_STEP, "emitted_at": batch.now}
                for c in finished
            ],
        )
        rows: list[dict[str, object]] = []
        for code, clock in folded.items():
            correlation_id = batch.touched[code]
            if clock is not None and code in batch.started:
                started = ClockStarted(started_at=clock.started_at, due_at=clock.due_at)
                rows.append(self._outbox(started, code, correlation_id, batch.now))
                TRACKED.inc()
            if code in batch.moved:
                rows.append(self._outbox(batch.moved[code], code, correlation_id, batch.now))
            if (code, FINISHED_FLAG, DOSSIER_STEP) in inserted:
                rows.append(self._outbox(finished[code], code, correlation_id, batch.now))
                FINISHED.labels(finished[code].outcome).inc()
        return rows

    def _finished(self, row: store.ClockRow, clock: Clock | None) -> SlaFinished | None:
        """The final class of a closed clock; ``None`` while it runs."""
        outcome = None if clock is None else clock.outcome(self.policy)
        if clock is None or outcome is None or clock.closed_at is None:
            return None
        return SlaFinished(
            outcome=outcome.value,
            finished_at=clock.closed_at,
            due_at=clock.due_at,
            supplement_requests=clock.supplement_requests,
            extended=clock.extensions > 0,
            office=row.office,
            procedure_code=row.procedure_code or "",
            receiving_unit=row.receiving_unit or "",
            channel=Channel(row.channel or Channel.COUNTER.value),
        )
