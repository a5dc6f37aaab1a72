"""Routing's use cases: route dossiers, follow their chains, manage rules and the manual
queue.

Invariants:
- every received dossier is decided once: assigned (with its chain) or queued for an
  administrator; both write the decision event to the outbox in the same transaction;
- a rule change applies to dossiers received after it; open dossiers move to the new
  rules only through ``reroute`` (or one by one through ``assign``), which emits
  ``dossier.routed`` again with the new rule version;
- ``transfer`` actions advance the chain one step, in the order intake numbered them;
- decisions use the newest catalogue version (``Catalogues``).

Recording a decision and following the chain are in ``decisions``; manual assignment and
re-routing in ``manual``; every query in ``services.routing.store``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Gauge, Histogram
from sqlmodel.ext.asyncio.session import AsyncSession

from services.routing import domain, store
from services.routing.app.catalogue import SERVICE, Catalogues
from services.routing.app.decisions import Decisions, follow_clock
from services.routing.app.manual import AssignError, Move, RerouteReport, assign_by_hand, reroute
from services.routing.settings import RoutingSettings
from shared.calendar import WorkCalendar
from shared.catalogue import Catalogue, Step
from shared.clock import Clock, utc_now
from shared.db import Database
from shared.events import DossierActionRecorded, DossierReceived, Envelope, SlaDueTimes
from shared.handlers import Handlers
from shared.outbox import outbox_values
from shared.service import every

__all__ = ["AssignError", "Move", "RerouteReport", "Routing"]

MANUAL_QUEUE = Gauge(
    "motcua_routing_manual_queue", "Dossiers waiting in the manual queue (read from the table)."
)
LATENCY = Histogram(
    "motcua_routing_latency_seconds",
    "From the dossier's reception (received_at) to its first routing decision.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)

_TAKEN = frozenset(
    {DossierReceived.event_type, DossierActionRecorded.event_type, SlaDueTimes.event_type}
)
"""The event types ``Routing.apply`` handles."""
_ON_CHAIN = _TAKEN - {DossierReceived.event_type}
"""The event types that change a routed dossier's chain (its rows are read for them)."""


@dataclass(slots=True)
class _Batch:
    """What one batch of lifecycle events is applied against: its dossiers' decisions
    and chains as plain rows (read once, updated as the batch goes), the rules in
    force, "now", and what the batch writes at its end (``store.write_batch``)."""

    assignments: dict[str, store.AssignmentState]
    queued: set[str]
    chains: dict[str, list[store.StepState]]
    rule_set: domain.RuleSet
    now: datetime
    loaded: dict[str, tuple[tuple[object, ...], list[tuple[object, ...]]]]
    """The changing columns of each stored assignment and its steps, as read."""
    writes: store.BatchWrites = field(default_factory=store.BatchWrites)

    @classmethod
    async def load(cls, session: AsyncSession, events: list[Envelope], now: datetime) -> _Batch:
        """One query each for the assignments, queue entries, chains (of dossiers acted
        on or dated by sla) and rules of ``events``."""
        codes = list(dict.fromkeys(env.dossier_code for env in events if env.dossier_code))
        assignments = await store.assignment_states(session, codes)
        acted = {
            env.dossier_code
            for env in events
            if env.type in _ON_CHAIN and env.dossier_code in assignments
        }
        chains = await store.chain_states(session, [c for c in codes if c in acted])
        loaded = {
            code: (assignments[code].changing(), [step.changing() for step in chain])
            for code, chain in chains.items()
        }
        return cls(
            assignments,
            await store.queued_among(session, codes),
            chains,
            await store.current_rule_set(session),
            now,
            loaded,
        )

    def assigned(
        self, row: store.AssignmentState, chain: list[store.StepState], event: dict[str, object]
    ) -> None:
        """A new assignment, its chain and its outbox row (written in their state at the
        batch's end, so later events of the batch act on them here)."""
        self.assignments[row.dossier_code], self.chains[row.dossier_code] = row, chain
        self.writes.assignments.append(row)
        self.writes.steps.extend(chain)
        self.writes.outbox.append(event)

    def finish(self) -> store.BatchWrites:
        """What the batch writes: its new rows, and the stored rows it changed."""
        for code, (row_was, steps_were) in self.loaded.items():
            row = self.assignments[code]
            if row.changing() != row_was:
                self.writes.changed_assignments.append(row)
            self.writes.changed_steps.extend(
                step
                for step, was in zip(self.chains[code], steps_were, strict=True)
                if step.changing() != was
            )
        return self.writes


class Routing:
    """Routing's use cases over its own database; "now" comes from ``clock``, the pace of
    its background jobs from ``settings``."""

    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        calendar: WorkCalendar,
        *,
        after_commit: Callable[[], None] = lambda: None,
        clock: Clock = utc_now,
        settings: RoutingSettings | None = None,
    ) -> None:
        own = settings or RoutingSettings()
        self.db = db
        self.clock = clock
        self.catalogues = Catalogues(
            db,
            catalogue,
            after_commit=after_commit,
            clock=clock,
            retry_seconds=own.catalogue_retry_seconds,
        )
        self.gauge_seconds = own.gauge_seconds
        self._decisions = Decisions(self.catalogues, calendar, clock)
        self._after_commit = after_commit

    @property
    def catalogue(self) -> Catalogue:
        """The newest catalogue version this process has seen."""
        return self.catalogues.catalogue

    @property
    def calendar(self) -> WorkCalendar:
        """The calendar step due times are computed with."""
        return self._decisions.calendar

    def use_calendar(self, calendar: WorkCalendar) -> None:
        """Compute step due times with ``calendar`` from now on (after a calendar change)."""
        self._decisions.calendar = calendar

    # -- consuming ---------------------------------------------------------------------

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Route received dossiers once, follow their actions and keep sla's due times
        (inside the inbox transaction).

        Batched: one query each for the assignments, queue entries, chains and rules of
        the batch; events are then applied in order to plain rows, so a dossier received
        and transferred in the same batch ends at its second step; and the batch is
        written with a constant number of statements (``store.write_batch``): new
        decisions, their outbox rows in event order, the changed rows.
        """
        relevant = [env for env in events if env.dossier_code and env.type in _TAKEN]
        if not relevant:
            return
        await self.catalogues.refresh(session)
        batch = await _Batch.load(session, relevant, self.clock())
        handlers: Handlers[None] = Handlers()

        @handlers.on(DossierReceived)
        def on_received(received: DossierReceived, env: Envelope) -> None:
            self._route(batch, received, env)

        @handlers.on(DossierActionRecorded)
        def on_action(action: DossierActionRecorded, env: Envelope) -> None:
            code = env.dossier_code or ""
            if code in batch.assignments:
                self._decisions.on_action(batch.assignments[code], batch.chains[code], action)

        @handlers.on(SlaDueTimes)
        def on_due_times(due: SlaDueTimes, env: Envelope) -> None:
            code = env.dossier_code or ""
            if code in batch.assignments:
                follow_clock(batch.assignments[code], batch.chains[code], due)

        handlers.run(relevant)
        await store.write_batch(session, batch.finish())

    def _route(self, batch: _Batch, received: DossierReceived, env: Envelope) -> None:
        """Decide a received dossier once: assign it (with its chain) or queue it."""
        code, now = env.dossier_code or "", batch.now
        if code in batch.assignments or code in batch.queued:
            return
        decisions = self._decisions
        facts = decisions.facts(received)
        decision = domain.decide(self.catalogue, batch.rule_set, facts)
        if isinstance(decision, domain.Unroutable):
            entry, event = decisions.queue_entry(
                code,
                received=received,
                decision=decision,
                correlation_id=env.correlation_id,
                now=now,
            )
            batch.queued.add(code)
            batch.writes.queued.append(entry)
            batch.writes.outbox.append(event)
            return
        row, chain = decisions.assignment(
            code,
            facts=facts,
            decision=decision,
            received_at=received.received_at,
            now=now,
            dossier_due=received.due_at,
        )
        event = outbox_values(
            decisions.routed(row, decision),
            occurred_at=now,
            source=SERVICE,
            dossier_code=code,
            correlation_id=env.correlation_id,
        )
        batch.assigned(row, chain, event)
        LATENCY.observe(max(0.0, (now - received.received_at).total_seconds()))

    # -- rules -------------------------------------------------------------------------

    async def rules(self) -> domain.RuleSet:
        """The rules in force."""
        async with self.db.sessions() as session:
            return await store.current_rule_set(session)

    async def history(self) -> list[store.RuleSetVersion]:
        """Every version of the rules, newest first."""
        async with self.db.sessions() as session:
            return await store.rule_history(session)

    async def add_rule(self, rule: domain.Rule, *, by: str) -> domain.RuleSet:
        """A new version with ``rule`` added; ``RuleError`` (nothing written) if refused."""
        criteria = ", ".join(f"{k}={v}" for k, v in rule.criteria().items()) or "any dossier"
        change = f"add rule {rule.priority}: {criteria} -> {rule.office}"
        async with self.db.transaction() as session:
            base = await store.current_rule_set(session)
            return await store.write_rule_set(
                session,
                (*base.rules, rule),
                base=base,
                changed_by=by,
                change=change,
                now=self.clock(),
            )

    async def remove_rule(self, priority: int, *, by: str) -> domain.RuleSet:
        """A new version without the rule of ``priority``; ``NoSuchRule`` (a ``RuleError``)
        if there is none."""
        async with self.db.transaction() as session:
            base = await store.current_rule_set(session)
            kept = tuple(rule for rule in base.rules if rule.priority != priority)
            if len(kept) == len(base.rules):
                msg = f"no rule of priority {priority} in rules v{base.version}"
                raise domain.NoSuchRule(msg)
            return await store.write_rule_set(
                session,
                kept,
                base=base,
                changed_by=by,
                change=f"remove rule {priority}",
                now=self.clock(),
            )

    def facts(
        self,
        procedure: str,
        receiving_unit: str,
        channel: str,
        *,
        field: str | None = None,
        level: str | None = None,
    ) -> domain.Facts:
        """Facts of a hypothetical dossier received now; field and level default to the
        catalogue's."""
        known = self.catalogue.get(procedure)
        return domain.Facts(
            procedure=procedure,
            field=field if field is not None else (known.field if known else ""),
            level=level if level is not None else domain.level_of(known, self.clock()),
            receiving_unit=receiving_unit,
            channel=channel,
        )

    async def test(self, facts: domain.Facts) -> domain.Routed | domain.Unroutable:
        """Where a dossier with these facts would go under the current rules, and why.

        Reads only: nothing is routed, written or published.
        """
        await self.catalogues.current()
        return domain.decide(self.catalogue, await self.rules(), facts)

    # -- manual queue, assignment, re-routing -------------------------------------------

    async def manual_queue(self) -> list[store.ManualQueueEntry]:
        """Dossiers waiting for an administrator, oldest first."""
        async with self.db.sessions() as session:
            return await store.manual_queue(session)

    async def manual_queue_page(
        self, receiving_unit: str | None, *, limit: int, offset: int
    ) -> tuple[list[store.ManualQueueEntry], int]:
        """One page of the dossiers ``receiving_unit`` received (``None``: every unit's)
        that wait for an administrator, oldest first (the dossier code breaking ties), and
        how many of them wait in all: the page and the count share one filter and one
        session."""
        async with self.db.sessions() as session:
            entries = await store.manual_queue(
                session, receiving_unit=receiving_unit, limit=limit, offset=offset
            )
            return entries, await store.manual_queue_size(session, receiving_unit=receiving_unit)

    async def assign(
        self, code: str, office: str, *, steps: list[Step] | None, by: str
    ) -> store.Assignment:
        """Route one dossier by hand: from the manual queue, or re-assign one at step 1
        (``manual.assign_by_hand``); ``AssignError`` (nothing written) when it cannot."""
        row = await assign_by_hand(self.db, self._decisions, code, office, steps=steps, by=by)
        self._after_commit()
        await self.refresh_gauges()
        return row

    async def reroute(self) -> RerouteReport:
        """Re-decide open dossiers routed under older rules, and the manual queue
        (``manual.reroute``); report what moved, what stayed and why."""
        report = await reroute(self.db, self._decisions)
        self._after_commit()
        await self.refresh_gauges()
        return report

    # -- reading -----------------------------------------------------------------------

    async def sheet(self, code: str) -> tuple[store.Assignment, list[store.ChainStepRow]] | None:
        """The processing-control sheet (Mẫu 06) of a dossier: its assignment and steps."""
        async with self.db.sessions() as session:
            row = await store.assignment(session, code)
            if row is None:
                return None
            return row, (await store.chain_of(session, [code]))[code]

    async def refresh_gauges(self) -> None:
        """Set the manual-queue gauge from the table."""
        async with self.db.sessions() as session:
            MANUAL_QUEUE.set(await store.manual_queue_size(session))

    async def gauge_job(self) -> None:
        """Refresh the gauges periodically (a background job of the process)."""
        await every(self.gauge_seconds, self.refresh_gauges, "routing gauges")
