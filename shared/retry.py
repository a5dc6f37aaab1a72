"""What a consumer does when the world is away: wait at the record, however long.

One broker middleware for every subscriber of a service:
- a handler that raised an operational failure (``shared.faults.is_transient``: the
  database restarting, a file locked past the busy timeout, a full disk, the broker
  timing out) makes the consumer seek back to the first record of the batch
  (``NackMessage``) after a capped exponential backoff; the batch comes again, for as
  long as it takes. Nothing is committed past it and nothing is dead-lettered, so no
  event is skipped and per-partition order holds;
- while a subscription is retrying, ``Stalls`` says so: ``/health/ready`` answers 503
  naming the topic, the failure's type and since when, and
  ``motcua_consumer_transient_failures_total`` counts each failed attempt;
- any other exception reaching the middleware is a bug outside the per-record isolation
  of ``shared.inbox`` (which dead-letters bad records itself): it is retried
  ``attempts`` times, then the batch's records are dead-lettered (the last line, so a
  partition is never blocked by a bug for ever); if even that fails, the batch comes
  again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faststream import BaseMiddleware
from faststream.exceptions import NackMessage
from faststream.message import StreamMessage

from shared.clock import utc_now
from shared.deadletter import DeadLetters, describe, records_of
from shared.faults import is_transient
from shared.metrics import CONSUMER_STALLED, TRANSIENT_FAILURES

log = logging.getLogger(__name__)


def backoff(failures: int, first: float, cap: float) -> float:
    """The wait after ``failures`` consecutive failures: ``first`` doubled each time, at
    most ``cap``."""
    return min(cap, first * 2.0 ** min(max(failures - 1, 0), 30))


@dataclass
class Stall:
    """A subscription retrying an operational failure."""

    since: datetime
    failures: int
    reason: str
    last: float
    """``time.monotonic()`` of the latest failed attempt."""


class Stalls:
    """The subscriptions of one service that are retrying now, by their topics.

    A stall ends when its topics get through, or when no attempt has failed for
    ``stale_after`` seconds (longer than any backoff: the records went to another
    instance of the service in a rebalance, and this one has nothing left to retry).
    """

    def __init__(self, service: str, *, stale_after: float) -> None:
        self._service = service
        self._stale_after = stale_after
        self._stalls: dict[str, Stall] = {}

    def failed(self, topics: str, exc: BaseException) -> int:
        """Record one more failed attempt on ``topics``; return the consecutive count."""
        stall = self._stalls.get(topics)
        if stall is None:
            stall = self._stalls[topics] = Stall(utc_now(), 0, type(exc).__name__, 0.0)
        stall.failures += 1
        stall.reason = type(exc).__name__
        stall.last = time.monotonic()
        TRANSIENT_FAILURES.labels(self._service, topics).inc()
        CONSUMER_STALLED.labels(self._service).set(len(self._stalls))
        return stall.failures

    def cleared(self, topics: str) -> None:
        """``topics`` got through: the stall, if any, is over."""
        if self._stalls.pop(topics, None) is not None:
            log.info("%s: consuming %s again", self._service, topics)
            CONSUMER_STALLED.labels(self._service).set(len(self._stalls))

    def report(self) -> list[str]:
        """One line per retrying subscription (no data: topic, failure type, since when)."""
        now = time.monotonic()
        for topics in [t for t, s in self._stalls.items() if now - s.last > self._stale_after]:
            self.cleared(topics)
        return [
            f"{topics}: {s.reason} since {s.since.isoformat(timespec='seconds')}, "
            f"{s.failures} attempts"
            for topics, s in sorted(self._stalls.items())
        ]


class RetryTransient:
    """Factory of the middleware, configured once per service and given to its broker."""

    def __init__(
        self,
        dead_letters: DeadLetters,
        stalls: Stalls,
        *,
        attempts: int,
        backoff_seconds: float,
        max_backoff_seconds: float,
    ) -> None:
        self.dead_letters = dead_letters
        self.stalls = stalls
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds

    def __call__(self, msg: Any, /, *, context: Any) -> _RetryTransientMiddleware:
        return _RetryTransientMiddleware(msg, context=context, policy=self)


class _RetryTransientMiddleware(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: Any, policy: RetryTransient) -> None:
        super().__init__(msg, context=context)
        self._policy = policy

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        policy = self._policy
        topics = ",".join(sorted({r.topic for r in records_of(msg)}))
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await call_next(msg)
            except NackMessage:
                raise
            except Exception as exc:
                if is_transient(exc):
                    await self._wait(topics, exc)
                    raise NackMessage from exc
                if attempt >= policy.attempts:
                    await self._dead_letter(msg, exc, attempt)
                    policy.stalls.cleared(topics)
                    return None
                log.warning("handler failed (attempt %d): %s", attempt, describe(exc))
                await asyncio.sleep(
                    backoff(attempt, policy.backoff_seconds, policy.max_backoff_seconds)
                )
            else:
                policy.stalls.cleared(topics)
                return result

    async def _wait(self, topics: str, exc: BaseException) -> None:
        policy = self._policy
        failures = policy.stalls.failed(topics, exc)
        delay = backoff(failures, max(policy.backoff_seconds, 0.05), policy.max_backoff_seconds)
        log.warning(
            "%s: operational failure (%s), attempt %d; reading again from the same record "
            "in %.1f s",
            topics,
            describe(exc),
            failures,
            delay,
        )
        await asyncio.sleep(delay)

    async def _dead_letter(self, msg: StreamMessage[Any], exc: Exception, attempts: int) -> None:
        reason = describe(exc)
        try:
            for record in records_of(msg):
                await self._policy.dead_letters.send(record, reason, attempts=attempts)
        except Exception as dlq_exc:
            log.error(
                "dead-letter topic unreachable (%s); the batch will come again", describe(dlq_exc)
            )
            raise NackMessage from dlq_exc
