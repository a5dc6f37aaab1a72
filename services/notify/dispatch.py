"""Notify's dispatcher: claim due messages, hold their lease, send them, record each
outcome, and reconcile the sends a stopped dispatcher left behind.

The rules it keeps (exactly once per key, leases, ``WHERE claim = <mine>``, precedence of
delivery reports, quiet hours) are stated at the top of ``services.notify.app``; every
statement it runs is a function of ``services.notify.store``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from prometheus_client import Counter

from services.notify import domain, store
from services.notify.channels import DeliveryError, FailoverSink, Outgoing
from services.notify.settings import NotifySettings
from shared.clock import Clock, utc_now
from shared.db import Database
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)

NOTIFICATIONS = Counter(
    "motcua_notifications_total", "Message send outcomes by channel.", ["channel", "status"]
)
CLAIMS_LOST = Counter(
    "motcua_notifications_claim_lost_total",
    "Messages a dispatcher no longer held when it came to send them or to record their "
    "outcome (its lease had lapsed and another dispatcher had settled them).",
    ["channel"],
)

_DISPATCH_IDLE_SECONDS = 0.2


class Dispatcher:
    """Sends the due messages of notify's database through the channels' sinks."""

    def __init__(
        self,
        db: Database,
        channels: Mapping[str, FailoverSink],
        settings: NotifySettings,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.channels = dict(channels)
        self.settings = settings
        self.clock = clock
        self._wake = Wakeup()
        self._slots = {name: asyncio.Semaphore(settings.send_concurrency) for name in channels}

    def wake(self) -> None:
        """Look for due messages now (a commit queued some)."""
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
        async with self.db.transaction() as session:
            for channel, sink in self.channels.items():
                await store.settle_lapsed(session, channel, expired, resend=sink.resend_safe)

    async def _claim(self, now: datetime, claim: str) -> list[store.Message]:
        """Claim up to ``dispatch_batch`` due messages under ``claim`` (a committed
        ``UPDATE ... WHERE status = 'queued'``); return them, in due order. During quiet
        hours an SMS channel that reaches citizens is left out."""
        channels = list(self.channels)
        if domain.in_quiet_hours(now, self.settings.quiet_start, self.settings.quiet_end):
            channels = [
                name
                for name, sink in self.channels.items()
                if name != domain.MessageChannel.SMS.value or not sink.reaches_citizen
            ]
        if not channels:
            return []
        async with self.db.transaction() as session:
            picked = await store.claim_due(
                session, claim, now, channels, self.settings.dispatch_batch
            )
        if not picked:
            return []
        async with self.db.sessions() as session:
            return await store.claimed(session, claim)

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
                async with self.db.transaction() as session:
                    await store.renew_lease(session, claim, self.clock())
            except Exception as exc:
                log.warning("sending lease not renewed: %s", type(exc).__name__)

    async def _html_of(self, messages: Sequence[store.Message]) -> dict[str, str]:
        """The HTML alternatives of the claimed e-mails that have one (one query)."""
        keys = [m.key for m in messages if m.channel == domain.MessageChannel.EMAIL.value]
        if not keys:
            return {}
        async with self.db.sessions() as session:
            return await store.html_of(session, keys)

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
        async with self.db.transaction() as session:
            status = await store.renew_one(session, message.key, claim, self.clock())
        if status is None:
            self._claim_lost(message, "before its send, which was skipped")
            return False
        return status == store.SENDING

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
        async with self.db.transaction() as session:
            if isinstance(outcome, DeliveryError):
                gave_up = not outcome.temporary or attempts >= self.settings.max_attempts
                delay = domain.retry_delay(
                    attempts, self.settings.backoff_seconds, self.settings.backoff_max_seconds
                )
                status = store.FAILED if gave_up else store.QUEUED
                counted = status if gave_up else "retry"
                mine = await store.record_failure(
                    session,
                    message.key,
                    claim,
                    attempts=attempts,
                    status=status,
                    error=str(outcome)[:300],
                    next_attempt_at=now + delay,
                )
            else:
                sink, provider_id = outcome
                counted = store.SENT
                mine = await store.record_sent(
                    session,
                    message.key,
                    claim,
                    attempts=attempts,
                    sent_at=now,
                    sink=sink,
                    provider_id=provider_id,
                )
        if not mine:
            self._claim_lost(message, f"before its outcome ({counted}) was recorded")
            return
        NOTIFICATIONS.labels(message.channel, counted).inc()

    async def _release(self, keys: Iterable[str], claim: str) -> None:
        """Put rows of ``claim`` never handed to a sink back to ``queued`` (best effort:
        if the database fails here, their lease settles them)."""
        try:
            async with self.db.transaction() as session:
                await store.release(session, list(keys), claim)
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
        async with self.db.transaction() as session:
            return await store.take_report(
                session, key, delivered=delivered, reason=reason, now=now
            )


def _queues(messages: Sequence[store.Message]) -> list[list[store.Message]]:
    """Claimed messages as one queue per channel and recipient, each in the given order."""
    queues: dict[tuple[str, str], list[store.Message]] = {}
    for message in messages:
        queues.setdefault((message.channel, message.recipient), []).append(message)
    return list(queues.values())
