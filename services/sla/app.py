"""SLA's use cases: keep each dossier's ledger, flag deadlines once, publish the class.

Two writers touch a clock: the consumer (events change terms and ledger; the fold is
recomputed in the same transaction) and the scheduler (flags whose instant has come).
Both write flags to ``sla_flag`` (unique per dossier, kind and step) in the same
transaction as the outbox row that announces them, so every warning and every final
class is published exactly once per dossier and step, however many trackers run and
however often an event is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlmodel.ext.asyncio.session import AsyncSession

from services.sla import store
from services.sla.domain import (
    DOSSIER_STEP,
    HOUR,
    ChainStep,
    Clock,
    Entry,
    Terms,
    Threshold,
    replay,
)
from services.sla.settings import SlaSettings
from shared.calendar import Duration, WorkCalendar, load_calendar
from shared.calendar_sync import following_calendar
from shared.clock import Clock as Now
from shared.clock import utc_now
from shared.consume import follow, subscribe
from shared.events import (
    Channel,
    ClockStarted,
    DossierActionRecorded,
    DossierReceived,
    DossierRouted,
    Envelope,
    SlaFinished,
    SlaWarning,
)
from shared.handlers import Handlers
from shared.keys_sync import TABLES as KEY_TABLES
from shared.keys_sync import following_keys
from shared.outbox import enqueue
from shared.service import ServiceRuntime, every
from shared.settings import ServiceName, Settings
from shared.topics import API_KEYS, CALENDAR, DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_SLA
from shared.wakeup import Wakeup

SERVICE: ServiceName = "sla"
FINISHED_FLAG = "finished"

log = logging.getLogger(__name__)

TRACKED = Counter("motcua_dossiers_tracked_total", "Dossiers whose clock the tracker started.")
OPEN_DOSSIERS = Gauge(
    "motcua_sla_open_dossiers", "Open dossiers by clock state and office.", ["state", "office"]
)
OVERDUE_DOSSIERS = Gauge("motcua_sla_overdue_dossiers", "Open dossiers past their due time.")
FLAGS_EMITTED = Counter("motcua_sla_flags_total", "Warnings and flags emitted.", ["kind"])
FINISHED = Counter("motcua_sla_finished_total", "Dossiers finished, by class.", ["outcome"])
TIME_TO_FLAG = Histogram(
    "motcua_sla_time_to_flag_seconds",
    "How late a warning or flag was emitted after its instant.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)

_HANDLED = {DossierReceived.event_type, DossierActionRecorded.event_type, DossierRouted.event_type}


def terms_of(row: store.DossierClock) -> Terms | None:
    """The terms of a clock row; ``None`` until its reception arrived."""
    if row.started_at is None or row.limit_unit is None or row.limit_value is None:
        return None
    return Terms(
        received_at=row.started_at,
        time_limit=Duration(Decimal(row.limit_value), row.limit_unit),
        supplement_rule="restart" if row.supplement_rule == "restart" else "pause",
        slip_due_at=row.slip_due_at,
        steps=tuple(ChainStep(office, Decimal(hours)) for office, hours in row.steps or []),
    )


def entries_of(rows: Sequence[store.LedgerRow]) -> list[Entry]:
    """The ledger rows as domain entries."""
    return [Entry(r.sequence, r.at, r.action, r.reason, r.new_due_at, r.office) for r in rows]


class Tracker:
    """SLA's use cases: the consumer, the scheduler, the look-up and the gauges."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        calendar: WorkCalendar,
        sla: SlaSettings,
        clock: Now = utc_now,
    ) -> None:
        self.runtime = runtime
        self.calendar = calendar
        self.sla = sla
        self.policy = sla.policy()
        self.now = clock
        self._wake = Wakeup()
        self._recheck = False

    def use_calendar(self, calendar: WorkCalendar) -> None:
        """Compute clocks with ``calendar`` from now on (after a calendar change).

        If it changes working time, the scheduler's next round first brings every stored
        deadline forward to now, so each open clock is refolded with the new calendar: a
        deadline the change moved earlier is not missed, one it moved later is only
        rechecked. A calendar equal in working time (a restart replaying the topic)
        costs nothing.
        """
        changed = not calendar.same_working_time(self.calendar)
        self.calendar = calendar
        if changed:
            self._recheck = True
            self._wake.set()

    def replay(self, row: store.DossierClock, ledger: Sequence[store.LedgerRow]) -> Clock | None:
        """The clock of a row and its ledger; ``None`` until its reception arrived."""
        terms = terms_of(row)
        return (
            None if terms is None else replay(terms, entries_of(ledger), self.calendar, self.policy)
        )

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Record the batch's events and refold the dossiers they touch (one transaction).

        Three queries load every dossier of the batch; an action whose ``sequence`` is
        already in the ledger is skipped (a late or repeated action is kept once).
        """
        codes = {e.dossier_code for e in events if e.dossier_code and e.type in _HANDLED}
        if not codes:
            return
        clocks, ledgers, emitted = await store.load(session, codes)
        now = self.now()
        touched: dict[str, uuid.UUID] = {}
        started: set[str] = set()
        record = self._recorders(session, clocks=clocks, ledgers=ledgers, started=started, now=now)
        for envelope in events:
            code = envelope.dossier_code
            if code is None or not record.handle(envelope):
                continue
            touched[code] = envelope.correlation_id
        for code, correlation_id in touched.items():
            self._announce(
                session,
                clocks[code],
                ledgers[code],
                emitted[code],
                started=code in started,
                correlation_id=correlation_id,
                now=now,
            )
        event.listen(session.sync_session, "after_commit", self._wake_scheduler, once=True)

    def _recorders(
        self,
        session: AsyncSession,
        *,
        clocks: dict[str, store.DossierClock],
        ledgers: Mapping[str, list[store.LedgerRow]],
        started: set[str],
        now: datetime,
    ) -> Handlers[bool]:
        """Handlers that record one event of a dossier (with a code) on its clock row
        (made if it is the first) or its ledger; each returns ``False`` for a repeated
        reception or an action whose ``sequence`` is already in the ledger (kept once).
        A reception recorded adds its dossier to ``started``."""
        record: Handlers[bool] = Handlers()

        def row_of(envelope: Envelope) -> store.DossierClock:
            code = envelope.dossier_code or ""
            row = clocks.get(code)
            if row is None:
                row = clocks[code] = store.new_clock(session, code, now)
            return row

        @record.on(DossierReceived)
        def received(received: DossierReceived, envelope: Envelope) -> bool:
            row = row_of(envelope)
            if row.started_at is not None:
                return False
            self._received(row, received)
            started.add(row.code)
            return True

        @record.on(DossierActionRecorded)
        def action(action: DossierActionRecorded, envelope: Envelope) -> bool:
            row = row_of(envelope)
            ledger = ledgers[row.code]
            if any(e.sequence == action.sequence for e in ledger):
                return False
            entry = store.LedgerRow(
                code=row.code,
                sequence=action.sequence,
                action=action.action.value,
                at=action.at,
                reason=action.reason,
                new_due_at=action.new_due_at,
                office=action.office,
            )
            store.add_ledger_entry(session, entry)
            ledger.append(entry)
            return True

        @record.on(DossierRouted)
        def routed(routed: DossierRouted, envelope: Envelope) -> bool:
            row = row_of(envelope)
            row.office = routed.office
            row.steps = [[s.office, str(s.hours)] for s in routed.steps]
            return True

        return record

    def _announce(
        self,
        session: AsyncSession,
        row: store.DossierClock,
        ledger: Sequence[store.LedgerRow],
        emitted: set[tuple[str, int]],
        *,
        started: bool,
        correlation_id: uuid.UUID,
        now: datetime,
    ) -> None:
        """Refold a touched dossier and put in the outbox its clock start (when this batch
        started it) and its final class (once)."""
        clock = self._refold(session, row, ledger, emitted, now)
        if clock is None:
            return
        if started:
            self._emit(
                session,
                ClockStarted(started_at=clock.started_at, due_at=clock.due_at),
                row.code,
                correlation_id,
                now,
            )
            TRACKED.inc()
        self._finished(
            session,
            row=row,
            clock=clock,
            emitted=emitted,
            correlation_id=correlation_id,
            now=now,
        )

    def _wake_scheduler(self, _session: object) -> None:
        self._wake.set()

    @staticmethod
    def _received(row: store.DossierClock, received: DossierReceived) -> None:
        row.started_at = received.received_at
        row.slip_due_at = received.due_at
        row.limit_value = str(received.time_limit.value)
        row.limit_unit = received.time_limit.unit
        row.supplement_rule = received.supplement_rule
        row.procedure_code = received.procedure_code
        row.receiving_unit = received.receiving_unit
        row.channel = received.channel.value

    def _refold(
        self,
        session: AsyncSession,
        row: store.DossierClock,
        ledger: Sequence[store.LedgerRow],
        emitted: set[tuple[str, int]],
        now: datetime,
    ) -> Clock | None:
        """Recompute the row's summary from terms and ledger (and bump its version)."""
        row.version += 1
        clock = self.replay(row, ledger)
        if clock is None:
            return None
        if clock.closure is not None:
            row.phase = clock.closure.value
        else:
            row.phase = "paused" if clock.open_pauses else "running"
        row.due_at = clock.due_at
        row.due_soon_at = clock.due_soon_at(self.policy)
        row.finished_at = clock.closed_at
        outcome = clock.outcome(self.policy)
        row.outcome = outcome.value if outcome else None
        row.next_deadline = clock.next_deadline(self.policy, emitted)
        store.save_clock(session, row)
        return clock

    def _finished(
        self,
        session: AsyncSession,
        *,
        row: store.DossierClock,
        clock: Clock,
        emitted: set[tuple[str, int]],
        correlation_id: uuid.UUID,
        now: datetime,
    ) -> None:
        outcome = clock.outcome(self.policy)
        key = (FINISHED_FLAG, DOSSIER_STEP)
        if outcome is None or clock.closed_at is None or key in emitted:
            return
        emitted.add(key)
        store.add_flag(session, row.code, FINISHED_FLAG, DOSSIER_STEP, now)
        self._emit(
            session,
            SlaFinished(
                outcome=outcome.value,
                finished_at=clock.closed_at,
                due_at=clock.due_at,
                supplement_requests=clock.supplement_requests,
                extended=clock.extensions > 0,
                office=row.office,
                procedure_code=row.procedure_code or "",
                receiving_unit=row.receiving_unit or "",
                channel=Channel(row.channel or Channel.COUNTER.value),
            ),
            row.code,
            correlation_id,
            now,
        )
        FINISHED.labels(outcome.value).inc()

    @staticmethod
    def _emit(
        session: AsyncSession,
        payload: ClockStarted | SlaFinished | SlaWarning,
        code: str,
        correlation_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
        enqueue(
            session,
            payload,
            occurred_at=now,
            source=SERVICE,
            dossier_code=code,
            correlation_id=correlation_id,
        )

    async def emitted(self, code: str) -> set[tuple[str, int]]:
        """The flags already raised for ``code``: (kind, step), the dossier's step -1."""
        async with self.runtime.db.sessions() as session:
            return (await store.emitted_flags(session, [code]))[code]

    async def get(self, code: str) -> tuple[store.DossierClock, list[store.LedgerRow]] | None:
        """The clock row of one dossier and its ledger."""
        async with self.runtime.db.sessions() as session:
            clocks, ledgers, _ = await store.load(session, [code])
        row = clocks.get(code)
        return None if row is None else (row, ledgers[code])

    async def flag_round(self, now: datetime) -> int:
        """Emit the flags whose instant has come, for up to one batch of clocks.

        Clocks are claimed by the ``next_deadline`` index (no scan of open dossiers);
        returns how many were claimed.
        """
        db = self.runtime.db
        async with db.transaction() as session:
            rows = await store.claim_due(
                session, now, self.sla.scheduler_batch, skip_locked=not db.is_sqlite
            )
            if not rows:
                return 0
            codes = [row.code for row in rows]
            ledgers = await store.load_ledgers(session, codes)
            emitted = await store.emitted_flags(session, codes)
            due: list[tuple[store.DossierClock, Threshold]] = []
            updates: list[store.Deadlines] = []
            for row in rows:
                clock = self.replay(row, ledgers[row.code])
                if clock is None:
                    updates.append(store.Deadlines(row.code, row.version, None, None, None))
                    continue
                for threshold in clock.flags_due(now, self.policy, emitted[row.code]):
                    due.append((row, threshold))
                    emitted[row.code].add((threshold.kind, threshold.step))
                updates.append(
                    store.Deadlines(
                        row.code,
                        row.version,
                        clock.next_deadline(self.policy, emitted[row.code]),
                        clock.due_at,
                        clock.due_soon_at(self.policy),
                    )
                )
            inserted = await store.insert_flags(
                session,
                [
                    {"code": row.code, "kind": t.kind, "step": t.step, "emitted_at": now}
                    for row, t in due
                ],
            )
            for row, threshold in due:
                if (row.code, threshold.kind, threshold.step) in inserted:
                    self._warn(session, row, threshold, now)
            await store.set_deadlines(session, updates)
        return len(rows)

    def _warn(
        self, session: AsyncSession, row: store.DossierClock, threshold: Threshold, now: datetime
    ) -> None:
        left = self.calendar.working_time_between(now, threshold.due_at)
        self._emit(
            session,
            SlaWarning(
                kind=threshold.kind,
                step=None if threshold.step == DOSSIER_STEP else threshold.step,
                office=threshold.office or row.office,
                due_at=threshold.due_at,
                working_hours_left=round(left / HOUR, 4),
                at=now,
            ),
            row.code,
            None,
            now,
        )
        FLAGS_EMITTED.labels(threshold.kind).inc()
        TIME_TO_FLAG.observe(max((now - threshold.at).total_seconds(), 0.0))

    async def flag_due(self, now: datetime | None = None) -> datetime | None:
        """Flag everything due at ``now``; return the next deadline (``None``: none)."""
        at = now or self.now()
        if self._recheck:
            self._recheck = False
            try:
                async with self.runtime.db.transaction() as session:
                    rechecked = await store.recheck_deadlines(session, at)
            except BaseException:
                self._recheck = True
                raise
            log.info("sla: calendar changed; %d open clocks to refold", rechecked)
        while await self.flag_round(at) >= self.sla.scheduler_batch:
            pass
        async with self.runtime.db.sessions() as session:
            return await store.earliest_deadline(session)

    async def run_scheduler(self) -> None:
        """Sleep until the next deadline (or a commit that may bring an earlier one), flag."""
        longest = self.sla.scheduler_max_sleep_seconds
        while True:
            try:
                upcoming = await self.flag_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: retry, the deadlines stay in the table
                log.warning("sla scheduler: %s; retrying", type(exc).__name__)
                upcoming = None
            delay = longest
            if upcoming is not None:
                delay = min(max((upcoming - self.now()).total_seconds(), 0.0), longest)
            if delay > 0:
                await self._wake.sleep(delay)

    async def refresh_gauges(self) -> None:
        """Set the state gauges from the table."""
        async with self.runtime.db.sessions() as session:
            counts = await store.open_by_state(session, self.now())
        OPEN_DOSSIERS.clear()
        for state, office, count in counts:
            OPEN_DOSSIERS.labels(state, office).set(count)
        OVERDUE_DOSSIERS.set(sum(n for state, _, n in counts if state == "overdue"))

    async def run_gauges(self) -> None:
        """Refresh the gauges periodically."""
        await every(self.sla.gauge_seconds, self.refresh_gauges, "sla gauges")


def build(
    settings: Settings,
    *,
    sla: SlaSettings | None = None,
    clock: Now = utc_now,
    calendar: WorkCalendar | None = None,
) -> Tracker:
    """SLA's runtime, use cases and subscriber; it follows the calendar (the clock) and the
    keys intake issues (its API)."""
    runtime = ServiceRuntime(
        SERVICE, settings, tables=[*store.TABLES, *KEY_TABLES], publishes=[DOSSIER_SLA]
    )
    tracker = Tracker(
        runtime,
        calendar=calendar or load_calendar(settings.province, settings.var_dir),
        sla=sla or SlaSettings(),
        clock=clock,
    )
    subscribe(runtime, tracker.apply, DOSSIER_LIFECYCLE, DOSSIER_ROUTING)
    follow(
        runtime,
        following_keys(
            settings,
            SERVICE,
            following_calendar(settings.var_dir, settings.province, tracker.use_calendar),
        ),
        CALENDAR,
        API_KEYS,
    )
    return tracker
