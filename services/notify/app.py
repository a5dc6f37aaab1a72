"""Notify's wiring: store each message under its key, then a dispatcher sends it.

Exactly once per key, and how a crash is handled:

- The message row is inserted (``queued``) in the inbox transaction of the event that
  asked for it; a repeated event finds the key taken and adds nothing.
- A dispatcher round claims due rows (``queued`` → ``sending`` with a claim id, one
  committed ``UPDATE ... WHERE status = 'queued'``, so two dispatchers never both take
  a row), sends them, and records every outcome in one transaction.
- A crash after the claim leaves rows ``sending``. Once their lease
  (``sending_lease_seconds``) has passed, reconciliation decides: on a channel whose
  sinks are ``resend_safe`` (the SMS gateway de-duplicates on the key we send as its
  reference id; the file sink rewrites one file) the row is queued again and resent under
  the same key; on SMTP, which cannot de-duplicate, it becomes ``unknown`` and is not
  resent: at most one e-mail, never two.
- Temporary failures are retried with exponential backoff up to ``max_attempts``,
  then ``failed`` with the reason; permanent ones fail at once.
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
from sqlmodel import col, select, update
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
from shared.events import DossierReceived, DossierSubmitted, Envelope
from shared.keys_sync import TABLES as KEY_TABLES
from shared.keys_sync import keep_keys
from shared.service import ServiceRuntime
from shared.settings import ServiceName, Settings
from shared.topics import API_KEYS, DOSSIER_LIFECYCLE, DOSSIER_SLA
from shared.wakeup import Wakeup

SERVICE: ServiceName = "notify"
log = logging.getLogger(__name__)

NOTIFICATIONS = Counter(
    "motcua_notifications_total", "Message send outcomes by channel.", ["channel", "status"]
)
NOTICES_UNADDRESSED = Counter(
    "motcua_notifications_unaddressed_total",
    "Notices dropped because no contact was known for the dossier.",
    ["trigger"],
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
        self.office = OfficeWarnings(self.renderer, self.wake, clock=clock)

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Store contacts and queue the messages events ask for (inside the inbox transaction).

        Contacts of the batch are stored first, so a notice later in the same batch finds
        them. A key already stored is skipped: a message is queued once however often its
        event comes. Disabled triggers and opted-out dossiers or contacts queue nothing to
        the citizen. Then office heads' warnings are queued (``office``), and last, for a
        dossier whose processing ended in the batch, its lateness messages still queued
        (overdue, office warning; stored earlier or just now) become ``superseded``: a
        message must still be true when it is sent.
        """
        now = self.clock()
        addressees = await self._store_contacts(session, events, now)
        await self._queue_notices(session, events, addressees, now)
        await self.office.apply(session, events)
        ended = {e.dossier_code for e in events if e.dossier_code and domain.ends_processing(e)}
        await _supersede(session, ended)

    async def _queue_notices(
        self,
        session: AsyncSession,
        events: Sequence[Envelope],
        addressees: Mapping[str, store.AddresseeRow],
        now: datetime,
    ) -> None:
        notices = [n for n in map(domain.notice_of, events) if n is not None]
        if not notices:
            return
        codes = {n.dossier_code for n in notices}
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
        drafts: dict[str, domain.Draft] = {}
        for notice in notices:
            row = known.get(notice.dossier_code)
            if row is None:
                NOTICES_UNADDRESSED.labels(notice.trigger.value).inc()
                continue
            if not domain.is_enabled(
                toggles, row.procedure_code, row.receiving_unit, notice.trigger
            ):
                continue
            for draft in self.renderer.drafts(notice, _addressee(row)):
                drafts.setdefault(draft.key, draft)
        if not drafts:
            return
        opted_out = await _opted_out(session, drafts.values())
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
                created_at=now,
                next_attempt_at=now,
            )
            for key, d in drafts.items()
            if key not in stored
        )
        self._wake.set()

    async def _store_contacts(
        self, session: AsyncSession, events: Sequence[Envelope], now: datetime
    ) -> dict[str, store.AddresseeRow]:
        contacts: dict[str, store.AddresseeRow] = {}
        for envelope in events:
            code = envelope.dossier_code
            if not code:
                continue
            body: DossierReceived | DossierSubmitted
            if envelope.type == DossierReceived.event_type:
                body = envelope.body(DossierReceived)
            elif envelope.type == DossierSubmitted.event_type:
                body = envelope.body(DossierSubmitted)
            else:
                continue
            contacts[code] = store.AddresseeRow(
                dossier_code=code,
                name=body.applicant.name,
                phone=body.applicant.phone,
                email=body.applicant.email,
                procedure_code=body.procedure_code,
                receiving_unit=body.receiving_unit,
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
        """Reconcile interrupted sends, then claim, send and record one round; return
        how many messages were attempted."""
        now = self.clock()
        await self.reconcile(now)
        claimed = await self._claim(now)
        if not claimed:
            return 0
        html = await self._html_of(claimed)
        outcomes = [
            (message, await self._send(message, html.get(message.key))) for message in claimed
        ]
        await self._record(outcomes, self.clock())
        return len(outcomes)

    async def reconcile(self, now: datetime) -> None:
        """Settle messages left ``sending`` past their lease (the dispatcher crashed).

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

    async def _claim(self, now: datetime) -> list[store.Message]:
        channels = list(self.channels)
        if domain.in_quiet_hours(now, self.settings.quiet_start, self.settings.quiet_end):
            channels = [
                name
                for name, sink in self.channels.items()
                if name != domain.MessageChannel.SMS.value or not sink.reaches_citizen
            ]
        if not channels:
            return []
        claim = str(uuid.uuid4())
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
                .order_by(col(store.Message.next_attempt_at))
            )
            return list(rows.all())

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

    async def _send(
        self, message: store.Message, html: str | None
    ) -> tuple[str, str | None] | DeliveryError:
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

    async def _record(
        self,
        outcomes: Sequence[tuple[store.Message, tuple[str, str | None] | DeliveryError]],
        now: datetime,
    ) -> None:
        async with self.runtime.db.transaction() as session:
            for message, outcome in outcomes:
                attempts = message.attempts + 1
                values: dict[str, object]
                if isinstance(outcome, DeliveryError):
                    gave_up = not outcome.temporary or attempts >= self.settings.max_attempts
                    delay = domain.retry_delay(
                        attempts, self.settings.backoff_seconds, self.settings.backoff_max_seconds
                    )
                    values = {
                        "status": store.FAILED if gave_up else store.QUEUED,
                        "last_error": str(outcome)[:300],
                        "next_attempt_at": now + delay,
                    }
                    status = values["status"] if gave_up else "retry"
                else:
                    sink, provider_id = outcome
                    values = {
                        "status": store.SENT,
                        "sent_at": now,
                        "sink": sink,
                        "provider_id": provider_id,
                        "last_error": None,
                    }
                    status = store.SENT
                await session.exec(
                    update(store.Message)
                    .where(col(store.Message.key) == message.key)
                    .values(attempts=attempts, claim=None, **values)
                )
                NOTIFICATIONS.labels(message.channel, str(status)).inc()

    async def delivery_report(self, key: str, delivered: bool, reason: str | None) -> bool:
        """Apply a gateway's delivery report; ``False`` if no sent message has that key."""
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
                    col(store.Message.status).in_([store.SENT, store.DELIVERED]),
                )
                .values(**values)
            )
            return bool(result.rowcount)

    async def opt_out(self, *, dossier: str | None, contact: str | None) -> int:
        """Record an opt-out and suppress the matching messages to citizens still queued
        (an office head's warning about the dossier stays); return how many were
        suppressed. The contact is stored only as its fingerprint."""
        now = self.clock()
        targets = []
        if dossier:
            targets.append(store.dossier_target(dossier))
        if contact:
            targets.append(store.contact_target(domain.contact_fingerprint(contact)))
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
            hit = [m.key for m in queued if _opt_out_targets(m) & set(targets)]
            if hit:
                await session.exec(
                    update(store.Message)
                    .where(col(store.Message.key).in_(hit))
                    .values(status=store.SUPPRESSED)
                )
            return len(hit)

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


def _addressee(row: store.AddresseeRow) -> domain.Addressee:
    return domain.Addressee(
        name=row.name,
        phone=row.phone,
        email=row.email,
        procedure_code=row.procedure_code,
        receiving_unit=row.receiving_unit,
    )


def _opt_out_targets(message: store.Message | domain.Draft) -> set[str]:
    return {
        store.dossier_target(message.dossier_code),
        store.contact_target(domain.contact_fingerprint(message.recipient)),
    }


async def _opted_out(session: AsyncSession, drafts: Iterable[domain.Draft]) -> set[str]:
    """Keys of drafts whose dossier or contact has opted out (one query)."""
    wanted = {d.key: _opt_out_targets(d) for d in drafts}
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
    ``superseded``: never sent. Rows added earlier in the transaction are flushed first,
    so one queued by an earlier event of the same batch is covered too."""
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

    subscribe(runtime, apply, DOSSIER_LIFECYCLE, DOSSIER_SLA)
    follow(runtime, keep_keys, API_KEYS)
    return notifier
