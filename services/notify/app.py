"""Notify's wiring: store each message under its key, then a dispatcher sends it.

Exactly once per (dossier, trigger, channel): the message row is inserted in the
inbox transaction of the event that asked for it (a repeated event finds the key
taken); the dispatcher sends queued rows and marks them sent. A crash between send
and mark resends the same key, which a channel must absorb (the file sink rewrites
the same file).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import domain, store
from services.notify.channels import DeliveryError, FileSink, Outgoing, Sink
from shared.consume import subscribe
from shared.events import DossierReceived, Envelope
from shared.service import ServiceRuntime
from shared.settings import ServiceName, Settings
from shared.topics import DOSSIER_LIFECYCLE
from shared.wakeup import Wakeup

SERVICE: ServiceName = "notify"
log = logging.getLogger(__name__)

NOTIFICATIONS = Counter(
    "motcua_notifications_total", "Messages by channel and outcome.", ["channel", "status"]
)

_DISPATCH_BATCH = 200
_DISPATCH_IDLE_SECONDS = 0.2
MAX_ATTEMPTS = 5


class Notifier:
    """Notify's use cases."""

    def __init__(self, runtime: ServiceRuntime, sink: Sink) -> None:
        self.runtime = runtime
        self.sink = sink
        self._wake = Wakeup()

    async def apply(self, session: AsyncSession, events: Sequence[Envelope]) -> None:
        """Store the messages events ask for (inside the inbox transaction).

        A key already stored is skipped, so a message is queued once however often
        its event comes.
        """
        drafts = {
            draft.key: draft
            for envelope in events
            if envelope.type == DossierReceived.event_type and envelope.dossier_code
            for draft in domain.receipt_drafts(
                envelope.dossier_code, envelope.body(DossierReceived)
            )
        }
        if not drafts:
            return
        stored = set(
            (
                await session.exec(
                    select(store.Message.key).where(col(store.Message.key).in_(list(drafts)))
                )
            ).all()
        )
        now = datetime.now(UTC)
        session.add_all(
            store.Message(
                key=d.key,
                dossier_code=d.dossier_code,
                trigger=d.trigger.value,
                channel=d.channel.value,
                recipient=d.recipient,
                subject=d.subject,
                body=d.body,
                status="queued",
                created_at=now,
            )
            for key, d in drafts.items()
            if key not in stored
        )
        self._wake.set()

    async def dispatch_forever(self) -> None:
        """Send queued messages until cancelled."""
        while True:
            try:
                sent = await self.dispatch_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dispatch failed: %s", type(exc).__name__)
                sent = 0
            if sent < _DISPATCH_BATCH:
                await self._wake.sleep(_DISPATCH_IDLE_SECONDS)

    async def dispatch_round(self) -> int:
        """Send one round of queued messages; return how many were attempted.

        Every message of the round is sent, then all outcomes are recorded in one
        transaction. A crash in between resends the round under the same keys.
        """
        async with self.runtime.db.sessions() as session:
            queued = (
                await session.exec(
                    select(store.Message)
                    .where(store.Message.status == "queued")
                    .order_by(col(store.Message.created_at))
                    .limit(_DISPATCH_BATCH)
                )
            ).all()
        outcomes = [(message, await self._send(message)) for message in queued]
        if not outcomes:
            return 0
        now = datetime.now(UTC)
        async with self.runtime.db.transaction() as session:
            sent = [m.key for m, error in outcomes if error is None]
            if sent:
                await session.exec(
                    update(store.Message)
                    .where(col(store.Message.key).in_(sent))
                    .values(
                        status="sent",
                        sent_at=now,
                        attempts=store.Message.attempts + 1,
                        last_error=None,
                    )
                )
            for message, error in outcomes:
                if error is not None:
                    gave_up = not error.temporary or message.attempts + 1 >= MAX_ATTEMPTS
                    await session.exec(
                        update(store.Message)
                        .where(col(store.Message.key) == message.key)
                        .values(
                            status="failed" if gave_up else "queued",
                            attempts=store.Message.attempts + 1,
                            last_error=str(error)[:300],
                        )
                    )
        for message, error in outcomes:
            status = "sent" if error is None else ("failed" if not error.temporary else "retry")
            NOTIFICATIONS.labels(message.channel, status).inc()
        return len(outcomes)

    async def _send(self, message: store.Message) -> DeliveryError | None:
        outgoing = Outgoing(
            key=message.key,
            channel=message.channel,
            recipient=message.recipient,
            subject=message.subject,
            body=message.body,
        )
        try:
            await self.sink.send(outgoing)
        except DeliveryError as exc:
            return exc
        return None

    async def for_dossier(self, code: str) -> list[store.Message]:
        """Messages of one dossier, oldest first."""
        async with self.runtime.db.sessions() as session:
            rows = await session.exec(
                select(store.Message)
                .where(store.Message.dossier_code == code)
                .order_by(col(store.Message.created_at))
            )
            return list(rows.all())


def build(settings: Settings) -> Notifier:
    """Notify's runtime, use cases, subscriber; the development file sink."""
    runtime = ServiceRuntime(SERVICE, settings, tables=store.TABLES, publishes=[])
    notifier = Notifier(runtime, FileSink(settings.var_dir / "messages"))
    subscribe(runtime, notifier.apply, DOSSIER_LIFECYCLE)
    return notifier
