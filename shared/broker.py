"""Broker plumbing: the FastStream Kafka broker every service builds the same way.

- offsets are committed after the handler returned, so after its database commit;
  a failing handler goes through ``shared.retry.RetryTransient`` (an operational
  failure reads the batch again, for as long as it takes); an exception that still
  escapes is not committed (``AckPolicy.NACK_ON_ERROR``: the batch comes again);
- each service consumes in its own group (``motcua-<service>``), from the earliest
  offset when the group is new, in batches;
- producer idempotence is a setting (the local broker rejects it);
- topics are created with their partition counts by ``ensure_topics`` (when the
  settings allow), never auto-created with one partition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy
from prometheus_client import REGISTRY

from shared.deadletter import DeadLetters
from shared.kafka_security import broker_security
from shared.retry import RetryTransient, Stalls
from shared.settings import Settings
from shared.topics import ALL_TOPICS, DEAD_LETTER_PARTITIONS, TopicSpec

log = logging.getLogger(__name__)


def group_id(service: str) -> str:
    """The consumer group of a service: all its instances share the work."""
    return f"motcua-{service}"


def make_broker(
    settings: Settings, service: str, dead_letters: DeadLetters, stalls: Stalls
) -> KafkaBroker:
    """The broker of one service, with the metrics and retry middlewares."""
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"motcua-{service}",
        security=broker_security(settings),
        enable_idempotence=settings.kafka_idempotence,
        acks="all",
        request_timeout_ms=15_000,
        allow_auto_create_topics=False,
        graceful_timeout=15.0,
        middlewares=[
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=service),
            RetryTransient(
                dead_letters,
                stalls,
                attempts=settings.retry_attempts,
                backoff_seconds=settings.retry_backoff_seconds,
                max_backoff_seconds=settings.retry_max_backoff_seconds,
            ),
        ],
        logger=logging.getLogger(f"motcua.{service}.broker"),
        description=f"motcua {service} service",
    )
    dead_letters.bind(broker)
    return broker


def batch_subscriber(
    broker: KafkaBroker,
    settings: Settings,
    service: str,
    *topics: TopicSpec,
    group: str | None = None,
) -> Callable[[Any], Any]:
    """Decorator registering a batch handler on ``topics`` in the service's group (or in
    ``group``)."""
    return broker.subscriber(
        *(t.name for t in topics),
        group_id=group or group_id(service),
        batch=True,
        max_records=settings.consumer_batch_max,
        batch_timeout_ms=settings.consumer_batch_timeout_ms,
        fetch_max_wait_ms=settings.consumer_fetch_wait_ms,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_session_timeout_ms // 3,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title=f"{'+'.join(t.name for t in topics)}:{service}:{'follow' if group else 'subscribe'}",
        description=f"{service} consumes " + ", ".join(t.name for t in topics),
    )


async def ensure_topics(bootstrap_servers: str, **client: Any) -> list[str]:
    """Create every topic of the contract and its dead-letter twin; return those created.
    ``client``: connection options (``shared.kafka_security.client_security``)."""
    wanted = [NewTopic(t.name, t.partitions, 1) for t in ALL_TOPICS] + [
        NewTopic(t.dead_letter, DEAD_LETTER_PARTITIONS, 1) for t in ALL_TOPICS
    ]
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000, **client
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.info("another process created the topics first")
        return [t.name for t in missing]
    finally:
        await admin.close()


class EndOffsetReader:
    """Asks the broker where each partition ends (a client of its own, in no group);
    ``client``: connection options (``shared.kafka_security.client_security``)."""

    def __init__(self, bootstrap_servers: str, service: str, **client: Any) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client = client
        self._client_id = f"motcua-{service}-offsets"
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Connect (raises while the broker is away)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            enable_auto_commit=False,
            request_timeout_ms=15_000,
            **self._client,
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def stop(self) -> None:
        """Disconnect."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def end_offsets(
        self, partitions: Collection[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        """The offset the next record of each partition will get."""
        if self._consumer is None:
            msg = "end offsets asked before the broker was connected"
            raise ConnectionError(msg)
        ends = await self._consumer.end_offsets([TopicPartition(t, p) for t, p in partitions])
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
