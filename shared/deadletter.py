"""The dead-letter topics: where a record that fails on its own is kept, and why.

A record goes to ``<topic>.dlq`` only when it is bad by itself, repeatably: it cannot
be decoded, or applying it alone failed with an error that is not operational
(``shared.faults.is_transient``) on every attempt. It keeps its original key and value;
headers say which service gave up, why, after how many attempts, and where it came
from, so ``motcua dlq replay`` can put it back on its topic once the cause is fixed.
An operational failure never dead-letters (``shared.retry``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

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
