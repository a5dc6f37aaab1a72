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
from sqlmodel import col, select
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
        """Store the messages events ask for (inside the inbox transaction)."""
        now = datetime.now(UTC)
        for envelope in events:
            if envelope.type != DossierReceived.event_type or envelope.dossier_code is None:
                continue
            for draft in domain.receipt_drafts(
                envelope.dossier_code, envelope.body(DossierReceived)
            ):
                if await session.get(store.Message, draft.key) is not None:
                    continue
                session.add(
                    store.Message(
                        key=draft.key,
                        dossier_code=draft.dossier_code,
                        trigger=draft.trigger.value,
                        channel=draft.channel.value,
                        recipient=draft.recipient,
                        subject=draft.subject,
                        body=draft.body,
                        status="queued",
                        created_at=now,
                    )
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
        """Send one round of queued messages; return how many were attempted."""
        async with self.runtime.db.sessions() as session:
            queued = (
                await session.exec(
                    select(store.Message)
                    .where(store.Message.status == "queued")
                    .order_by(col(store.Message.created_at))
                    .limit(_DISPATCH_BATCH)
                )
            ).all()
        for message in queued:
            await self._deliver(message)
        return len(queued)

    async def _deliver(self, message: store.Message) -> None:
        outgoing = Outgoing(
            key=message.key,
            channel=message.channel,
            recipient=message.recipient,
            subject=message.subject,
            body=message.body,
        )
        status, error = "sent", None
        try:
            await self.sink.send(outgoing)
        except DeliveryError as exc:
            error = str(exc)[:300]
            gave_up = not exc.temporary or message.attempts + 1 >= MAX_ATTEMPTS
            status = "failed" if gave_up else "queued"
        async with self.runtime.db.transaction() as session:
            row = await session.get(store.Message, message.key)
            if row is None:
                return
            row.status = status
            row.attempts += 1
            row.last_error = error
            row.sent_at = datetime.now(UTC) if status == "sent" else None
            session.add(row)
        NOTIFICATIONS.labels(message.channel, status).inc()

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
