"""Registering a service's batch handler on the broker."""

from __future__ import annotations

from faststream.kafka.annotations import KafkaMessage

from shared.broker import batch_subscriber
from shared.deadletter import records_of
from shared.inbox import Apply
from shared.service import ServiceRuntime
from shared.topics import TopicSpec


def subscribe(runtime: ServiceRuntime, apply: Apply, *topics: TopicSpec) -> None:
    """Consume ``topics`` in batches, applying fresh events idempotently with ``apply``.

    The handler takes the raw records (not decoded bodies) so that one bad record is
    dead-lettered alone instead of failing its whole batch.
    """
    consumer = runtime.consumer(apply)

    @batch_subscriber(runtime.broker, runtime.settings, runtime.name, *topics)
    async def handle(message: KafkaMessage) -> None:
        await consumer.consume(records_of(message))
