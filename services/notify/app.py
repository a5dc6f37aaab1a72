"""Notify's wiring: store each message under its key, then a dispatcher sends it.

Exactly once per key, with any number of dispatchers (in one process or many, on one
database), and how a crash is handled:

- The message row is inserted (``queued``) in the inbox transaction of the event that
  asked for it; a repeated event finds the key taken and adds nothing.
- A dispatcher round claims due rows (``queued`` → ``sending`` with a claim id of the
  round's own and ``claimed_at``, one committed ``UPDATE ... WHERE status = 'queued'``),
  so two dispatchers never both take a row.
- The claim is a lease of ``sending_lease_seconds``, renewed while the round runs: every
  third of the lease the round sets ``claimed_at`` of its rows still ``sending`` to now,
  and it renews a row once more right before handing it to a sink. However slow the sinks
  and however long the round, only a dispatcher that stopped (crashed, killed, cut off
  from the database for a whole lease) lets its lease lapse.
- Every statement a dispatcher runs on the rows it claimed is guarded by
  ``WHERE claim = <mine>``: the renewal, the check right before a send (the row must
  still be ``sending`` under my claim, or it is not sent), the record of the outcome and
  the release of unsent rows. A dispatcher whose lease lapsed and whose rows another one
  has reconciled (and perhaps claimed again) therefore neither sends them nor overwrites
  what the other decided; it counts the lost claim
  (``motcua_notifications_claim_lost_total``) and logs the message key (never a
  recipient or a text).
- Each outcome is recorded right after its send, in a small transaction of its own, so a
  crash later in the round loses no outcome already known.
- A round's sends go out in parallel, at most ``send_concurrency`` at once per channel,
  so per sink (the SMTP server, the SMS gateway; only the development file sink may serve
  both channels). Messages to one recipient on one channel go one after another in the
  order they fell due (``next_attempt_at``, then ``created_at``); no order holds between
  recipients (a round used to go out whole in due order), nor across rounds (a retried
  message goes after later ones).
- Any exception from a sink is a failure of that message only: a ``DeliveryError`` says
  whether it is temporary; anything else (an ``OSError``, a bug in a sink) is temporary.
  A failed message is queued for a retry or failed by the rules below, never left
  ``sending``. A database error on one message (the check or the record) does not stop
  the others; the round raises it once they are done, and that row is released (not
  sent yet) or settled by its lease (sent, outcome not recorded).
- A round that ends early (cancelled at shutdown, a database error) puts the rows it
  never handed to a sink back to ``queued`` (best effort: if even that fails, the lease
  settles them).
- A crash after the claim leaves rows ``sending``. Once their lease has lapsed,
  reconciliation decides: on a channel whose sinks are ``resend_safe`` (the SMS gateway
  de-duplicates on the key we send as its reference id; the file sink rewrites one file)
  the row is queued again and resent under the same key; on SMTP, which cannot
  de-duplicate, it becomes ``unknown`` and is not resent: at most one e-mail, never two.
- Temporary failures are retried with exponential backoff up to ``max_attempts``,
  then ``failed`` with the reason; permanent ones fail at once.
- The gateway's delivery report is taken while the message is ``sending`` or ``sent``
  (it may overtake the record of the send) and wins over the send's own outcome,
  whichever is recorded first (see ``Notifier._record``).
- SMS is held during quiet hours (default 21:00–07:00 Vietnam time) and sent after,
  unless the SMS channel is only the development file sink, which rings no phone.
- A lateness message (the citizen's overdue notice, the office head's warning) still
  ``queued`` when the dossier's processing ends (result ready, refused, stopped,
  withdrawn) becomes ``superseded`` in that event's inbox transaction: it is never sent.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import case, null
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import domain, store
from services.notify.channels import (
    DeliveryError,
    FailoverSink,
    FileSink,
    HttpSmsSink,
    Outgoing,
    Sink,
    SmtpSink,
)
from services.notify.office import OfficeWarnings
from services.notify.render import Renderer
from services.notify.reports import TABLES as REPORT_TABLES
from services.notify.reports import ReportProjection
from services.notify.settings import NotifySettings
from shared.clock import Clock, utc_now
from shared.consume import follow, subscribe
from shared.events import Contact, DossierContact, DossierReceived, DossierSubmitted, Envelope
from shared.keys_sync import TABLES as KEY_TABLES
from shared.keys_sync import following_keys
from shared.service import ServiceRuntime, every
from shared.settings import ServiceName, Settings
from shared.signing import dev_secret
from shared.topics import API_KEYS, DOSSIER_CONTACTS, DOSSIER_LIFECYCLE, DOSSIER_SLA
from shared.wakeup import Wakeup

SERVICE: ServiceName = "notify"
log = logging.getLogger(__name__)

NOTIFICATIONS = Counter(
    "motcua_notifications_total", "Message send outcomes by channel.", ["channel", "status"]
)
NOTICES_UNADDRESSED = Counter(
    "motcua_notifications_unaddressed_total",
    "Notices that came before their dossier's contact and wait for it (queued when it "
    "comes; deleted after the message retention period if it never does).",
    ["trigger"],
)
CLAIMS_LOST = Counter(
    "motcua_notifications_claim_lost_total",
    "Messages a dispatcher no longer held when it came to send them or to record their "
    "outcome (its lease had lapsed and another dispatcher had settled them).",
    ["channel"],
)

_DISPATCH_IDLE_SECONDS = 0.2


class Notifier:
    """Notify's use cases: queue messages from events, dispatch them, answer queries."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        channels: Mapping[str, FailoverSink],
        settings: NotifySettings,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.runtime = runtime
        self.channels = dict(channels)
        self.settings = settings
        self.clock = clock
        self.renderer = Renderer(sms_max_segments=settings.sms_max_segments)
        self._wake = Wakeup()
        self._slots = {name: asyncio.Semaphore(settings.send_concurrency) for name in channels}
        self.office = OfficeWarnings(self.renderer, self.wake, clock=clock)
        self.opt_out_key = opt_out_key(runtime.settings, settings)

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Store contacts and queue the messages events ask for (inside the inbox transaction).

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
        notices = await _take_waiting(session, addressees.keys()) + notices
        await self._queue_notices(session, notices, addressees, now)
        await self.office.apply(session, events)
        ended = {e.dossier_code for e in events if e.dossier_code and domain.ends_processing(e)}
        await _supersede(session, ended)
        await _record_ends(session, events, now)

    async def _queue_notices(
        self,
        session: AsyncSession,
        notices: Sequence[tuple[domain.Notice, datetime]],
        addressees: Mapping[str, store.AddresseeRow],
        now: datetime,
    ) -> None:
        """Queue each notice's messages (``created_at``: when the notice came), or let the
        notice wait for its dossier's contact."""
        if not notices:
            return
        codes = {n.dossier_code for n, _ in notices}
        known = {
            row.dossier_code: row
            for row in (
                await session.exec(
                    select(store.AddresseeRow).where(
                        col(store.AddresseeRow.dossier_code).in_(codes - addressees.keys())
                    )
                )
            ).all()
        }
        known.update(addressees)
        toggles = await load_toggles(session)
        drafts: dict[str, tuple[domain.Draft, datetime]] = {}
        waiting: dict[str, store.WaitingNotice] = {}
        for notice, came in notices:
            row = known.get(notice.dossier_code)
            if row is None:
                parked = _waiting(notice, came)
                waiting.setdefault(parked.key, parked)
                continue
            if not domain.is_enabled(
                toggles, row.procedure_code, row.receiving_unit, notice.trigger
            ):
                continue
            for draft in self.renderer.drafts(notice, _addressee(row)):
                drafts.setdefault(draft.key, (draft, came))
        await _park(session, waiting.values())
        if not drafts:
            return
        opted_out = await _opted_out(session, (d for d, _ in drafts.values()), self.opt_out_key)
        stored = set(
            (
                await session.exec(
                    select(store.Message.key).where(col(store.Message.key).in_(list(drafts)))
                )
            ).all()
        )
        session.add_all(
            store.Message(
                key=d.key,
                dossier_code=d.dossier_code,
                trigger=d.trigger.value,
                channel=d.channel.value,
                recipient=d.recipient,
                subject=d.subject,
                body=d.body,
                status=store.SUPPRESSED if key in opted_out else store.QUEUED,
                created_at=came,
                next_attempt_at=now,
            )
            for key, (d, came) in drafts.items()
            if key not in stored
        )
        self._wake.set()

    async def _store_contacts(
        self, session: AsyncSession, events: Sequence[Envelope], now: datetime
    ) -> dict[str, store.AddresseeRow]:
        contacts: dict[str, store.AddresseeRow] = {}
        for envelope in events:
            code = envelope.dossier_code
            found = _contact_of(envelope)
            if not code or found is None:
                continue
            contact, procedure_code, receiving_unit = found
            contacts[code] = store.AddresseeRow(
                dossier_code=code,
                name=contact.name,
                phone=contact.phone,
                email=contact.email,
                procedure_code=procedure_code,
                receiving_unit=receiving_unit,
                updated_at=now,
            )
        if not contacts:
            return {}
        existing = {
            row.dossier_code: row
            for row in (
                await session.exec(
                    select(store.AddresseeRow).where(
                        col(store.AddresseeRow.dossier_code).in_(list(contacts))
                    )
                )
            ).all()
        }
        for code, fresh in contacts.items():
            row = existing.get(code)
            if row is None:
                session.add(fresh)
                continue
            row.name, row.phone, row.email = fresh.name, fresh.phone, fresh.email
            row.procedure_code, row.receiving_unit = fresh.procedure_code, fresh.receiving_unit
            row.updated_at = now
            session.add(row)
            contacts[code] = row
        return contacts

    def wake(self) -> None:
        """Let the dispatcher look for due messages now (after queueing outside ``apply``)."""
        self._wake.set()

    async def dispatch_forever(self) -> None:
        """Send due messages until cancelled."""
        while True:
            try:
                sent = await self.dispatch_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dispatch failed: %s", type(exc).__name__)
                sent = 0
            if sent < self.settings.dispatch_batch:
                await self._wake.sleep(_DISPATCH_IDLE_SECONDS)

    async def dispatch_round(self) -> int:
        """Reconcile interrupted sends, then claim one round of due messages, send them and
        record each outcome; return how many messages were claimed.

        Sends run in parallel, ``send_concurrency`` at once per channel, one recipient's
        messages on a channel in due order. The round's lease is renewed until its last
        outcome is recorded. A database error on one message does not stop the others;
        once they are done the round raises the first such error.
        """
        now = self.clock()
        await self.reconcile(now)
        claim = str(uuid.uuid4())
        claimed = await self._claim(now, claim)
        if not claimed:
            return 0
        html = await self._html_of(claimed)
        unsent = {m.key for m in claimed}  # not handed to a sink yet
        errors: list[Exception] = []
        lease = asyncio.create_task(self._hold_lease(claim))
        try:
            await asyncio.gather(
                *(
                    self._send_queue(queue, claim, html, unsent, errors)
                    for queue in _queues(claimed)
                )
            )
        finally:
            lease.cancel()
            await asyncio.wait([lease])
            if unsent:
                await self._release(unsent, claim)
        if errors:
            raise errors[0]
        return len(claimed)

    async def reconcile(self, now: datetime) -> None:
        """Settle messages left ``sending`` whose lease lapsed (``claimed_at`` not renewed
        for ``sending_lease_seconds``: their dispatcher stopped).

        Resend-safe channels: queued again (same key). Others: ``unknown``, not resent.
        """
        expired = now - timedelta(seconds=self.settings.sending_lease_seconds)
        async with self.runtime.db.transaction() as session:
            for channel, sink in self.channels.items():
                await session.exec(
                    update(store.Message)
                    .where(
                        col(store.Message.status) == store.SENDING,
                        col(store.Message.channel) == channel,
                        col(store.Message.claimed_at) < expired,
                    )
                    .values(
                        status=store.QUEUED if sink.resend_safe else store.UNKNOWN,
                        claim=None,
                        last_error="interrupted during send"
                        + ("; resent under the same key" if sink.resend_safe else "; not resent"),
                    )
                )

    async def _claim(self, now: datetime, claim: str) -> list[store.Message]:
        """Claim up to ``dispatch_batch`` due messages under ``claim``; return them, in due
        order."""
        channels = list(self.channels)
        if domain.in_quiet_hours(now, self.settings.quiet_start, self.settings.quiet_end):
            channels = [
                name
                for name, sink in self.channels.items()
                if name != domain.MessageChannel.SMS.value or not sink.reaches_citizen
            ]
        if not channels:
            return []
        async with self.runtime.db.transaction() as session:
            due = (
                await session.exec(
                    select(store.Message.key)
                    .where(
                        col(store.Message.status) == store.QUEUED,
                        col(store.Message.next_attempt_at) <= now,
                        col(store.Message.channel).in_(channels),
                    )
                    .order_by(col(store.Message.next_attempt_at))
                    .limit(self.settings.dispatch_batch)
                )
            ).all()
            if not due:
                return []
            await session.exec(
                update(store.Message)
                .where(
                    col(store.Message.key).in_(list(due)),
                    col(store.Message.status) == store.QUEUED,
                )
                .values(status=store.SENDING, claim=claim, claimed_at=now)
            )
        async with self.runtime.db.sessions() as session:
            rows = await session.exec(
                select(store.Message)
                .where(store.Message.claim == claim)
                .order_by(col(store.Message.next_attempt_at), col(store.Message.created_at))
            )
            return list(rows.all())

    async def _hold_lease(self, claim: str) -> None:
        """Renew the lease of ``claim``'s rows still ``sending`` every third of
        ``sending_lease_seconds`` until cancelled.

        A failed renewal (the database) is logged and tried again at the next tick: two in
        a row may fail before another dispatcher may take the rows over.
        """
        every = self.settings.sending_lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            try:
                async with self.runtime.db.transaction() as session:
                    await session.exec(
                        update(store.Message)
                        .where(
                            col(store.Message.claim) == claim,
                            col(store.Message.status) == store.SENDING,
                        )
                        .values(claimed_at=self.clock())
                    )
            except Exception as exc:
                log.warning("sending lease not renewed: %s", type(exc).__name__)

    async def _html_of(self, messages: Sequence[store.Message]) -> dict[str, str]:
        """The HTML alternatives of the claimed e-mails that have one (one query)."""
        keys = [m.key for m in messages if m.channel == domain.MessageChannel.EMAIL.value]
        if not keys:
            return {}
        async with self.runtime.db.sessions() as session:
            rows = await session.exec(
                select(store.MessageHtml).where(col(store.MessageHtml.key).in_(keys))
            )
            return {row.key: row.html for row in rows.all()}

    async def _send_queue(
        self,
        queue: Sequence[store.Message],
        claim: str,
        html: Mapping[str, str],
        unsent: set[str],
        errors: list[Exception],
    ) -> None:
        """Send one recipient's messages on one channel, one after another, in order; a
        database error on one is kept in ``errors`` and the next is tried."""
        for message in queue:
            try:
                await self._dispatch(message, claim, html.get(message.key), unsent)
            except Exception as exc:
                log.warning(
                    "message %s: %s while checking or recording it; released at the end "
                    "of the round if unsent, else settled by its lease",
                    message.key,
                    type(exc).__name__,
                )
                errors.append(exc)

    async def _dispatch(
        self, message: store.Message, claim: str, html: str | None, unsent: set[str]
    ) -> None:
        """Wait for a slot of the channel, check the claim, send, then record the outcome."""
        async with self._slots[message.channel]:
            mine = await self._still_claimed(message, claim)
            unsent.discard(message.key)
            if not mine:
                return
            outcome = await self._send(message, html)
        await self._record(message, outcome, claim, self.clock())

    async def _still_claimed(self, message: store.Message, claim: str) -> bool:
        """Renew one row's lease right before its send: true if it is still ``sending``
        under ``claim``.

        False when the lease had lapsed and another dispatcher reconciled the row (counted
        as a lost claim), or when a delivery report settled it first (the gateway has it
        from an earlier, interrupted send): either way it is not sent again.
        """
        async with self.runtime.db.transaction() as session:
            found = (
                await session.exec(
                    update(store.Message)
                    .where(
                        col(store.Message.key) == message.key,
                        col(store.Message.claim) == claim,
                    )
                    .values(claimed_at=self.clock())
                    .returning(col(store.Message.status))
                )
            ).first()
        if found is None:
            self._claim_lost(message, "before its send, which was skipped")
            return False
        return bool(found[0] == store.SENDING)

    async def _send(
        self, message: store.Message, html: str | None
    ) -> tuple[str, str | None] | DeliveryError:
        """Hand the message to its channel; any exception is this message's failure (one
        that is not a ``DeliveryError`` is temporary)."""
        outgoing = Outgoing(
            key=message.key,
            channel=message.channel,
            recipient=message.recipient,
            subject=message.subject,
            body=message.body,
            html=html,
        )
        try:
            return await self.channels[message.channel].send_via(outgoing)
        except DeliveryError as exc:
            return exc
        except Exception as exc:
            return DeliveryError(f"{message.channel}: {type(exc).__name__}", temporary=True)

    async def _record(
        self,
        message: store.Message,
        outcome: tuple[str, str | None] | DeliveryError,
        claim: str,
        now: datetime,
    ) -> None:
        """Record one send's outcome in a transaction of its own, only while the row is
        still under ``claim`` (else: a lost claim, counted and logged; the outcome is
        dropped, the other dispatcher's decision stands).

        Precedence: a delivery report that came while the message was ``sending`` wins over
        the send's outcome. The gateway reports only on a message it accepted, and reports
        after accepting it, so its word is the later truth: recording the send then adds
        the attempt (and, on success, ``sent_at``, the sink and the provider id) but keeps
        the report's status, ``delivered_at`` and reason. A ``delivered`` message is not
        queued again because our side of the request timed out; a ``failed`` report is not
        turned back into ``sent``.
        """
        attempts = message.attempts + 1
        reported = col(store.Message.status) != store.SENDING
        values: dict[str, object]
        if isinstance(outcome, DeliveryError):
            gave_up = not outcome.temporary or attempts >= self.settings.max_attempts
            delay = domain.retry_delay(
                attempts, self.settings.backoff_seconds, self.settings.backoff_max_seconds
            )
            status = store.FAILED if gave_up else store.QUEUED
            values = {
                "status": case((reported, col(store.Message.status)), else_=status),
                "last_error": case(
                    (reported, col(store.Message.last_error)), else_=str(outcome)[:300]
                ),
                "next_attempt_at": now + delay,
            }
            counted = status if gave_up else "retry"
        else:
            sink, provider_id = outcome
            values = {
                "status": case((reported, col(store.Message.status)), else_=store.SENT),
                "last_error": case((reported, col(store.Message.last_error)), else_=null()),
                "sent_at": now,
                "sink": sink,
                "provider_id": provider_id,
            }
            counted = store.SENT
        async with self.runtime.db.transaction() as session:
            result = await session.exec(
                update(store.Message)
                .where(col(store.Message.key) == message.key, col(store.Message.claim) == claim)
                .values(attempts=attempts, claim=None, **values)
            )
        if not result.rowcount:
            self._claim_lost(message, f"before its outcome ({counted}) was recorded")
            return
        NOTIFICATIONS.labels(message.channel, counted).inc()

    async def _release(self, keys: Iterable[str], claim: str) -> None:
        """Put rows of ``claim`` never handed to a sink back to ``queued`` (best effort:
        if the database fails here, their lease settles them)."""
        try:
            async with self.runtime.db.transaction() as session:
                await session.exec(
                    update(store.Message)
                    .where(
                        col(store.Message.key).in_(list(keys)),
                        col(store.Message.claim) == claim,
                        col(store.Message.status) == store.SENDING,
                    )
                    .values(status=store.QUEUED, claim=None)
                )
        except Exception as exc:
            log.warning("unsent messages not released: %s", type(exc).__name__)

    def _claim_lost(self, message: store.Message, when: str) -> None:
        CLAIMS_LOST.labels(message.channel).inc()
        log.warning(
            "message %s: claim lost %s (its lease had lapsed; another dispatcher settled it)",
            message.key,
            when,
        )

    async def delivery_report(self, key: str, delivered: bool, reason: str | None) -> bool:
        """Apply a gateway's delivery report; ``False`` if no message with that key is
        being sent or was sent.

        A report may overtake the record of its send (the gateway answers the callback
        before our request returns): it is applied to a ``sending`` message at once, and
        the later record of the send keeps it (precedence: ``_record``).
        """
        now = self.clock()
        async with self.runtime.db.transaction() as session:
            values: dict[str, object] = (
                {"status": store.DELIVERED, "delivered_at": now}
                if delivered
                else {"status": store.FAILED, "last_error": (reason or "not delivered")[:300]}
            )
            result = await session.exec(
                update(store.Message)
                .where(
                    col(store.Message.key) == key,
                    col(store.Message.status).in_([store.SENDING, store.SENT, store.DELIVERED]),
                )
                .values(**values)
            )
            return bool(result.rowcount)

    async def opt_out(self, *, dossier: str | None, contact: str | None) -> int:
        """Record an opt-out and suppress the matching messages to citizens still queued
        (an office head's warning about the dossier stays); return how many were
        suppressed. The contact is stored only as its fingerprint."""
        now = self.clock()
        targets = self._opt_out_targets(dossier, contact)
        async with self.runtime.db.transaction() as session:
            present = set(
                (
                    await session.exec(
                        select(store.OptOut.target).where(col(store.OptOut.target).in_(targets))
                    )
                ).all()
            )
            session.add_all(
                store.OptOut(target=t, created_at=now) for t in targets if t not in present
            )
            queued = (
                await session.exec(
                    select(store.Message).where(
                        store.Message.status == store.QUEUED,
                        col(store.Message.trigger).in_([t.value for t in domain.Trigger]),
                    )
                )
            ).all()
            hit = [m.key for m in queued if _opt_out_targets(m, self.opt_out_key) & set(targets)]
            if hit:
                await session.exec(
                    update(store.Message)
                    .where(col(store.Message.key).in_(hit))
                    .values(status=store.SUPPRESSED)
                )
            return len(hit)

    def _opt_out_targets(self, dossier: str | None, contact: str | None) -> list[str]:
        """What an opt-out (or its undo) names, as stored: the dossier, the contact's
        keyed fingerprint."""
        targets = []
        if dossier:
            targets.append(store.dossier_target(dossier))
        if contact:
            targets.append(
                store.contact_target(domain.contact_fingerprint(contact, self.opt_out_key))
            )
        return targets

    async def undo_opt_out(self, *, dossier: str | None, contact: str | None) -> int:
        """Withdraw an opt-out (the citizen wants messages again); return how many targets
        were removed (0: none was recorded). Messages already suppressed stay suppressed:
        they were due then, and may no longer be true; later ones are sent."""
        targets = self._opt_out_targets(dossier, contact)
        async with self.runtime.db.transaction() as session:
            result = await session.exec(
                delete(store.OptOut).where(col(store.OptOut.target).in_(targets))
            )
            return int(result.rowcount)

    async def set_toggle(
        self, trigger: domain.Trigger, enabled: bool, *, procedure: str, unit: str
    ) -> None:
        """Switch a trigger on or off for a procedure and unit (``*``: any)."""
        async with self.runtime.db.transaction() as session:
            row = await session.get(store.TriggerToggle, (procedure, unit, trigger.value))
            if row is None:
                row = store.TriggerToggle(
                    procedure_code=procedure,
                    receiving_unit=unit,
                    trigger=trigger.value,
                    enabled=enabled,
                )
            row.enabled = enabled
            session.add(row)

    async def toggles(self) -> domain.Toggles:
        """Every toggle set."""
        async with self.runtime.db.sessions() as session:
            return await load_toggles(session)

    async def purge_expired(self) -> int:
        """Delete the personal data kept past ``message_retention_days``; return how many
        messages were purged.

        - A message that reached its end (``store.FINAL``) more than that after it was
          created loses its recipient, subject and text (and an e-mail's HTML). The row,
          its status and its times stay: the delivery history and the reports need no
          personal data. A message still queued or being sent keeps what it needs to be
          sent, however old.
        - A dossier's addressee (name, phone, e-mail) is deleted that long after its
          processing ended (``ended_at``); a dossier still in process keeps it.
        - A notice that waited that long for a contact that never came is deleted.
        """
        cutoff = self.clock() - timedelta(days=self.settings.message_retention_days)
        expired = (
            col(store.Message.status).in_(store.FINAL),
            col(store.Message.created_at) < cutoff,
        )
        async with self.runtime.db.transaction() as session:
            keys = list(
                (
                    await session.exec(
                        select(store.Message.key).where(
                            *expired,
                            (col(store.Message.recipient) != store.PURGED)
                            | (col(store.Message.body) != store.PURGED),
                        )
                    )
                ).all()
            )
            if keys:
                await session.exec(
                    update(store.Message)
                    .where(col(store.Message.key).in_(keys), *expired)
                    .values(recipient=store.PURGED, subject=None, body=store.PURGED)
                )
                await session.exec(
                    delete(store.MessageHtml).where(col(store.MessageHtml.key).in_(keys))
                )
            addressees = await session.exec(
                delete(store.AddresseeRow).where(col(store.AddresseeRow.ended_at) < cutoff)
            )
            waiting = await session.exec(
                delete(store.WaitingNotice).where(col(store.WaitingNotice.created_at) < cutoff)
            )
        if keys or addressees.rowcount or waiting.rowcount:
            log.info(
                "retention: purged %d message(s), deleted %d addressee(s) and %d notice(s) "
                "that waited for a contact",
                len(keys),
                addressees.rowcount,
                waiting.rowcount,
            )
        return len(keys)

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
        async with self.runtime.db.transaction() as session:
            codes = set(
                (
                    await session.exec(
                        select(store.WaitingNotice.dossier_code).join(
                            store.AddresseeRow,
                            col(store.AddresseeRow.dossier_code)
                            == col(store.WaitingNotice.dossier_code),
                        )
                    )
                ).all()
            )
            notices = await _take_waiting(session, codes)
            await self._queue_notices(session, notices, {}, now)
        return len(notices)

    async def release_waiting_forever(self) -> None:
        """Release waiting notices every ``waiting_check_seconds``."""

        async def release() -> None:
            await self.release_waiting()

        await every(self.settings.waiting_check_seconds, release, "waiting notices")

    async def purge_forever(self) -> None:
        """Purge messages past their retention every ``retention_check_seconds``."""

        async def purge() -> None:
            await self.purge_expired()

        await every(self.settings.retention_check_seconds, purge, "message retention")

    async def receiving_unit(self, code: str) -> str | None:
        """The unit that received the dossier, as its ``dossier.contact`` said (``None``:
        notify has not heard of it, or its contact is past retention)."""
        async with self.runtime.db.sessions() as session:
            row = await session.get(store.AddresseeRow, code)
            return None if row is None else row.receiving_unit

    async def is_applicant_contact(self, code: str, contact: str) -> bool:
        """Whether ``contact`` is the phone or e-mail of the dossier's applicant."""
        async with self.runtime.db.sessions() as session:
            row = await session.get(store.AddresseeRow, code)
        if row is None:
            return False
        wanted = domain.contact_fingerprint(contact, self.opt_out_key)
        return any(
            domain.contact_fingerprint(known, self.opt_out_key) == wanted
            for known in (row.phone, row.email)
            if known
        )

    async def for_dossier(self, code: str) -> list[store.Message]:
        """Messages of one dossier, oldest first."""
        async with self.runtime.db.sessions() as session:
            rows = await session.exec(
                select(store.Message)
                .where(store.Message.dossier_code == code)
                .order_by(col(store.Message.created_at), col(store.Message.key))
            )
            return list(rows.all())


async def load_toggles(session: AsyncSession) -> domain.Toggles:
    """The trigger toggles table as a mapping (small: procedures × units × triggers set)."""
    rows = (await session.exec(select(store.TriggerToggle))).all()
    return {(r.procedure_code, r.receiving_unit, r.trigger): r.enabled for r in rows}


def _queues(messages: Sequence[store.Message]) -> list[list[store.Message]]:
    """Claimed messages as one queue per channel and recipient, each in the given order."""
    queues: dict[tuple[str, str], list[store.Message]] = {}
    for message in messages:
        queues.setdefault((message.channel, message.recipient), []).append(message)
    return list(queues.values())


def _addressee(row: store.AddresseeRow) -> domain.Addressee:
    return domain.Addressee(
        name=row.name,
        phone=row.phone,
        email=row.email,
        procedure_code=row.procedure_code,
        receiving_unit=row.receiving_unit,
    )


def opt_out_key(settings: Settings, notify: NotifySettings) -> bytes:
    """The key of the contact fingerprints: ``MOTCUA_NOTIFY_OPT_OUT_SECRET``, else (on a
    PLAINTEXT broker: development) the one generated once in
    ``<var_dir>/notify-opt-out.secret``, mode 600. A secured deployment must set it, so
    that every notify process, and the command line, fingerprint alike."""
    if notify.opt_out_secret is not None:
        return notify.opt_out_secret.get_secret_value().encode()
    if settings.kafka_security_protocol != "PLAINTEXT":
        msg = (
            "MOTCUA_NOTIFY_OPT_OUT_SECRET is not set: with a secured broker "
            f"({settings.kafka_security_protocol}) notify refuses to start without the key of "
            "its opt-out fingerprints"
        )
        raise ValueError(msg)
    return dev_secret(settings.var_dir, OPT_OUT_SECRET_FILE).encode()


OPT_OUT_SECRET_FILE = "notify-opt-out.secret"
"""The generated development key of the opt-out fingerprints, under ``var_dir``."""


def _opt_out_targets(message: store.Message | domain.Draft, key: bytes) -> set[str]:
    return {
        store.dossier_target(message.dossier_code),
        store.contact_target(domain.contact_fingerprint(message.recipient, key)),
    }


async def _opted_out(session: AsyncSession, drafts: Iterable[domain.Draft], key: bytes) -> set[str]:
    """Keys of drafts whose dossier or contact has opted out (one query)."""
    wanted = {d.key: _opt_out_targets(d, key) for d in drafts}
    targets: set[str] = set().union(*wanted.values())
    found = set(
        (
            await session.exec(
                select(store.OptOut.target).where(col(store.OptOut.target).in_(targets))
            )
        ).all()
    )
    return {key for key, ts in wanted.items() if ts & found}


async def _supersede(session: AsyncSession, ended: set[str]) -> None:
    """Mark the lateness messages of dossiers whose processing ended still ``queued``
    ``superseded`` (and drop such notices still waiting for a contact): never sent. Rows
    added earlier in the transaction are flushed first, so one queued by an earlier event
    of the same batch is covered too."""
    if not ended:
        return
    await session.flush()
    await session.exec(
        update(store.Message)
        .where(
            col(store.Message.dossier_code).in_(ended),
            col(store.Message.trigger).in_(domain.SUPERSEDED_TRIGGERS),
            col(store.Message.status) == store.QUEUED,
        )
        .values(status=store.SUPERSEDED)
    )
    await session.exec(
        delete(store.WaitingNotice).where(
            col(store.WaitingNotice.dossier_code).in_(ended),
            col(store.WaitingNotice.trigger).in_(domain.SUPERSEDED_TRIGGERS),
        )
    )


def _contact_of(envelope: Envelope) -> tuple[Contact, str, str] | None:
    """The applicant's contact an event carries, with the dossier's procedure and
    receiving unit: a ``dossier.contact``, or a ``dossier.submitted`` /
    ``dossier.received`` of contract 1, which still carried the contact (the lifecycle
    models drop that field, so it is read from the raw payload)."""
    if envelope.type == DossierContact.event_type:
        body = envelope.body(DossierContact)
        return body.applicant, body.procedure_code, body.receiving_unit
    legacy: DossierReceived | DossierSubmitted
    if envelope.type == DossierReceived.event_type:
        legacy = envelope.body(DossierReceived)
    elif envelope.type == DossierSubmitted.event_type:
        legacy = envelope.body(DossierSubmitted)
    else:
        return None
    applicant = envelope.payload.get("applicant")
    if applicant is None:
        return None
    return Contact.model_validate(applicant), legacy.procedure_code, legacy.receiving_unit


def _waiting_key(notice: domain.Notice) -> str:
    suffix = f"#{notice.occurrence}" if notice.occurrence else ""
    return f"{notice.dossier_code}:{notice.trigger.value}{suffix}"


def _waiting(notice: domain.Notice, came: datetime) -> store.WaitingNotice:
    return store.WaitingNotice(
        key=_waiting_key(notice),
        dossier_code=notice.dossier_code,
        trigger=notice.trigger.value,
        occurrence=notice.occurrence,
        facts=dict(notice.facts),
        created_at=came,
    )


async def _park(session: AsyncSession, notices: Iterable[store.WaitingNotice]) -> None:
    """Let notices wait for their dossier's contact (once per key)."""
    wanted = {n.key: n for n in notices}
    if not wanted:
        return
    there = set(
        (
            await session.exec(
                select(store.WaitingNotice.key).where(
                    col(store.WaitingNotice.key).in_(list(wanted))
                )
            )
        ).all()
    )
    for key, notice in wanted.items():
        if key not in there:
            NOTICES_UNADDRESSED.labels(notice.trigger).inc()
            session.add(notice)


async def _take_waiting(
    session: AsyncSession, codes: Iterable[str]
) -> list[tuple[domain.Notice, datetime]]:
    """Remove and return the notices that waited for these dossiers' contacts, in the
    order they came."""
    codes = list(codes)
    if not codes:
        return []
    rows = (
        await session.exec(
            select(store.WaitingNotice)
            .where(col(store.WaitingNotice.dossier_code).in_(codes))
            .order_by(col(store.WaitingNotice.created_at), col(store.WaitingNotice.key))
        )
    ).all()
    if not rows:
        return []
    await session.exec(
        delete(store.WaitingNotice).where(
            col(store.WaitingNotice.key).in_([row.key for row in rows])
        )
    )
    return [
        (
            domain.Notice(
                row.dossier_code,
                domain.Trigger(row.trigger),
                occurrence=row.occurrence,
                facts=dict(row.facts),
            ),
            row.created_at,
        )
        for row in rows
    ]


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
    if not last:
        return
    await session.flush()
    for ended in (True, False):
        codes = [code for code, value in last.items() if value is ended]
        if codes:
            await session.exec(
                update(store.AddresseeRow)
                .where(col(store.AddresseeRow.dossier_code).in_(codes))
                .values(ended_at=now if ended else None)
            )


def build_sinks(settings: Settings, notify: NotifySettings) -> dict[str, FailoverSink]:
    """The configured sinks per channel, in failover order."""
    made: dict[str, Sink] = {}

    def sink(name: str) -> Sink:
        if name not in made:
            if name == "file":
                made[name] = FileSink(settings.var_dir / "messages")
            elif name == "smtp":
                made[name] = SmtpSink(notify)
            elif name == "http":
                made[name] = HttpSmsSink(notify)
            else:
                msg = f"unknown sink {name!r}: use file, smtp or http"
                raise ValueError(msg)
        return made[name]

    return {
        domain.MessageChannel.SMS.value: FailoverSink([sink(n) for n in notify.sms_sink_names]),
        domain.MessageChannel.EMAIL.value: FailoverSink([sink(n) for n in notify.email_sink_names]),
    }


def build(
    settings: Settings,
    notify: NotifySettings | None = None,
    *,
    channels: Mapping[str, FailoverSink] | None = None,
    clock: Clock = utc_now,
) -> Notifier:
    """Notify's runtime, use cases and subscriber (messages, then the report projection, in
    one inbox transaction per batch); sinks from ``MOTCUA_NOTIFY_*``. It follows the keys
    intake issues (its API)."""
    notify = notify or NotifySettings()
    runtime = ServiceRuntime(
        SERVICE, settings, tables=[*store.TABLES, *REPORT_TABLES, *KEY_TABLES], publishes=[]
    )
    notifier = Notifier(runtime, channels or build_sinks(settings, notify), notify, clock=clock)
    projection = ReportProjection()

    async def apply(session: AsyncSession, events: Sequence[Envelope]) -> None:
        await notifier.apply(session, events)
        await projection.apply(session, events)

    subscribe(runtime, apply, DOSSIER_LIFECYCLE, DOSSIER_CONTACTS, DOSSIER_SLA)
    follow(runtime, following_keys(settings, SERVICE), API_KEYS)
    return notifier
