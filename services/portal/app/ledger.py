"""Events into the ledger: each dossier's facts, applicant and states to send.

Invariants (besides ``services.portal.store``'s):
- applied in the consumer's transaction (inbox), in the order of each topic's partition,
  so a dossier's lifecycle events come in the order intake recorded them; the contact
  and the routing decision come on topics of their own, in any order with them;
- a state is written once per (dossier, step), whatever the redeliveries.
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
    DossierAction,
    DossierActionRecorded,
    DossierContact,
    DossierReceived,
    DossierRouted,
    DossierSubmitted,
    Envelope,
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


def facts_of(row: store.PortalDossier) -> domain.Facts | None:
    """The facts a ledger row holds (``None`` before its first lifecycle event)."""
    if row.facts is None:
        return None
    raw = orjson.loads(row.facts)
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
        code=row.code,
        procedure_code=raw["procedure_code"],
        channel=raw["channel"],
        receiving_unit=raw["receiving_unit"],
        field=raw["field"],
        submitted_at=_time(raw["submitted_at"]),
        received_at=_time(raw["received_at"]),
        due_at=_time(raw["due_at"]),
        office=row.office,
        resolved_at=_time(raw["resolved_at"]),
        returned_at=_time(raw["returned_at"]),
        supplements=supplements,
        catalogue_version=raw.get("catalogue_version"),
    )


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


class Ledger:
    """Applies the lifecycle, routing and contact events to the ledger."""

    def __init__(self, *, clock: Clock = utc_now) -> None:
        self.clock = clock

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Apply fresh events in order, in the caller's transaction."""
        rows: dict[str, store.PortalDossier] = {}
        for envelope in events:
            code = envelope.dossier_code
            if code is None:
                continue
            payload = envelope.payload_model
            if not isinstance(
                payload,
                DossierContact
                | DossierSubmitted
                | DossierReceived
                | DossierActionRecorded
                | DossierRouted,
            ):
                continue
            row = rows.get(code) or await self._row(session, code)
            rows[code] = row
            await self._apply_one(session, row, payload)
        for row in rows.values():
            session.add(row)

    async def _row(self, session: AsyncSession, code: str) -> store.PortalDossier:
        row = await store.dossier(session, code)
        if row is None:
            row = store.PortalDossier(code=code)
            store.add_dossier(session, row)
        return row

    async def _apply_one(
        self,
        session: AsyncSession,
        row: store.PortalDossier,
        payload: DossierContact
        | DossierSubmitted
        | DossierReceived
        | DossierActionRecorded
        | DossierRouted,
    ) -> None:
        facts = facts_of(row)
        if isinstance(payload, DossierContact):
            contact = payload.applicant
            row.applicant = orjson.dumps(
                {"name": contact.name, "phone": contact.phone, "email": contact.email}
            ).decode()
            row.receiving_unit = row.receiving_unit or payload.receiving_unit
        elif isinstance(payload, DossierRouted):
            row.office = payload.office
        elif isinstance(payload, DossierSubmitted):
            base = facts or domain.Facts(
                row.code, payload.procedure_code, payload.channel.value, payload.receiving_unit
            )
            self._keep(row, replace(base, submitted_at=payload.submitted_at))
            at = payload.submitted_at
            await self._state(session, row.code, domain.SUBMITTED_STEP, domain.SUBMITTED, at)
        elif isinstance(payload, DossierReceived):
            base = facts or domain.Facts(
                row.code, payload.procedure_code, payload.channel.value, payload.receiving_unit
            )
            received = replace(
                base,
                field=payload.field,
                received_at=payload.received_at,
                due_at=payload.due_at,
                catalogue_version=payload.catalogue_version,
            )
            self._keep(row, received)
            at, due = payload.received_at, payload.due_at
            await self._state(
                session, row.code, domain.RECEIVED_STEP, domain.RECEIVED, at, due_at=due
            )
        else:
            await self._action(session, row, facts, payload)

    async def _action(
        self,
        session: AsyncSession,
        row: store.PortalDossier,
        facts: domain.Facts | None,
        event: DossierActionRecorded,
    ) -> None:
        if facts is not None:
            self._keep(row, _after_action(facts, event))
        if event.action is DossierAction.TRANSFER and event.office:
            row.office = event.office
        due = event.new_due_at or (facts.due_at if facts else None)
        await self._state(
            session,
            row.code,
            domain.action_step(event.sequence),
            event.national_status,
            event.at,
            action=event.action.value,
            office=event.office,
            reason=event.reason,
            due_at=due,
        )

    @staticmethod
    def _keep(row: store.PortalDossier, facts: domain.Facts) -> None:
        row.facts = facts_json(facts)
        row.receiving_unit = facts.receiving_unit

    async def _state(
        self,
        session: AsyncSession,
        code: str,
        step: int,
        national_status: int,
        at: datetime,
        *,
        action: str | None = None,
        office: str | None = None,
        reason: str | None = None,
        due_at: datetime | None = None,
    ) -> None:
        await session.flush()  # the ledger row exists before its state (one order on both)
        await store.add_state(
            session,
            store.PortalState(
                code=code,
                step=step,
                national_status=national_status,
                at=at,
                action=action,
                office=office,
                reason=reason,
                due_at=due_at,
                created_at=self.clock(),
            ),
        )
