"""Events into the ledger: each dossier's facts, applicant and states to send.

Invariants (besides ``services.portal.store``'s):
- applied in the consumer's transaction (inbox), in the order of each topic's partition,
  so a dossier's lifecycle events come in the order intake recorded them; the contact
  and the routing decision come on topics of their own, in any order with them;
- a state is written once per (dossier, step), whatever the redeliveries;
- a batch gives the rows and states that applying its events one by one would give: it
  is folded in memory in its order, then written with a constant number of statements
  (``Ledger``), no ORM object on the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
from sqlmodel.ext.asyncio.session import AsyncSession

from services.portal import domain, store
from shared.clock import Clock, utc_now
from shared.events import (
    Contact,
    DossierAction,
    DossierActionRecorded,
    DossierContact,
    DossierReceived,
    DossierRouted,
    DossierSubmitted,
    Envelope,
    Payload,
)


def facts_json(facts: domain.Facts) -> str:
    """The stored form of the facts (the code and office are columns of their own)."""
    out: dict[str, Any] = {
        "procedure_code": facts.procedure_code,
        "channel": facts.channel,
        "receiving_unit": facts.receiving_unit,
        "field": facts.field,
        "submitted_at": facts.submitted_at,
        "received_at": facts.received_at,
        "due_at": facts.due_at,
        "resolved_at": facts.resolved_at,
        "returned_at": facts.returned_at,
        "supplements": [
            {
                "requested_step": s.requested_step,
                "requested_at": s.requested_at,
                "submitted_step": s.submitted_step,
                "submitted_at": s.submitted_at,
            }
            for s in facts.supplements
        ],
        "catalogue_version": facts.catalogue_version,
    }
    return orjson.dumps(out).decode()


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def parse_facts(code: str, office: str | None, stored: str | None) -> domain.Facts | None:
    """The facts a ledger row's ``facts`` column holds (``None`` before the dossier's first
    lifecycle event); ``code`` and ``office`` are columns of their own."""
    if stored is None:
        return None
    raw = orjson.loads(stored)
    supplements = tuple(
        domain.Supplement(
            requested_step=s["requested_step"],
            requested_at=datetime.fromisoformat(s["requested_at"]),
            submitted_step=s["submitted_step"],
            submitted_at=_time(s["submitted_at"]),
        )
        for s in raw["supplements"]
    )
    return domain.Facts(
        code=code,
        procedure_code=raw["procedure_code"],
        channel=raw["channel"],
        receiving_unit=raw["receiving_unit"],
        field=raw["field"],
        submitted_at=_time(raw["submitted_at"]),
        received_at=_time(raw["received_at"]),
        due_at=_time(raw["due_at"]),
        office=office,
        resolved_at=_time(raw["resolved_at"]),
        returned_at=_time(raw["returned_at"]),
        supplements=supplements,
        catalogue_version=raw.get("catalogue_version"),
    )


def facts_of(row: store.PortalDossier) -> domain.Facts | None:
    """The facts a ledger row holds (``None`` before its first lifecycle event)."""
    return parse_facts(row.code, row.office, row.facts)


def applicant_json(contact: Contact) -> str:
    """The stored form of the applicant (personal data)."""
    return orjson.dumps(
        {"name": contact.name, "phone": contact.phone, "email": contact.email}
    ).decode()


def applicant_of(row: store.PortalDossier) -> domain.Applicant | None:
    """The applicant a ledger row holds (``None`` until the contact came)."""
    if row.applicant is None:
        return None
    raw = orjson.loads(row.applicant)
    return domain.Applicant(name=raw["name"], phone=raw["phone"], email=raw["email"])


def _after_action(facts: domain.Facts, event: DossierActionRecorded) -> domain.Facts:
    """The facts once ``event`` happened: supplements, end of processing, return."""
    step = domain.action_step(event.sequence)
    if event.action is DossierAction.REQUEST_SUPPLEMENT and all(
        s.requested_step != step for s in facts.supplements
    ):
        added = domain.Supplement(requested_step=step, requested_at=event.at)
        return replace(facts, supplements=(*facts.supplements, added))
    if event.action is DossierAction.SUBMIT_SUPPLEMENT and facts.supplements:
        *earlier, last = facts.supplements
        if last.submitted_step is None:
            back = replace(last, submitted_step=step, submitted_at=event.at)
            return replace(facts, supplements=(*earlier, back))
    if event.action is DossierAction.RESOLVE:
        return replace(facts, resolved_at=event.at)
    if event.action is DossierAction.RETURN_RESULT:
        return replace(facts, returned_at=event.at)
    return facts


_HANDLED = frozenset(
    t.event_type
    for t in (
        DossierContact,
        DossierSubmitted,
        DossierReceived,
        DossierActionRecorded,
        DossierRouted,
    )
)


class _Dossier:
    """One dossier's ledger row while a batch folds into it, in memory: the stored row
    (``None``: new), its columns as the batch changes them, and its facts parsed once."""

    __slots__ = (
        "_facts",
        "_parsed",
        "applicant",
        "code",
        "facts_changed",
        "office",
        "receiving_unit",
        "stored",
    )

    def __init__(self, code: str, stored: store.LedgerRow | None) -> None:
        self.code = code
        self.stored = stored
        self.receiving_unit = stored.receiving_unit if stored else None
        self.office = stored.office if stored else None
        self.applicant = stored.applicant if stored else None
        self._facts: domain.Facts | None = None
        self._parsed = stored is None or stored.facts is None
        self.facts_changed = False

    def facts(self) -> domain.Facts | None:
        """The dossier's facts as they stand (the stored ones parsed on first use)."""
        if not self._parsed and self.stored is not None:
            self._facts = parse_facts(self.code, self.stored.office, self.stored.facts)
            self._parsed = True
        return self._facts

    def keep(self, facts: domain.Facts) -> None:
        """The dossier's facts are now ``facts``."""
        self._facts, self._parsed = facts, True
        self.facts_changed = True
        self.receiving_unit = facts.receiving_unit

    def changes(self) -> store.LedgerRow | None:
        """What to write: the row with the fields the batch changed (the others ``None``,
        left as stored); ``None`` for a stored row the batch did not change."""
        stored = self.stored or store.LedgerRow(self.code)
        facts = facts_json(self._facts) if self.facts_changed and self._facts else None
        row = store.LedgerRow(
            self.code,
            receiving_unit=_changed(self.receiving_unit, stored.receiving_unit),
            office=_changed(self.office, stored.office),
            facts=_changed(facts, stored.facts),
            applicant=_changed(self.applicant, stored.applicant),
        )
        if self.stored is not None and row == store.LedgerRow(self.code):
            return None
        return row


def _changed(value: str | None, stored: str | None) -> str | None:
    return None if value == stored else value


class _Fold:
    """A batch's events folded into its dossiers' rows and the states they make, in the
    batch's order; the first state of a (dossier, step) wins, as in the table."""

    def __init__(self, stored: dict[str, store.LedgerRow]) -> None:
        self._stored = stored
        self.dossiers: dict[str, _Dossier] = {}
        self.states: dict[tuple[str, int], store.StateRow] = {}

    def dossier(self, code: str) -> _Dossier:
        """The dossier's row in memory (made from the stored row, or new)."""
        found = self.dossiers.get(code)
        if found is None:
            found = self.dossiers[code] = _Dossier(code, self._stored.get(code))
        return found

    def state(self, state: store.StateRow) -> None:
        """Record a state unless the batch has one for its (dossier, step) already."""
        self.states.setdefault((state.code, state.step), state)

    def apply(self, code: str, payload: Payload) -> None:
        """Fold one event into the dossier ``code`` (one of the types ``_HANDLED``)."""
        row = self.dossier(code)
        if isinstance(payload, DossierContact):
            row.applicant = applicant_json(payload.applicant)
            row.receiving_unit = row.receiving_unit or payload.receiving_unit
        elif isinstance(payload, DossierRouted):
            row.office = payload.office
        elif isinstance(payload, DossierSubmitted):
            base = row.facts() or domain.Facts(
                code, payload.procedure_code, payload.channel.value, payload.receiving_unit
            )
            row.keep(replace(base, submitted_at=payload.submitted_at))
            self.state(
                store.StateRow(code, domain.SUBMITTED_STEP, domain.SUBMITTED, payload.submitted_at)
            )
        elif isinstance(payload, DossierReceived):
            base = row.facts() or domain.Facts(
                code, payload.procedure_code, payload.channel.value, payload.receiving_unit
            )
            row.keep(
                replace(
                    base,
                    field=payload.field,
                    received_at=payload.received_at,
                    due_at=payload.due_at,
                    catalogue_version=payload.catalogue_version,
                )
            )
            self.state(
                store.StateRow(
                    code,
                    domain.RECEIVED_STEP,
                    domain.RECEIVED,
                    payload.received_at,
                    due_at=payload.due_at,
                )
            )
        elif isinstance(payload, DossierActionRecorded):
            self._action(row, row.facts(), payload)

    def _action(
        self, row: _Dossier, facts: domain.Facts | None, event: DossierActionRecorded
    ) -> None:
        if facts is not None:
            row.keep(_after_action(facts, event))
        if event.action is DossierAction.TRANSFER and event.office:
            row.office = event.office
        self.state(
            store.StateRow(
                row.code,
                domain.action_step(event.sequence),
                event.national_status,
                event.at,
                action=event.action.value,
                office=event.office,
                reason=event.reason,
                due_at=event.new_due_at or (facts.due_at if facts else None),
            )
        )


class Ledger:
    """Applies the lifecycle, routing and contact events to the ledger.

    A batch costs a constant number of statements, whatever its size: one read of the
    ledger rows of its dossiers (``IN (...)``), then one write each for the rows (an
    upsert of the fields the batch changed) and for the states (an insert that leaves a
    (dossier, step) already there alone). The events are folded in memory in the batch's
    order, as one-by-one application would apply them.
    """

    def __init__(self, *, clock: Clock = utc_now) -> None:
        self.clock = clock

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Apply fresh events in order, in the caller's transaction."""
        handled = [e for e in events if e.dossier_code is not None and e.type in _HANDLED]
        if not handled:
            return
        fold = _Fold(await store.load_ledger(session, {e.dossier_code or "" for e in handled}))
        for envelope in handled:
            fold.apply(envelope.dossier_code or "", envelope.payload_model)
        changed = [c for d in fold.dossiers.values() if (c := d.changes()) is not None]
        await store.save_ledger(session, changed)
        await store.add_states(session, list(fold.states.values()), self.clock())
