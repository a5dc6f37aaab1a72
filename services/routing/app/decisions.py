"""Recording routing decisions, and following a dossier along its chain.

Invariants:
- a decision is recorded with its event in the caller's transaction: an assignment with
  its chain steps and ``dossier.routed``, or a manual-queue entry and ``dossier.unroutable``
  (the consumer gets them as plain rows and writes its batch at once; the cold paths
  through the unit of work, ``assign`` and ``emit_routed``);
- a step's working hours are kept exactly as decided (no rounding), and every step's due
  time, the first one's as each later one's, is ``shared.chain.fit_step``'s: from the
  step's start, its hours and those of the steps still to come, fitted into the
  dossier's due time (sla's when it spoke, else the one it was received with), as sla
  fits them; a step whose due time falls outside the calendar's known years has none.
  These are routing's own due times (``due_at``), for the sheet until sla speaks: they
  do not follow the pauses and restarts of the legal clock;
- the legal clock's due times are sla's: each ``sla.due_times`` sets the dossier's and
  every step's ``clock_due_at`` (by position), whatever routing computed, so the sheet
  shows sla's times whichever of the two topics routing read first;
- an action is applied once, in the order intake numbered them; ``transfer`` starts the
  next step, an ending action closes the dossier and its current step.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.routing import domain, store
from services.routing.app.catalogue import SERVICE, Catalogues
from shared.calendar import CalendarRangeError, WorkCalendar
from shared.catalogue import Catalogue
from shared.chain import fit_step
from shared.clock import Clock
from shared.events import (
    ChainStep,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    DossierRouted,
    DossierUnroutable,
    SlaDueTimes,
)
from shared.outbox import enqueue, outbox_values

__all__ = ["Decisions", "follow_clock", "stored_chain"]

log = logging.getLogger(__name__)

ROUTED = Counter(
    "motcua_dossiers_routed_total",
    "Routing decisions naming an office (first routing, re-routing, manual), by office and field.",
    ["office", "field"],
)
UNROUTABLE = Counter("motcua_dossiers_unroutable_total", "Dossiers sent to the manual queue.")

_ENDING = {DossierAction.RESOLVE, DossierAction.RETURN_RESULT, DossierAction.WITHDRAW}


class Decisions:
    """Writes decisions under the newest catalogue, dates steps with the calendar in
    force, and reads 'now' from ``clock``."""

    def __init__(self, catalogues: Catalogues, calendar: WorkCalendar, clock: Clock) -> None:
        self.catalogues = catalogues
        self.calendar = calendar
        self.clock = clock

    @property
    def catalogue(self) -> Catalogue:
        """The newest catalogue version this process has seen."""
        return self.catalogues.catalogue

    def facts(self, received: DossierReceived) -> domain.Facts:
        """The routing facts of a received dossier."""
        return domain.Facts(
            procedure=received.procedure_code,
            field=received.field,
            level=domain.level_of(
                self.catalogue.get(received.procedure_code), received.received_at
            ),
            receiving_unit=received.receiving_unit,
            channel=received.channel.value,
        )

    def step_due(
        self, start: datetime, hours: Sequence[Decimal], dossier_due: datetime | None
    ) -> datetime | None:
        """The due time of a step of ``hours[0]`` started at ``start`` and followed by
        the others, fitted into ``dossier_due`` when known (``shared.chain.fit_step``)."""
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
    ) -> list[store.StepState]:
        hours = [amount for _, amount in steps]
        return [
            store.StepState(
                dossier_code=code,
                position=position,
                office=office,
                working_hours=str(amount),
                started_at=start if position == 0 else None,
                due_at=self.step_due(start, hours, dossier_due) if position == 0 else None,
            )
            for position, (office, amount) in enumerate(steps)
        ]

    def assignment(
        self,
        code: str,
        *,
        facts: domain.Facts,
        decision: domain.Routed,
        received_at: datetime,
        now: datetime,
        dossier_due: datetime | None,
        manual: bool = False,
    ) -> tuple[store.AssignmentState, list[store.StepState]]:
        """The assignment ``decision`` makes, as plain rows (nothing written): its first
        step started at reception and fitted into ``dossier_due`` (the due time the
        dossier was received with)."""
        row = store.AssignmentState(
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
            dossier_due_at=dossier_due,
        )
        chain = self._chain_rows(code, decision.steps, received_at, dossier_due)
        return row, chain

    def assign(
        self,
        session: AsyncSession,
        code: str,
        *,
        facts: domain.Facts,
        decision: domain.Routed,
        received_at: datetime,
        now: datetime,
        dossier_due: datetime | None,
        manual: bool = False,
    ) -> tuple[store.Assignment, list[store.ChainStepRow]]:
        """Record the ``assignment`` ``decision`` makes through the unit of work (the
        cold paths: manual assignment, re-routing)."""
        row, chain = self.assignment(
            code,
            facts=facts,
            decision=decision,
            received_at=received_at,
            now=now,
            dossier_due=dossier_due,
            manual=manual,
        )
        return store.add_assignment(session, row, chain)

    @staticmethod
    def routed(
        row: store.Assignment | store.AssignmentState, decision: domain.Routed
    ) -> DossierRouted:
        """``dossier.routed`` for ``row`` (counted as a decision naming an office)."""
        ROUTED.labels(decision.office, decision.field).inc()
        return DossierRouted(
            procedure_code=row.procedure_code,
            office=decision.office,
            field=decision.field,
            rule=decision.rule,
            catalogue_version=row.catalogue_version,
            steps=[ChainStep(office=office, hours=hours) for office, hours in decision.steps],
        )

    def emit_routed(
        self,
        session: AsyncSession,
        row: store.Assignment,
        decision: domain.Routed,
        correlation_id: uuid.UUID | None,
        now: datetime,
    ) -> None:
        """Put ``dossier.routed`` for ``row`` in the outbox through the unit of work."""
        enqueue(
            session,
            self.routed(row, decision),
            occurred_at=now,
            source=SERVICE,
            dossier_code=row.dossier_code,
            correlation_id=correlation_id,
        )

    def queue_entry(
        self,
        code: str,
        *,
        received: DossierReceived,
        decision: domain.Unroutable,
        correlation_id: uuid.UUID,
        now: datetime,
    ) -> tuple[dict[str, object], dict[str, object]]:
        """An unroutable dossier's manual-queue row and its ``dossier.unroutable`` outbox
        row, as column values (nothing written)."""
        facts = self.facts(received)
        entry: dict[str, object] = {
            "dossier_code": code,
            "procedure_code": facts.procedure,
            "reason": decision.reason,
            "field": facts.field,
            "receiving_unit": facts.receiving_unit,
            "channel": facts.channel,
            "level": facts.level,
            "catalogue_version": self.catalogue.version,
            "rule_version": decision.rule_version,
            "received_at": received.received_at,
            "queued_at": now,
            "dossier_due_at": received.due_at,
        }
        event = outbox_values(
            DossierUnroutable(procedure_code=facts.procedure, reason=decision.reason),
            occurred_at=now,
            source=SERVICE,
            dossier_code=code,
            correlation_id=correlation_id,
        )
        UNROUTABLE.inc()
        return entry, event

    def on_action(
        self,
        assignment: store.AssignmentState,
        chain: list[store.StepState],
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
            self._transfer(assignment, chain, action)
        elif action.action in _ENDING:
            assignment.closed_at = action.at
            if current is not None and current.ended_at is None:
                current.ended_at = action.at

    def _transfer(
        self,
        assignment: store.AssignmentState,
        chain: list[store.StepState],
        action: DossierActionRecorded,
    ) -> None:
        """End the current step and start the next at ``action.at``, at the office the
        action names (else the chain's), due as ``step_due`` fits it."""
        following = assignment.current_step + 1
        if following >= len(chain):
            log.warning("routing: transfer past the last step of a chain ignored")
            return
        chain[assignment.current_step].ended_at = action.at
        step = chain[following]
        step.office = action.office or step.office
        step.started_at = action.at
        step.due_at = self.step_due(
            action.at,
            [s.hours for s in chain[following:]],
            assignment.clock_due_at or assignment.dossier_due_at,
        )
        assignment.current_step = following
        assignment.office = step.office


def follow_clock(
    assignment: store.AssignmentState, chain: list[store.StepState], due: SlaDueTimes
) -> None:
    """Keep sla's due times (the latest ``sla.due_times`` of the dossier): the dossier's,
    and each step's by position (a step sla has not dated gets none)."""
    assignment.clock_due_at = due.due_at
    dated = {step.step: step.due_at for step in due.steps}
    for row in chain:
        row.clock_due_at = dated.get(row.position)


def stored_chain(chain: list[store.ChainStepRow]) -> tuple[tuple[str, Decimal], ...]:
    """A stored chain as (office, working hours) per step, to compare with a decision's."""
    return tuple((row.office, row.hours) for row in chain)
