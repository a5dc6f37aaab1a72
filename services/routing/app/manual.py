"""Routing by an administrator: manual assignment, and re-routing to the current rules.

Invariants:
- a dossier leaves the manual queue, or changes office, only here, in one transaction
  that drops its old decision (queue entry, or assignment and chain), records the new
  one and puts ``dossier.routed`` with the current rule version in the outbox;
- a dossier past its first step, or closed, is never moved; one assigned by hand is
  left alone by re-routing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.routing import domain, store
from services.routing.app.decisions import Decisions, stored_chain
from shared.catalogue import Catalogue, Step
from shared.db import Database
from shared.errors import Conflict

__all__ = ["AssignError", "Move", "RerouteReport", "assign_by_hand", "reroute"]


class AssignError(Conflict, ValueError):
    """A manual assignment refused: not queued nor re-assignable, or no chain to give it
    (409); the message says why."""


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


async def assign_by_hand(
    db: Database,
    decisions: Decisions,
    code: str,
    office: str,
    *,
    steps: list[Step] | None,
    by: str,
) -> store.Assignment:
    """Route one dossier by hand: from the manual queue, or re-assign one at step 1.

    The chain is ``steps`` or else the catalogue's chain with step 1 at ``office``;
    emits ``dossier.routed``. ``AssignError`` (nothing written) when it cannot.
    """
    rule = domain.parse_rule({"priority": 1, "office": office, "steps": steps})
    now = decisions.clock()
    async with db.transaction() as session:
        await decisions.catalogues.refresh(session)
        source = await _assignable(session, code)
        facts = store.facts_of(source)
        chain = domain.resolve_chain(
            _chain_source(decisions, rule, facts.procedure),
            first_office=office,
            receiving_unit=facts.receiving_unit,
        )
        decision = domain.Routed(
            office=office,
            field=facts.field,
            rule=f"manual assignment by {by}",
            explanation=f"assigned by hand by {by} at {now.isoformat()}",
            rule_version=(await store.current_rule_set(session)).version,
            steps=chain,
        )
        await _drop_decision(session, source)
        row, _ = decisions.assign(
            session,
            code,
            facts=facts,
            decision=decision,
            received_at=source.received_at,
            now=now,
            dossier_due=source.dossier_due_at,
            manual=True,
        )
        decisions.emit_routed(session, row, decision, None, now)
    return row


async def _assignable(
    session: AsyncSession, code: str
) -> store.ManualQueueEntry | store.Assignment:
    """The queue entry of ``code``, or its assignment while still at its first step;
    ``AssignError`` otherwise."""
    entry = await store.queue_entry(session, code)
    if entry is not None:
        return entry
    existing = await store.assignment(session, code)
    if existing is None:
        raise AssignError(f"no dossier {code} in the manual queue or assigned")
    if existing.closed_at or existing.current_step > 0:
        msg = f"dossier {code} has left its first step: it can no longer be re-assigned"
        raise AssignError(msg)
    return existing


def _chain_source(decisions: Decisions, rule: domain.Rule, procedure: str) -> Sequence[Step]:
    """The chain a manual assignment gives: its own steps, else the catalogue's for
    ``procedure``; ``AssignError`` when there is neither."""
    catalogue = decisions.catalogue
    known = catalogue.get(procedure)
    chain = rule.steps or (known.steps if known else None)
    if chain is None:
        msg = (
            f"procedure {procedure} is not in catalogue v{catalogue.version}: "
            "give the chain (steps) of the assignment"
        )
        raise AssignError(msg)
    return chain


async def _drop_decision(
    session: AsyncSession, source: store.ManualQueueEntry | store.Assignment
) -> None:
    """Drop the decision a manual assignment replaces: the queue entry, or the
    assignment and its chain."""
    if isinstance(source, store.Assignment):
        old_chain = (await store.chain_of(session, [source.dossier_code]))[source.dossier_code]
        await store.drop_decisions(session, assigned=[(source, old_chain)])
    else:
        await store.drop_decisions(session, queued=[source])


async def reroute(db: Database, decisions: Decisions) -> RerouteReport:
    """Re-decide open dossiers routed under older rules, and the manual queue.

    A dossier moves (new chain, ``dossier.routed`` again with the new rule version)
    when the current rules name another office or chain and it is still at its first
    step; one past its first step, assigned by hand, or that would become unroutable
    keeps its office and is reported. The same decision only records the new version.
    """
    now = decisions.clock()
    async with db.transaction() as session:
        await decisions.catalogues.refresh(session)
        rule_set = await store.current_rule_set(session)
        report = RerouteReport(rule_set.version)
        open_rows = await store.open_assignments_before(session, rule_set.version)
        chains = await store.chain_of(session, [row.dossier_code for row in open_rows])
        moving = _sort_open(decisions.catalogue, rule_set, open_rows, chains, report)
        freed = _routable(decisions.catalogue, rule_set, await store.manual_queue(session))
        await store.drop_decisions(
            session,
            assigned=[(row, chains[row.dossier_code]) for row, _ in moving],
            queued=[entry for entry, _ in freed],
        )
        for old, routed in moving:
            new = _reassign(session, decisions, old, routed, now)
            new.action_sequence = old.action_sequence
            report.moved.append(Move(old.dossier_code, old.office, new.office, routed.rule))
        for entry, routed in freed:
            new = _reassign(session, decisions, entry, routed, now)
            report.moved.append(Move(entry.dossier_code, "manual queue", new.office, routed.rule))
    return report


def _sort_open(
    catalogue: Catalogue,
    rule_set: domain.RuleSet,
    open_rows: list[store.Assignment],
    chains: dict[str, list[store.ChainStepRow]],
    report: RerouteReport,
) -> list[tuple[store.Assignment, domain.Routed]]:
    """The open dossiers ``rule_set`` moves, with their new decisions; those it keeps go
    to ``report`` (kept, with why; or unchanged, their rule version brought up to date)."""
    moving: list[tuple[store.Assignment, domain.Routed]] = []
    for row in open_rows:
        decision = domain.decide(catalogue, rule_set, store.facts_of(row))
        if row.manual:
            report.kept.append((row.dossier_code, "assigned by hand"))
        elif isinstance(decision, domain.Unroutable):
            report.kept.append((row.dossier_code, f"would be unroutable: {decision.reason}"))
        elif decision.steps == stored_chain(chains[row.dossier_code]):
            row.rule_version, row.rule = decision.rule_version, decision.rule
            row.explanation = decision.explanation
            report.unchanged += 1
        elif row.current_step > 0:
            report.kept.append(
                (row.dossier_code, f"already at step {row.current_step + 1} of its chain")
            )
        else:
            moving.append((row, decision))
    return moving


def _routable(
    catalogue: Catalogue, rule_set: domain.RuleSet, queue: list[store.ManualQueueEntry]
) -> list[tuple[store.ManualQueueEntry, domain.Routed]]:
    """The queued dossiers ``rule_set`` now routes, with their decisions."""
    freed: list[tuple[store.ManualQueueEntry, domain.Routed]] = []
    for entry in queue:
        outcome = domain.decide(catalogue, rule_set, store.facts_of(entry))
        if isinstance(outcome, domain.Routed):
            freed.append((entry, outcome))
    return freed


def _reassign(
    session: AsyncSession,
    decisions: Decisions,
    source: store.Assignment | store.ManualQueueEntry,
    routed: domain.Routed,
    now: datetime,
) -> store.Assignment:
    """Record ``routed`` for the dossier of ``source`` (its old decision dropped) and put
    ``dossier.routed`` in the outbox."""
    new, _ = decisions.assign(
        session,
        source.dossier_code,
        facts=store.facts_of(source),
        decision=routed,
        received_at=source.received_at,
        now=now,
        dossier_due=source.dossier_due_at,
    )
    decisions.emit_routed(session, new, routed, None, now)
    return new
