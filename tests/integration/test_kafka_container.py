"""The same pipeline hop against Apache Kafka in a container (testcontainers).

Runs where a Docker daemon answers; skipped with the reason elsewhere (no Docker
engine runs on the development and CI machines of this project).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.broker import ensure_topics
from shared.topics import DOSSIER_LIFECYCLE
from tests.factories import received_envelope

# testcontainers' KafkaContainer drives Confluent's packaging of Apache Kafka (its start
# script and KRaft settings are written for it; it refuses tags below 7.0 for KRaft).
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"


def docker_available() -> str | None:
    """``None`` when a Docker daemon answers, else why not."""
    try:
        import docker  # noqa: PLC0415

        docker.from_env().ping()
    except Exception as exc:
        return f"no Docker daemon answers ({type(exc).__name__})"
    return None


@pytest.fixture(scope="module")
def kafka_bootstrap() -> Iterator[str]:
    reason = docker_available()
    if reason:
        pytest.skip(f"testcontainers with {KAFKA_IMAGE}: {reason}")
    from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415

    with KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


async def test_keyed_events_round_trip_through_apache_kafka(kafka_bootstrap: str) -> None:
    await ensure_topics(kafka_bootstrap)
    events = [received_envelope() for _ in range(20)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        await asyncio.gather(
            *[producer.send_and_wait(DOSSIER_LIFECYCLE.name, e.encode(), key=e.key) for e in events]
        )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        DOSSIER_LIFECYCLE.name,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id="motcua-test",
    )
    await consumer.start()
    seen: dict[bytes, int] = {}
    try:
        while len(seen) < len(events):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    assert record.key is not None
                    seen[record.key] = record.partition
    finally:
        await consumer.stop()
    assert set(seen) == {e.key for e in events}
