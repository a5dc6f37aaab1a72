"""Reception: a new dossier handed in at a counter, or submitted online to be accepted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake import domain, store, views
from services.intake.core import (
    SERVICE,
    Answer,
    CatalogueError,
    Idempotency,
    IntakeCore,
    NewDossier,
)
from shared.auth import Access, DossierUnits, Principal, Role, may_reach
from shared.calendar import CalendarRangeError
from shared.catalogue import Procedure
from shared.errors import Forbidden
from shared.events import DossierContact, DossierSubmitted, Payload
from shared.outbox import outbox_values

DOSSIERS_RECEIVED = Counter(
    "motcua_dossiers_received_total", "Dossiers handed in, by channel.", ["channel"]
)
TIME_SETTERS = frozenset({Role.IMPORTER, Role.ADMIN})
"""The roles that may give the time of a reception or an action (replaying history)."""


@dataclass(frozen=True, slots=True)
class _Intended:
    """A reception as checked, before it is stored."""

    procedure: Procedure
    now: datetime
    status: domain.DossierStatus
    received_at: datetime | None
    due_at: datetime | None


class Reception(IntakeCore):
    """The reception use case."""

    async def receive(
        self, new: NewDossier, *, actor: Principal, idempotency: Idempotency | None = None
    ) -> Answer:
        """Store a dossier, its first history entry and its event (``dossier.received``, or
        ``dossier.submitted`` for an online dossier awaiting acceptance), atomically.

        Its number (the unit's next of the day, from ``self.sequences``) is taken after
        the checks and the look for a kept answer, before the transaction: a refused or
        replayed request takes none; one whose transaction fails leaves a gap (codes stay
        unique)."""
        intended = await self._check_reception(new, actor)
        prior = await self._prior(idempotency) if idempotency is not None else None
        if prior is not None:
            return prior
        day = domain.reception_day(intended.now)
        sequence = await self.sequences.take(new.receiving_unit, day)

        async def work(session: AsyncSession) -> Answer:
            code = domain.dossier_code(new.receiving_unit, day, sequence)
            return await self._store_reception(session, new, intended, actor, code)

        answer, fresh = await self._commit_once(idempotency, work)
        if fresh:
            DOSSIERS_RECEIVED.labels(new.channel.value).inc()
        return answer

    async def _check_reception(self, new: NewDossier, actor: Principal) -> _Intended:
        """The caller's right, the catalogue and the times, checked before any write:
        ``Forbidden`` or ``CatalogueError`` (or ``CalendarRangeError`` when the server's
        own clock is outside the calendar)."""
        if not may_reach(actor, Access.RECEIVE, DossierUnits.of(new.receiving_unit)):
            raise Forbidden(f"this key cannot receive dossiers for {new.receiving_unit}")
        if new.received_at is not None and actor.role not in TIME_SETTERS:
            raise Forbidden("received_at may be set by importer or admin keys only")
        await self.restore_catalogue()
        errors = domain.catalogue_errors(self.catalogue, new.procedure_code)
        if errors:
            raise CatalogueError(errors)
        procedure = self.catalogue.procedures[new.procedure_code]
        now = new.received_at or self.clock()
        if now > self.clock():
            raise CatalogueError([("received_at", "is in the future")])
        status = domain.initial_status(new.channel)
        received_at = now if status is domain.DossierStatus.RECEIVED else None
        due_at: datetime | None = None
        if received_at is not None:
            try:
                due_at = self.calendar.due_at(received_at, procedure.duration_for(online=False))
            except CalendarRangeError as exc:
                if new.received_at is None:
                    raise  # the server's own clock is outside the calendar: 503
                raise CatalogueError([("received_at", str(exc))]) from exc
        return _Intended(procedure, now, status, received_at, due_at)

    async def _store_reception(
        self,
        session: AsyncSession,
        new: NewDossier,
        intended: _Intended,
        actor: Principal,
        code: str,
    ) -> Answer:
        """Store the dossier under ``code`` with its first history entry, and put its
        events in the outbox, in ``session``'s transaction."""
        now, status, received_at = intended.now, intended.status, intended.received_at
        dossier = store.Dossier(
            code=code,
            procedure_code=new.procedure_code,
            channel=new.channel.value,
            receiving_unit=new.receiving_unit,
            status=status.value,
            submitted_at=now,
            received_at=received_at,
            due_at=intended.due_at,
            last_event_at=now,
            applicant_name=new.applicant.name,
            applicant_phone=new.applicant.phone,
            applicant_email=new.applicant.email,
            applicant_id_number=new.applicant_id_number,
            documents=new.documents,
        )
        first = store.DossierHistory(
            code=code,
            position=1,
            action="receive" if received_at is not None else "submit",
            at=now,
            status=status.value,
            key_id=actor.key_id,
        )
        payload: Payload
        if received_at is not None:
            payload = self._received(dossier, intended.procedure, received_at, intended.due_at)
        else:
            payload = DossierSubmitted(
                procedure_code=new.procedure_code,
                channel=new.channel,
                receiving_unit=new.receiving_unit,
                submitted_at=now,
            )
        contact = DossierContact(
            applicant=new.applicant,
            procedure_code=new.procedure_code,
            receiving_unit=new.receiving_unit,
        )
        events = [
            outbox_values(event, occurred_at=now, source=SERVICE, dossier_code=code)
            for event in (contact, payload)
        ]
        await store.add_dossier(session, dossier, first, events)
        return Answer(201, views.DossierOut.of(dossier).model_dump(mode="json"))
