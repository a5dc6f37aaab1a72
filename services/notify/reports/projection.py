"""Events into report facts and aggregate counts (inside notify's inbox transaction).

Invariant: after ``apply`` the aggregates moved by exactly ``contributions(after) −
contributions(before)`` of every fact the batch touched, in the same transaction as the
facts, so they stay equal to ``recompute`` (the rebuild from the fact table). Events of one
dossier may come in any order across topics (``sla.finished`` before ``dossier.received``):
a fact takes what each event knows, and counts only once it is received.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify.reports import domain
from services.notify.reports.satisfaction import apply_ratings
from services.notify.reports.store import (
    DueSoon,
    NeedsApology,
    WarnedDossier,
    add_counts,
    clear_counts,
    facts_after,
    facts_of,
    put_facts,
    replace_warned,
)
from shared.catalogue import Catalogue, seed_catalogue
from shared.events import (
    ClockStarted,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    Envelope,
    SlaFinished,
    SlaWarning,
)
from shared.handlers import Handlers

_RELEVANT = {
    DossierReceived.event_type,
    DossierActionRecorded.event_type,
    ClockStarted.event_type,
    SlaWarning.event_type,
    SlaFinished.event_type,
}
_CLOSING_ACTIONS = {DossierAction.WITHDRAW, DossierAction.REFUSE}
_WARNING_TABLES: dict[str, type[WarnedDossier]] = {
    "due_soon": DueSoon,
    "apology_needed": NeedsApology,
}
"""The dossier-level warning kinds the report keeps, each in its table."""

Warned = dict[type[WarnedDossier], dict[str, dict[str, object]]]
"""Warning table → dossier code → its row (column name to value), as a batch leaves them."""


class ReportProjection:
    """Keeps the report facts and counts; ``apply`` has the inbox ``Apply`` signature.

    Levels and fields are looked up in ``catalogue`` (notify's ``CatalogueInUse``: the
    newest version published, the seed until then) when the dossier is received, or when
    it finishes if notify did not know the procedure at its receipt."""

    def __init__(self, catalogue: Callable[[], Catalogue] = seed_catalogue) -> None:
        self._catalogue = catalogue

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Fold a batch of fresh events into the facts and the counts (one ``IN (...)``
        read of the facts; one multi-row upsert of the facts, one per aggregate table;
        no ORM object); the ratings into theirs (``satisfaction``)."""
        await apply_ratings(session, events, self._catalogue)
        relevant = [e for e in events if e.type in _RELEVANT and e.dossier_code]
        if not relevant:
            return
        codes = {e.dossier_code for e in relevant if e.dossier_code}
        stored = await facts_of(session, codes)
        before = list(stored.values())
        batch = _Batch(self._catalogue(), {code: replace(f) for code, f in stored.items()})
        batch.handlers().run(relevant)
        changes = domain.delta(before, batch.facts.values())
        await put_facts(session, batch.facts.values())
        await add_counts(session, changes)
        for model, rows_of_model in batch.warned.items():
            await replace_warned(session, model, rows_of_model, batch.closed)


@dataclass
class _Batch:
    """One batch's fold: each event into its dossier's fact (made if it is the first), the
    warned dossiers, and the dossiers ``closed`` for good."""

    catalogue: Catalogue
    facts: dict[str, domain.Fact]
    warned: Warned = field(default_factory=lambda: {m: {} for m in _WARNING_TABLES.values()})
    closed: set[str] = field(default_factory=set)

    def handlers(self) -> Handlers[None]:
        """The fold of each event type the report reads."""
        fold: Handlers[None] = Handlers()
        fold.add(DossierReceived, self.received)
        fold.add(DossierActionRecorded, self.action)
        fold.add(ClockStarted, self.clock_started)
        fold.add(SlaWarning, self.warning)
        fold.add(SlaFinished, self.finished)
        return fold

    def fact_of(self, envelope: Envelope) -> domain.Fact:
        code = envelope.dossier_code or ""
        return self.facts.setdefault(code, domain.Fact(code=code))

    def received(self, received: DossierReceived, envelope: Envelope) -> None:
        fact = self.fact_of(envelope)
        procedure = self.catalogue.get(received.procedure_code)
        fact.unit = received.receiving_unit
        fact.field = received.field
        fact.procedure = received.procedure_code
        fact.level = (
            domain.level_of(list(procedure.levels), received.received_at) if procedure else ""
        )
        fact.channel = received.channel.value
        fact.received_at = received.received_at
        if fact.finished_at is None:
            fact.due_at = received.due_at

    def action(self, action: DossierActionRecorded, envelope: Envelope) -> None:
        fact = self.fact_of(envelope)
        if action.action == DossierAction.REQUEST_SUPPLEMENT and fact.finished_at is None:
            fact.supplement_requests += 1
        elif action.action in _CLOSING_ACTIONS and fact.finished_at is None:
            fact.withdrawn_at = action.at
            self.closed.add(fact.code)

    def clock_started(self, started: ClockStarted, envelope: Envelope) -> None:
        fact = self.fact_of(envelope)
        if fact.finished_at is None:
            fact.due_at = started.due_at

    def warning(self, warning: SlaWarning, envelope: Envelope) -> None:
        fact = self.fact_of(envelope)
        if warning.step is not None or fact.finished_at is not None:
            return
        fact.due_at = warning.due_at
        model = _WARNING_TABLES.get(warning.kind)
        # A withdrawal read in an earlier batch closed the dossier for good.
        if model is not None and fact.withdrawn_at is None:
            self.warned[model][fact.code] = {
                "code": fact.code,
                "office": warning.office,
                "due_at": warning.due_at,
                "warned_at": warning.at,
            }

    def finished(self, finished: SlaFinished, envelope: Envelope) -> None:
        fact = self.fact_of(envelope)
        procedure = self.catalogue.get(finished.procedure_code)
        fact.unit = fact.unit or finished.receiving_unit
        fact.procedure = fact.procedure or finished.procedure_code
        fact.channel = fact.channel or finished.channel.value
        if procedure is not None:
            fact.field = fact.field or procedure.field
            fact.level = fact.level or domain.level_of(
                list(procedure.levels), fact.received_at or finished.finished_at
            )
        fact.finished_at = finished.finished_at
        fact.outcome = finished.outcome
        fact.due_at = finished.due_at
        fact.supplement_requests = finished.supplement_requests
        fact.withdrawn_at = None
        self.closed.add(fact.code)


async def recompute(session: AsyncSession, *, batch: int = 5000) -> int:
    """Rebuild ``report_day``, ``report_due`` and their monthly roll-ups from the fact table;
    return the facts read.

    Runs in the caller's transaction: the aggregates are replaced all at once or not at all.
    """
    await clear_counts(session)
    seen = 0
    last = ""
    while True:
        rows = await facts_after(session, last, batch)
        if not rows:
            return seen
        await add_counts(session, domain.aggregate(row.to_fact() for row in rows))
        seen += len(rows)
        last = rows[-1].code
