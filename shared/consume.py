"""Registering a service's batch handlers on the broker.

Two ways to read a topic:
- ``subscribe``: the service's instances share the work in the service's group; each
  event is applied once per service database (inbox).
- ``follow``: every instance reads the topic whole, for broadcast topics (calendar,
  catalogue) whose events change what each process holds in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from faststream.kafka.annotations import KafkaMessage

from shared.broker import batch_subscriber, group_id
from shared.deadletter import records_of
from shared.inbox import Apply
from shared.service import ServiceRuntime
from shared.topics import TopicSpec

INSTANCE = uuid.uuid4().hex[:12]
"""This process's identity among the instances of its service (new at every start)."""


def subscribe(
    runtime: ServiceRuntime,
    apply: Apply,
    *topics: TopicSpec,
    after_commit: Callable[[], None] | None = None,
) -> None:
    """Consume ``topics`` in batches, applying fresh events idempotently with ``apply``;
    ``after_commit`` runs after each batch's commit (a worker to wake for what it queued:
    woken before, it would look while the rows are not visible yet).

    The handler takes the raw records (not decoded bodies) so that one bad record is
    dead-lettered alone instead of failing its whole batch.
    """
    consumer = runtime.consumer(apply, after_commit=after_commit)

    @batch_subscriber(runtime.broker, runtime.settings, runtime.name, *topics)
    async def handle(message: KafkaMessage) -> None:
        await consumer.consume(records_of(message))


def follow(runtime: ServiceRuntime, apply: Apply, *topics: TopicSpec) -> None:
    """Every instance of the service reads ``topics`` whole and applies them with ``apply``.

    Invariants: each process reads in a group of its own (so no instance misses an event
    that a sibling took) from the earliest offset (so a restarted process catches up); no
    inbox (siblings share the database, and each must apply every event to its own
    memory), so ``apply`` must be idempotent: the latest state wins. Failures are handled
    as ``subscribe``'s are: an operational one makes the batch come again (a key
    revocation is never skipped), a record bad on its own is dead-lettered.
    """
    consumer = runtime.consumer(apply, inbox=False)

    @batch_subscriber(
        runtime.broker,
        runtime.settings,
        runtime.name,
        *topics,
        group=f"{group_id(runtime.name)}-{INSTANCE}",
    )
    async def handle(message: KafkaMessage) -> None:
        await consumer.consume(records_of(message))
