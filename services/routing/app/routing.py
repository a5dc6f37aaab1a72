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
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from prometheus_client import Counter, Gauge, Histogram
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.routing import domain, store
from services.routing.app.catalogue import SERVICE, Catalogues
from shared.calendar import CalendarRangeError, WorkCalendar
from shared.catalogue import (
    Catalogue,
    Step,
)
from shared.chain import fit_step
from shared.clock import utc_now
from shared.db import Database
from shared.events import (
    ChainStep,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    DossierRouted,
    DossierUnroutable,
    Envelope,
)
from shared.outbox import enqueue
from shared.service import every

log = logging.getLogger(__name__)

ROUTED = Counter(
    "motcua_dossiers_routed_total",
    "Routing decisions naming an office (first routing, re-routing, manual), by office and field.",
    ["office", "field"],
)
UNROUTABLE = Counter("motcua_dossiers_unroutable_total", "Dossiers sent to the manual queue.")
MANUAL_QUEUE = Gauge(
    "motcua_routing_manual_queue", "Dossiers waiting in the manual queue (read from the table)."
)
LATENCY = Histogram(
    "motcua_routing_latency_seconds",
    "From the dossier's reception (received_at) to its first routing decision.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)

_ENDING = {DossierAction.RESOLVE, DossierAction.RETURN_RESULT, DossierAction.WITHDRAW}
_GAUGE_SECONDS = 5.0


class AssignError(ValueError):
    """A manual assignment refused; the message says why."""


@dataclass(frozen=True, slots=True)
class Move:
    """One dossier re-routed: from which office (or the manual queue) to which."""

    dossier_code: str
    before: str
    after: str
    rule: str


@dataclass(slots=True)
class RerouteReport:
    """What ``reroute`` did under ``rule_version``."""

    rule_version: int
    moved: list[Move] = field(default_factory=list)
    unchanged: int = 0
    kept: list[tuple[str, str]] = field(default_factory=list)
    """(dossier code, why it was not moved)."""


class Routing:
    """Routing's use cases over its own database."""

    def __init__(
        self,
        db: Database,
        catalogue: Catalogue,
        calendar: WorkCalendar,
        *,
        after_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.catalogues = Catalogues(db, catalogue, after_commit=after_commit)
        self.calendar = calendar
        self._after_commit = after_commit

    @property
    def catalogue(self) -> Catalogue:
        """The newest catalogue version this process has seen."""
        return self.catalogues.catalogue

    def use_calendar(self, calendar: WorkCalendar) -> None:
        """Compute step due times with ``calendar`` from now on (after a calendar change)."""
        self.calendar = calendar

    # -- consuming ---------------------------------------------------------------------

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Route received dossiers once and follow their actions (inside the inbox transaction).

        Batched: one query each for the assignments, queue entries, chains and rules of
        the batch; events are then applied in order, so a dossier received and
        transferred in the same batch ends at its second step.
        """
        relevant = [
            env
            for env in events
            if env.dossier_code
            and env.type in (DossierReceived.event_type, DossierActionRecorded.event_type)
        ]
        if not relevant:
            return
        await self.catalogues.refresh(session)
        codes = list(dict.fromkeys(env.dossier_code for env in relevant if env.dossier_code))
        assignments = {
            row.dossier_code: row
            for row in (
                await session.exec(
                    select(store.Assignment).where(col(store.Assignment.dossier_code).in_(codes))
                )
            ).all()
        }
        queued = set(
            (
                await session.exec(
                    select(store.ManualQueueEntry.dossier_code).where(
                        col(store.ManualQueueEntry.dossier_code).in_(codes)
                    )
                )
            ).all()
        )
        acted = [
            env.dossier_code
            for env in relevant
            if env.type == DossierActionRecorded.event_type and env.dossier_code in assignments
        ]
        chains = await store.chain_of(session, [c for c in codes if c in acted])
        rule_set = await store.current_rule_set(session)
        now = utc_now()
        for env in relevant:
            code = env.dossier_code or ""
            if env.type == DossierReceived.event_type:
                if code in assignments or code in queued:
                    continue
                received = env.body(DossierReceived)
                decision = domain.decide(self.catalogue, rule_set, self._facts(received))
                if isinstance(decision, domain.Routed):
                    row, chain = self._assign(
                        session,
                        code,
                        facts=self._facts(received),
                        decision=decision,
                        received_at=received.received_at,
                        now=now,
                        dossier_due=received.due_at,
                    )
                    assignments[code], chains[code] = row, chain
                    self._emit_routed(session, row, decision, env.correlation_id, now)
                    LATENCY.observe(max(0.0, (now - received.received_at).total_seconds()))
                else:
                    self._queue(
                        session,
                        code,
                        received=received,
                        decision=decision,
                        correlation_id=env.correlation_id,
                        now=now,
                    )
                    queued.add(code)
            elif code in assignments:
                self._on_action(assignments[code], chains[code], env.body(DossierActionRecorded))

    def _facts(self, received: DossierReceived) -> domain.Facts:
        return domain.Facts(
            procedure=received.procedure_code,
            field=received.field,
            level=domain.level_of(
                self.catalogue.get(received.procedure_code), received.received_at
            ),
            receiving_unit=received.receiving_unit,
            channel=received.channel.value,
        )

    def _step_due(
        self, start: datetime, minutes: Sequence[int], dossier_due: datetime | None = None
    ) -> datetime | None:
        """The due time of a step of ``minutes[0]`` followed by the others, fitted into
        the dossier's time when its due time is known (``shared.chain.fit_step``)."""
        hours = [Decimal(m) / 60 for m in minutes]
        try:
            return fit_step(self.calendar, start, hours, dossier_due).due_at
        except CalendarRangeError:
            log.warning("routing: step due time outside the calendar's known years")
            return None

    def _chain_rows(
        self,
        code: str,
        steps: Sequence[tuple[str, Decimal]],
        start: datetime,
        dossier_due: datetime | None,
    ) -> list[store.ChainStepRow]:
        minutes = [to_minutes(hours) for _, hours in steps]
        return [
            store.ChainStepRow(
                dossier_code=code,
                position=position,
                office=office,
                working_minutes=minutes[position],
                started_at=start if position == 0 else None,
                due_at=self._step_due(start, minutes, dossier_due) if position == 0 else None,
            )
            for position, (office, _) in enumerate(steps)
        ]

    def _assign(
        self,
        session: AsyncSession,
        code: str,
        *,
        facts: domain.Facts,
        decision: domain.Routed,
        received_at: datetime,
        now: datetime,
        manual: bool = False,
        dossier_due: datetime | None = None,
    ) -> tuple[store.Assignment, list[store.ChainStepRow]]:
        row = store.Assignment(
            dossier_code=code,
            procedure_code=facts.procedure,
            office=decision.office,
            field=decision.field,
            rule=decision.rule,
            explanation=decision.explanation,
            rule_version=decision.rule_version,
            catalogue_version=self.catalogue.version,
            receiving_unit=facts.receiving_unit,
            channel=facts.channel,
            level=facts.level,
            received_at=received_at,
            routed_at=now,
            manual=manual,
        )
        chain = self._chain_rows(code, decision.steps, received_at, dossier_due)
        session.add(row)
        session.add_all(chain)
        return row, chain

    def _emit_routed(
        self,
        session: AsyncSession,
        row: store.Assignment,
        decision: domain.Routed,
        correlation_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
        payload = DossierRouted(
            procedure_code=row.procedure_code,
            office=decision.office,
            field=decision.field,
            rule=decision.rule,
            catalogue_version=row.catalogue_version,
            steps=[ChainStep(office=office, hours=hours) for office, hours in decision.steps],
        )
        enqueue(
            session,
            payload,
            occurred_at=now,
            source=SERVICE,
            dossier_code=row.dossier_code,
            correlation_id=correlation_id,
        )
        ROUTED.labels(decision.office, decision.field).inc()

    def _queue(
        self,
        session: AsyncSession,
        code: str,
        *,
        received: DossierReceived,
        decision: domain.Unroutable,
        correlation_id: uuid.UUID,
        now: datetime,
    ) -> None:
        facts = self._facts(received)
        session.add(
            store.ManualQueueEntry(
                dossier_code=code,
                procedure_code=facts.procedure,
                reason=decision.reason,
                field=facts.field,
                receiving_unit=facts.receiving_unit,
                channel=facts.channel,
                level=facts.level,
                catalogue_version=self.catalogue.version,
                rule_version=decision.rule_version,
                received_at=received.received_at,
                queued_at=now,
            )
        )
        payload = DossierUnroutable(procedure_code=facts.procedure, reason=decision.reason)
        enqueue(
            session,
            payload,
            occurred_at=now,
            source=SERVICE,
            dossier_code=code,
            correlation_id=correlation_id,
        )
        UNROUTABLE.inc()

    def _on_action(
        self,
        assignment: store.Assignment,
        chain: list[store.ChainStepRow],
        action: DossierActionRecorded,
    ) -> None:
        """Advance the chain on ``transfer``; end the current step when processing ends."""
        if action.sequence <= assignment.action_sequence:
            return
        assignment.action_sequence = action.sequence
        if assignment.closed_at is not None:
            return
        current = chain[assignment.current_step] if assignment.current_step < len(chain) else None
        if action.action is DossierAction.TRANSFER:
            following = assignment.current_step + 1
            if following >= len(chain):
                log.warning("routing: transfer past the last step of a chain ignored")
                return
            if current is not None:
                current.ended_at = action.at
            step = chain[following]
            step.office = action.office or step.office
            step.started_at = action.at
            step.due_at = self._step_due(action.at, [s.working_minutes for s in chain[following:]])
            assignment.current_step = following
            assignment.office = step.office
        elif action.action in _ENDING:
            assignment.closed_at = action.at
            if current is not None and current.ended_at is None:
                current.ended_at = action.at

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
                now=utc_now(),
            )

    async def remove_rule(self, priority: int, *, by: str) -> domain.RuleSet:
        """A new version without the rule of ``priority``; ``RuleError`` if there is none."""
        async with self.db.transaction() as session:
            base = await store.current_rule_set(session)
            kept = tuple(rule for rule in base.rules if rule.priority != priority)
            if len(kept) == len(base.rules):
                msg = f"no rule of priority {priority} in rules v{base.version}"
                raise domain.RuleError(msg)
            return await store.write_rule_set(
                session,
                kept,
                base=base,
                changed_by=by,
                change=f"remove rule {priority}",
                now=utc_now(),
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
            level=level if level is not None else domain.level_of(known, utc_now()),
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
        """Route one dossier by hand: from the manual queue, or re-assign one at step 1.

        The chain is ``steps`` or else the catalogue's chain with step 1 at ``office``;
        emits ``dossier.routed``. ``AssignError`` (nothing written) when it cannot.
        """
        rule = domain.parse_rule({"priority": 1, "office": office, "steps": steps})
        now = utc_now()
        async with self.db.transaction() as session:
            await self.catalogues.refresh(session)
            entry = await session.get(store.ManualQueueEntry, code)
            existing = None if entry is not None else await session.get(store.Assignment, code)
            if entry is None and existing is None:
                raise AssignError(f"no dossier {code} in the manual queue or assigned")
            if existing is not None and (existing.closed_at or existing.current_step > 0):
                msg = f"dossier {code} has left its first step: it can no longer be re-assigned"
                raise AssignError(msg)
            source = entry or existing
            assert source is not None
            facts = store.facts_of(source)
            procedure = self.catalogue.get(facts.procedure)
            chain_source = rule.steps or (procedure.steps if procedure else None)
            if chain_source is None:
                msg = (
                    f"procedure {facts.procedure} is not in catalogue v{self.catalogue.version}: "
                    "give the chain (steps) of the assignment"
                )
                raise AssignError(msg)
            chain = domain.resolve_chain(
                chain_source, first_office=office, receiving_unit=facts.receiving_unit
            )
            rule_set = await store.current_rule_set(session)
            decision = domain.Routed(
                office=office,
                field=facts.field,
                rule=f"manual assignment by {by}",
                explanation=f"assigned by hand by {by} at {now.isoformat()}",
                rule_version=rule_set.version,
                steps=chain,
            )
            received_at = source.received_at
            if existing is not None:
                await _drop(session, existing, (await store.chain_of(session, [code]))[code])
            else:
                await session.delete(entry)
            await session.flush()
            row, _ = self._assign(
                session,
                code,
                facts=facts,
                decision=decision,
                received_at=received_at,
                now=now,
                manual=True,
            )
            self._emit_routed(session, row, decision, None, now)
        self._after_commit()
        await self.refresh_gauges()
        return row

    async def reroute(self) -> RerouteReport:
        """Re-decide open dossiers routed under older rules, and the manual queue.

        A dossier moves (new chain, ``dossier.routed`` again with the new rule version)
        when the current rules name another office or chain and it is still at its first
        step; one past its first step, assigned by hand, or that would become unroutable
        keeps its office and is reported. The same decision only records the new version.
        """
        now = utc_now()
        async with self.db.transaction() as session:
            await self.catalogues.refresh(session)
            rule_set = await store.current_rule_set(session)
            report = RerouteReport(rule_set.version)
            open_rows = (
                await session.exec(
                    select(store.Assignment).where(
                        col(store.Assignment.closed_at).is_(None),
                        col(store.Assignment.rule_version) < rule_set.version,
                    )
                )
            ).all()
            chains = await store.chain_of(session, [row.dossier_code for row in open_rows])
            moving: list[tuple[store.Assignment, domain.Routed]] = []
            for row in open_rows:
                decision = domain.decide(self.catalogue, rule_set, store.facts_of(row))
                if row.manual:
                    report.kept.append((row.dossier_code, "assigned by hand"))
                elif isinstance(decision, domain.Unroutable):
                    report.kept.append(
                        (row.dossier_code, f"would be unroutable: {decision.reason}")
                    )
                elif _in_minutes(decision.steps) == _steps_of(chains[row.dossier_code]):
                    row.rule_version, row.rule = decision.rule_version, decision.rule
                    row.explanation = decision.explanation
                    report.unchanged += 1
                elif row.current_step > 0:
                    report.kept.append(
                        (row.dossier_code, f"already at step {row.current_step + 1} of its chain")
                    )
                else:
                    moving.append((row, decision))
            queue = await store.manual_queue(session)
            freed: list[tuple[store.ManualQueueEntry, domain.Routed]] = []
            for entry in queue:
                outcome = domain.decide(self.catalogue, rule_set, store.facts_of(entry))
                if isinstance(outcome, domain.Routed):
                    freed.append((entry, outcome))
            for row, _ in moving:
                await _drop(session, row, chains[row.dossier_code])
            for entry, _ in freed:
                await session.delete(entry)
            await session.flush()
            for old, routed in moving:
                new, _ = self._assign(
                    session,
                    old.dossier_code,
                    facts=store.facts_of(old),
                    decision=routed,
                    received_at=old.received_at,
                    now=now,
                )
                new.action_sequence = old.action_sequence
                self._emit_routed(session, new, routed, None, now)
                report.moved.append(Move(old.dossier_code, old.office, new.office, routed.rule))
            for entry, routed in freed:
                new, _ = self._assign(
                    session,
                    entry.dossier_code,
                    facts=store.facts_of(entry),
                    decision=routed,
                    received_at=entry.received_at,
                    now=now,
                )
                self._emit_routed(session, new, routed, None, now)
                report.moved.append(
                    Move(entry.dossier_code, "manual queue", new.office, routed.rule)
                )
        self._after_commit()
        await self.refresh_gauges()
        return report

    # -- reading -----------------------------------------------------------------------

    async def sheet(self, code: str) -> tuple[store.Assignment, list[store.ChainStepRow]] | None:
        """The processing-control sheet (Mẫu 06) of a dossier: its assignment and steps."""
        async with self.db.sessions() as session:
            row = await session.get(store.Assignment, code)
            if row is None:
                return None
            return row, (await store.chain_of(session, [code]))[code]

    async def refresh_gauges(self) -> None:
        """Set the manual-queue gauge from the table."""
        async with self.db.sessions() as session:
            MANUAL_QUEUE.set(await store.manual_queue_size(session))

    async def gauge_job(self) -> None:
        """Refresh the gauges periodically (a background job of the process)."""
        await every(_GAUGE_SECONDS, self.refresh_gauges, "routing gauges")


def to_minutes(hours: Decimal) -> int:
    """Working hours as whole working minutes."""
    return round(hours * 60)


def _in_minutes(steps: Sequence[tuple[str, Decimal]]) -> tuple[tuple[str, int], ...]:
    return tuple((office, to_minutes(hours)) for office, hours in steps)


def _steps_of(chain: list[store.ChainStepRow]) -> tuple[tuple[str, int], ...]:
    return tuple((row.office, row.working_minutes) for row in chain)


async def _drop(
    session: AsyncSession, row: store.Assignment, chain: list[store.ChainStepRow]
) -> None:
    for step in chain:
        await session.delete(step)
    await session.delete(row)
