"""Notify's event handling: contacts stored, notices turned into queued messages (or left
waiting for their dossier's contact), lateness messages superseded when processing ends.

Runs inside the inbox transaction of each batch (``Notices.apply``); the rules it keeps are
stated at the top of ``services.notify.app``; every statement it runs is a function of
``services.notify.store``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from prometheus_client import Counter
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import domain, store
from services.notify.office import OfficeWarnings
from services.notify.render import Renderer
from shared.catalogue import Catalogue, seed_catalogue
from shared.clock import Clock
from shared.db import Database
from shared.events import Contact, DossierContact, DossierReceived, DossierSubmitted, Envelope
from shared.handlers import Handlers

NOTICES_UNADDRESSED = Counter(
    "motcua_notifications_unaddressed_total",
    "Notices that came before their dossier's contact and wait for it (queued when it "
    "comes; deleted after the message retention period if it never does).",
    ["trigger"],
)


class Notices:
    """Queues the messages events ask for; ``apply`` has the inbox ``Apply`` signature."""

    def __init__(
        self,
        db: Database,
        renderer: Renderer,
        wake: Callable[[], None],
        opt_out_key: bytes,
        *,
        catalogue: Callable[[], Catalogue] = seed_catalogue,
        clock: Clock,
    ) -> None:
        self.db = db
        self.renderer = renderer
        self.wake = wake
        self.opt_out_key = opt_out_key
        self.clock = clock
        self.office = OfficeWarnings(renderer, catalogue=catalogue, clock=clock)

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Store contacts and queue the messages events ask for (inside the inbox
        transaction; the consumer wakes the dispatcher once it is committed).

        Contacts of the batch are stored first, so a notice later in the same batch finds
        them, and the notices that waited for those contacts are queued with the batch's
        own. A notice whose dossier has no contact yet waits (``store.WaitingNotice``). A
        key already stored is skipped: a message is queued once however often its event
        comes. Disabled triggers and opted-out dossiers or contacts queue nothing to the
        citizen. Then office heads' warnings are queued (``office``), and last, for a
        dossier whose processing ended in the batch, its lateness messages still queued or
        waiting (overdue, office warning; stored earlier or just now) become ``superseded``
        or are dropped: a message must still be true when it is sent.
        """
        now = self.clock()
        addressees = await self._store_contacts(session, events, now)
        notices = [(n, now) for n in map(domain.notice_of, events) if n is not None]
        notices = await store.take_waiting(session, addressees.keys()) + notices
        await self._queue_notices(session, notices, addressees, now)
        await self.office.apply(session, events)
        ended = {e.dossier_code for e in events if e.dossier_code and domain.ends_processing(e)}
        if ended:
            await store.supersede_lateness(session, ended)
        await _record_ends(session, events, now)

    async def release_waiting(self) -> int:
        """Queue the notices still waiting whose contact has come; return how many.

        The contact's own batch queues the notices that waited for it. But two notify
        processes may hold a dossier's lifecycle and contacts partitions: one stores the
        contact while the other, in a transaction that cannot see it yet, parks a notice.
        This finds such a notice. Two processes releasing one notice at once queue its
        messages under the same keys: one commit wins, the other fails and finds nothing
        next time.
        """
        now = self.clock()
        async with self.db.transaction() as session:
            codes = await store.waiting_with_contact(session)
            notices = await store.take_waiting(session, codes)
            await self._queue_notices(session, notices, {}, now)
        if notices:
            self.wake()  # committed: the dispatcher sees them
        return len(notices)

    async def _queue_notices(
        self,
        session: AsyncSession,
        notices: Sequence[tuple[domain.Notice, datetime]],
        addressees: Mapping[str, domain.Addressee],
        now: datetime,
    ) -> None:
        """Queue each notice's messages (``created_at``: when the notice came), or let the
        notice wait for its dossier's contact."""
        if not notices:
            return
        codes = {n.dossier_code for n, _ in notices}
        known = await store.addressees(session, codes - addressees.keys())
        known.update(addressees)
        toggles = await store.load_toggles(session)
        drafts: dict[str, tuple[domain.Draft, datetime]] = {}
        waiting: dict[str, dict[str, object]] = {}
        for notice, came in notices:
            to = known.get(notice.dossier_code)
            if to is None:
                parked = _waiting(notice, came)
                waiting.setdefault(str(parked["key"]), parked)
                continue
            if not domain.is_enabled(toggles, to.procedure_code, to.receiving_unit, notice.trigger):
                continue
            for draft in self.renderer.drafts(notice, to):
                drafts.setdefault(draft.key, (draft, came))
        await _park(session, waiting)
        if not drafts:
            return
        opted_out = await _opted_out(session, (d for d, _ in drafts.values()), self.opt_out_key)
        untrue = await _no_longer_true(session, (d for d, _ in drafts.values()))
        stored = await store.stored_keys(session, list(drafts))
        await store.queue_messages(
            session,
            [
                {
                    "key": key,
                    "dossier_code": d.dossier_code,
                    "trigger": d.trigger.value,
                    "channel": d.channel.value,
                    "recipient": d.recipient,
                    "subject": d.subject,
                    "body": d.body,
                    "status": (
                        store.SUPPRESSED
                        if key in opted_out
                        else store.SUPERSEDED
                        if key in untrue
                        else store.QUEUED
                    ),
                    "attempts": 0,
                    "created_at": came,
                    "next_attempt_at": now,
                }
                for key, (d, came) in drafts.items()
                if key not in stored
            ],
        )

    async def _store_contacts(
        self, session: AsyncSession, events: Sequence[Envelope], now: datetime
    ) -> dict[str, domain.Addressee]:
        contacts: dict[str, domain.Addressee] = {}
        for envelope in events:
            code = envelope.dossier_code
            found = _contact_of(envelope)
            if not code or found is None:
                continue
            contact, procedure_code, receiving_unit = found
            contacts[code] = domain.Addressee(
                name=contact.name,
                phone=contact.phone,
                email=contact.email,
                procedure_code=procedure_code,
                receiving_unit=receiving_unit,
            )
        if not contacts:
            return {}
        return await store.put_addressees(session, contacts, now)


def opt_out_targets(message: store.Message | domain.Draft, key: bytes) -> set[str]:
    """The opt-out targets a message falls under: its dossier, its recipient's keyed
    fingerprint."""
    return {
        store.dossier_target(message.dossier_code),
        store.contact_target(domain.contact_fingerprint(message.recipient, key)),
    }


async def _no_longer_true(session: AsyncSession, drafts: Iterable[domain.Draft]) -> set[str]:
    """Keys of lateness drafts (``domain.SUPERSEDED_TRIGGERS``) whose dossier's processing
    ended in an earlier batch: the warning and the end travel on different topics, so the
    warning can come after the result; it is stored ``superseded``, never sent."""
    lateness = [d for d in drafts if d.trigger.value in domain.SUPERSEDED_TRIGGERS]
    if not lateness:
        return set()
    ended = await store.ended_among(session, {d.dossier_code for d in lateness})
    return {d.key for d in lateness if d.dossier_code in ended}


async def _opted_out(session: AsyncSession, drafts: Iterable[domain.Draft], key: bytes) -> set[str]:
    """Keys of drafts whose dossier or contact has opted out (one query)."""
    wanted = {d.key: opt_out_targets(d, key) for d in drafts}
    targets: set[str] = set().union(*wanted.values())
    found = await store.opted_out(session, targets)
    return {key for key, ts in wanted.items() if ts & found}


_Found = tuple[Contact, str, str] | None
_CONTACTS: Handlers[_Found] = Handlers()
"""The applicant's contact an event carries (``_contact_of``)."""


def _contact_of(envelope: Envelope) -> _Found:
    """The applicant's contact an event carries, with the dossier's procedure and
    receiving unit: a ``dossier.contact``, or a ``dossier.submitted`` /
    ``dossier.received`` of contract 1, which still carried the contact (the lifecycle
    models drop that field, so it is read from the raw payload)."""
    return _CONTACTS.handle(envelope)


@_CONTACTS.on(DossierContact)
def _contact(contact: DossierContact, _envelope: Envelope) -> _Found:
    return contact.applicant, contact.procedure_code, contact.receiving_unit


def _legacy_contact(legacy: DossierReceived | DossierSubmitted, envelope: Envelope) -> _Found:
    applicant = envelope.payload.get("applicant")
    if applicant is None:
        return None
    return Contact.model_validate(applicant), legacy.procedure_code, legacy.receiving_unit


_CONTACTS.add(DossierReceived, _legacy_contact)
_CONTACTS.add(DossierSubmitted, _legacy_contact)


def _waiting(notice: domain.Notice, came: datetime) -> dict[str, object]:
    """The ``notice_waiting`` row (column name to value) of a notice waiting for its
    dossier's contact."""
    return {
        "key": domain.notice_key(notice.dossier_code, notice.trigger, notice.occurrence),
        "dossier_code": notice.dossier_code,
        "trigger": notice.trigger.value,
        "occurrence": notice.occurrence,
        "facts": dict(notice.facts),
        "created_at": came,
    }


async def _park(session: AsyncSession, wanted: Mapping[str, Mapping[str, object]]) -> None:
    """Let notices wait for their dossier's contact (once per key; one read of the keys
    waiting already, one multi-row insert)."""
    if not wanted:
        return
    there = await store.waiting_keys(session, list(wanted))
    fresh = [row for key, row in wanted.items() if key not in there]
    for row in fresh:
        NOTICES_UNADDRESSED.labels(row["trigger"]).inc()
    await store.park_waiting(session, fresh)


async def _record_ends(session: AsyncSession, events: Sequence[Envelope], now: datetime) -> None:
    """Set ``ended_at`` of the addressees of dossiers whose processing ended in the batch
    (the retention of their contact counts from it), and clear it for those that resumed;
    the batch's last word on a dossier wins."""
    last: dict[str, bool] = {}
    for envelope in events:
        code = envelope.dossier_code
        if not code:
            continue
        if domain.ends_processing(envelope):
            last[code] = True
        elif domain.resumes_processing(envelope):
            last[code] = False
    for ended in (True, False):
        codes = [code for code, value in last.items() if value is ended]
        if codes:
            await store.set_ended(session, codes, now if ended else None)
