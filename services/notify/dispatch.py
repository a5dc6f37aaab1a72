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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from prometheus_client import Counter

from services.notify import domain, store
from services.notify.channels import DeliveryError, FailoverSink, Outgoing
from services.notify.coalesce import Coalescer
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
_CHECK_AHEAD = 64
"""Most messages of one recipient's queue checked (and their lease renewed) together."""


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
        messages on a channel in due order. The checks right before the sends and the
        records of the outcomes that come while one such statement runs go together in the
        next (``coalesce``): a round runs a few statements, not two transactions a message.
        The round's lease is renewed until its last outcome is recorded. A database error on
        one batch does not stop the other messages; once they are done the round raises the
        first such error.
        """
        now = self.clock()
        await self.reconcile(now)
        claim = str(uuid.uuid4())
        claimed = await self._claim(now, claim)
        if not claimed:
            return 0
        round_ = _Round(
            claim=claim,
            html=await self._html_of(claimed),
            unsent={m.key for m in claimed},  # not handed to a sink yet
            checks=Coalescer(partial(self._check_batch, claim), _key, None),
            records=Coalescer(partial(self._record_batch, claim), _outcome_key, False),
        )
        lease = asyncio.create_task(self._hold_lease(claim))
        try:
            await asyncio.gather(*(self._send_queue(queue, round_) for queue in _queues(claimed)))
        finally:
            await round_.checks.close()
            await round_.records.close()
            lease.cancel()
            await asyncio.wait([lease])
            if round_.unsent:
                await self._release(round_.unsent, claim)
        if round_.errors:
            raise round_.errors[0]
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
        """Claim up to ``dispatch_batch`` due messages under ``claim`` (one committed
        ``UPDATE ... WHERE status = 'queued' RETURNING``); return them, in due order. During quiet
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
            return await store.claim_due(
                session, claim, now, channels, self.settings.dispatch_batch
            )

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

    async def _send_queue(self, queue: Sequence[store.Message], round_: _Round) -> None:
        """Send one recipient's messages on one channel, one after another, in order; a
        database error on one is kept in the round's errors and the next is tried.

        The next message's send does not wait for the previous one's outcome to be recorded
        (only for its send to return): the records go on meanwhile, together with the other
        queues' (``_record_batch``), and the queue ends when all are recorded.
        """
        recording: list[tuple[store.Message, asyncio.Task[None]]] = []
        try:
            for at, message in enumerate(queue):
                try:
                    sent = await self._dispatch(queue[at : at + _CHECK_AHEAD], round_)
                except Exception as exc:
                    self._database_error(message, exc, round_)
                    continue
                if sent is not None:
                    task = asyncio.create_task(self._record(message, sent, round_))
                    recording.append((message, task))
        finally:
            done = await asyncio.gather(*(t for _, t in recording), return_exceptions=True)
        for (message, _), result in zip(recording, done, strict=True):
            if isinstance(result, Exception):
                self._database_error(message, result, round_)

    def _database_error(self, message: store.Message, exc: Exception, round_: _Round) -> None:
        log.warning(
            "message %s: %s while checking or recording it; released at the end "
            "of the round if unsent, else settled by its lease",
            message.key,
            type(exc).__name__,
        )
        round_.errors.append(exc)

    async def _dispatch(
        self, ahead: Sequence[store.Message], round_: _Round
    ) -> tuple[tuple[str, str | None] | DeliveryError, datetime] | None:
        """Wait for a slot of the channel, check the claim of ``ahead[0]``, send it; return
        the outcome and when it came (``None``: not sent, the claim was lost or a report
        settled it). ``ahead``: the rest of its queue, checked with it."""
        message = ahead[0]
        async with self._slots[message.channel]:
            mine = await self._still_claimed(ahead, round_)
            round_.unsent.discard(message.key)
            if not mine:
                return None
            outcome = await self._send(message, round_.html.get(message.key))
        return outcome, self.clock()

    async def _still_claimed(self, ahead: Sequence[store.Message], round_: _Round) -> bool:
        """Before the send of ``ahead[0]``: true if its row is still ``sending`` under the
        round's claim, by a check that renewed its lease less than a third of the lease
        ago (by the injected clock).

        Without such a check, the rows of ``ahead`` (the rest of its queue) are checked
        and renewed together, with the other checks of the moment (``_check_batch``). A
        row so renewed stays under this claim for a whole lease (no other dispatcher may
        reconcile it before), so the answer holds for the sends of the next third of a
        lease: one recipient's messages, sent one after another, cost one check per
        ``_CHECK_AHEAD``, not one each.

        False when the lease had lapsed and another dispatcher reconciled the row (counted
        as a lost claim), or when a delivery report settled it first (the gateway has it
        from an earlier, interrupted send): either way it is not sent again.
        """
        message = ahead[0]
        now = self.clock()
        fresh = now - timedelta(seconds=self.settings.sending_lease_seconds / 3)
        known = round_.checked.get(message.key)
        if known is None or known[1] <= fresh:
            answers = await asyncio.gather(*(round_.checks.submit(m) for m in ahead))
            for checked, answer in zip(ahead, answers, strict=True):
                round_.checked[checked.key] = (answer, now)
        status = round_.checked[message.key][0]
        if status is None:
            self._claim_lost(message, "before its send, which was skipped")
            return False
        return status == store.SENDING

    async def _check_batch(
        self, claim: str, messages: Sequence[store.Message]
    ) -> dict[str, str | None]:
        """One transaction: renew these rows' lease, return the status of those still
        under ``claim``."""
        async with self.db.transaction() as session:
            found = await store.renew_claimed(
                session, [m.key for m in messages], claim, self.clock()
            )
        return dict(found)

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
        sent: tuple[tuple[str, str | None] | DeliveryError, datetime],
        round_: _Round,
    ) -> None:
        """Record one send's outcome (with the other outcomes of the moment, in one
        transaction: ``_record_batch``), only while the row is still under the round's
        claim (else: a lost claim, counted and logged; the outcome is dropped, the other
        dispatcher's decision stands).

        Precedence: a delivery report that came while the message was ``sending`` wins over
        the send's outcome. The gateway reports only on a message it accepted, and reports
        after accepting it, so its word is the later truth: recording the send then adds
        the attempt (and, on success, ``sent_at``, the sink and the provider id) but keeps
        the report's status, ``delivered_at`` and reason. A ``delivered`` message is not
        queued again because our side of the request timed out; a ``failed`` report is not
        turned back into ``sent``.
        """
        outcome, now = sent
        attempts = message.attempts + 1
        if isinstance(outcome, DeliveryError):
            gave_up = not outcome.temporary or attempts >= self.settings.max_attempts
            delay = domain.retry_delay(
                attempts, self.settings.backoff_seconds, self.settings.backoff_max_seconds
            )
            status = store.FAILED if gave_up else store.QUEUED
            counted = status if gave_up else "retry"
            row = store.Outcome(
                message.key,
                status,
                attempts,
                error=str(outcome)[:300],
                next_attempt_at=now + delay,
            )
        else:
            sink, provider_id = outcome
            counted = store.SENT
            row = store.Outcome(
                message.key,
                store.SENT,
                attempts,
                sent_at=now,
                sink=sink,
                provider_id=provider_id,
            )
        if not await round_.records.submit(row):
            self._claim_lost(message, f"before its outcome ({counted}) was recorded")
            return
        NOTIFICATIONS.labels(message.channel, counted).inc()

    async def _record_batch(self, claim: str, outcomes: Sequence[store.Outcome]) -> dict[str, bool]:
        """One transaction: record these outcomes on the rows still under ``claim``; true
        for each recorded."""
        async with self.db.transaction() as session:
            mine = await store.record_outcomes(session, claim, outcomes)
        return {o.key: o.key in mine for o in outcomes}

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


@dataclass
class _Round:
    """One dispatch round: its claim, the claimed e-mails' HTML, the keys not yet handed to
    a sink, the database errors met, and the batched checks and records."""

    claim: str
    html: Mapping[str, str]
    unsent: set[str]
    checks: Coalescer[str, store.Message, str | None]
    records: Coalescer[str, store.Outcome, bool]
    errors: list[Exception] = field(default_factory=list)
    checked: dict[str, tuple[str | None, datetime]] = field(default_factory=dict)
    """Each checked row's status under the claim (``None``: no longer under it) and when."""


def _key(message: store.Message) -> str:
    return message.key


def _outcome_key(outcome: store.Outcome) -> str:
    return outcome.key


def _queues(messages: Sequence[store.Message]) -> list[list[store.Message]]:
    """Claimed messages as one queue per channel and recipient, each in the given order."""
    queues: dict[tuple[str, str], list[store.Message]] = {}
    for message in messages:
        queues.setdefault((message.channel, message.recipient), []).append(message)
    return list(queues.values())
