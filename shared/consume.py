"""Registering a service's batch handlers on the broker.

Two ways to read a topic:
- ``subscribe``: the service's instances share the work in the service's group; each
  event is applied once per service database (inbox).
- ``follow``: every instance reads the topic whole, for broadcast topics (calendar,
  catalogue) whose events change what each process holds in memory.
"""

from __future__ import annotations

import logging
import uuid

from faststream.kafka.annotations import KafkaMessage

from shared.broker import batch_subscriber, group_id
from shared.deadletter import records_of
from shared.events import Envelope, UndecodableEvent, decode
from shared.inbox import Apply
from shared.service import ServiceRuntime
from shared.topics import TopicSpec

log = logging.getLogger(__name__)

INSTANCE = uuid.uuid4().hex[:12]
"""This process's identity among the instances of its service (new at every start)."""


def subscribe(runtime: ServiceRuntime, apply: Apply, *topics: TopicSpec) -> None:
    """Consume ``topics`` in batches, applying fresh events idempotently with ``apply``.

    The handler takes the raw records (not decoded bodies) so that one bad record is
    dead-lettered alone instead of failing its whole batch.
    """
    consumer = runtime.consumer(apply)

    @batch_subscriber(runtime.broker, runtime.settings, runtime.name, *topics)
    async def handle(message: KafkaMessage) -> None:
        await consumer.consume(records_of(message))


def follow(runtime: ServiceRuntime, apply: Apply, *topics: TopicSpec) -> None:
    """Every instance of the service reads ``topics`` whole and applies them with ``apply``.

    Invariants: each process reads in a group of its own (so no instance misses an event
    that a sibling took) from the earliest offset (so a restarted process catches up); no
    inbox (siblings share the database, and each must apply every event to its own
    memory), so ``apply`` must be idempotent: the latest state wins. A batch is applied in
    one transaction; an undecodable record is dead-lettered and skipped.
    """

    @batch_subscriber(
        runtime.broker,
        runtime.settings,
        runtime.name,
        *topics,
        group=f"{group_id(runtime.name)}-{INSTANCE}",
    )
    async def handle(message: KafkaMessage) -> None:
        envelopes: list[Envelope] = []
        for record in records_of(message):
            try:
                envelopes.append(decode(record.value or b""))
            except UndecodableEvent as bad:
                await runtime.dead_letters.send(record, f"UndecodableEvent: {bad}", attempts=1)
        if envelopes:
            async with runtime.db.transaction() as session:
                await apply(session, envelopes)
