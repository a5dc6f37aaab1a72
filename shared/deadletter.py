"""Retry with backoff, then the dead-letter topic: one broker middleware.

A batch whose handler raises is retried ``attempts`` times with exponential
backoff. If it still fails, every record of it is published to ``<topic>.dlq``
with its original key and value and headers saying why; then the offset is
committed, so a poison message never blocks its partition and is never lost.
If even the dead-letter topic cannot be written, the middleware raises
``NackMessage``: the consumer seeks back and the batch comes again later (the
backoff already spent bounds the loop).

The handlers themselves dead-letter single records they can tell are bad (an
undecodable message, a record that fails alone); this middleware is the last line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from faststream import BaseMiddleware
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage

from shared.metrics import DEAD_LETTERS

log = logging.getLogger(__name__)

HEADER_REASON = "x-dead-letter-reason"
HEADER_SOURCE_TOPIC = "x-source-topic"
HEADER_SOURCE_PARTITION = "x-source-partition"
HEADER_SOURCE_OFFSET = "x-source-offset"
HEADER_ATTEMPTS = "x-attempts"
HEADER_SERVICE = "x-service"

_MAX_REASON = 500


class RecordLike(Protocol):
    """What we read of a consumed Kafka record (aiokafka's ConsumerRecord has it)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def records_of(message: StreamMessage[Any]) -> Sequence[RecordLike]:
    """The Kafka records behind a consumed message (one, or a batch)."""
    raw = message.raw_message
    return tuple(raw) if isinstance(raw, tuple | list) else (raw,)


class DeadLetters:
    """Publishes records to their dead-letter topic; bound to a broker after it is built."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._broker: KafkaBroker | None = None

    def bind(self, broker: KafkaBroker) -> None:
        """Use this broker to publish (the broker takes our middleware at construction)."""
        self._broker = broker

    async def send(self, record: RecordLike, reason: str, *, attempts: int) -> None:
        """Publish one record to ``<its topic>.dlq`` and wait for the broker's confirmation.

        The reason names what failed (exception type and message); callers keep personal
        data out of it.
        """
        if self._broker is None:
            msg = "DeadLetters used before bind()"
            raise RuntimeError(msg)
        await self._broker.publish(
            record.value or b"",
            f"{record.topic}.dlq",
            key=record.key,
            headers={
                HEADER_REASON: reason[:_MAX_REASON],
                HEADER_SOURCE_TOPIC: record.topic,
                HEADER_SOURCE_PARTITION: str(record.partition),
                HEADER_SOURCE_OFFSET: str(record.offset),
                HEADER_ATTEMPTS: str(attempts),
                HEADER_SERVICE: self._service,
            },
        )
        DEAD_LETTERS.labels(record.topic).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            reason[:_MAX_REASON],
        )


def describe(exc: BaseException) -> str:
    """A short reason for a header: the exception's type and first line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RetryThenDeadLetter:
    """Factory of the middleware, configured once and given to the broker."""

    def __init__(self, dead_letters: DeadLetters, *, attempts: int, backoff_seconds: float) -> None:
        self.dead_letters = dead_letters
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds

    def __call__(self, msg: Any, /, *, context: Any) -> _RetryThenDeadLetterMiddleware:
        return _RetryThenDeadLetterMiddleware(msg, context=context, policy=self)


class _RetryThenDeadLetterMiddleware(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: Any, policy: RetryThenDeadLetter) -> None:
        super().__init__(msg, context=context)
        self._policy = policy

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        policy = self._policy
        for attempt in range(1, policy.attempts + 1):
            try:
                return await call_next(msg)
            except NackMessage:
                raise
            except Exception as exc:
                if attempt == policy.attempts:
                    await self._dead_letter(msg, exc, attempt)
                    return None
                log.warning("handler failed (attempt %d): %s", attempt, describe(exc))
                await asyncio.sleep(policy.backoff_seconds * 2 ** (attempt - 1))
        return None

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
