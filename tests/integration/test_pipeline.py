"""End to end on the real broker: nothing lost, nothing doubled, whatever fails."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from motcua.stack import Stack
from shared.deadletter import HEADER_REASON, HEADER_SERVICE, HEADER_SOURCE_TOPIC
from shared.settings import ServiceName
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING
from tests.integration.conftest import PostMany, Probe

pytestmark = pytest.mark.integration


def exactly(n: int) -> dict[str, int]:
    return {
        "received": n,
        "routed": n,
        "tracked": n,
        "notified": n,
        "messages": n,
        "message_files": n,
    }


async def read_topic(
    bootstrap: str, topic: str, *, expect: int, within: float = 30.0
) -> list[tuple[bytes | None, bytes, dict[str, str]]]:
    """Every record of a topic from the start (key, value, headers)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[tuple[bytes | None, bytes, dict[str, str]]] = []
    try:
        deadline = asyncio.get_running_loop().time() + within
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(
                    (r.key, r.value or b"", {k: v.decode() for k, v in r.headers})
                    for r in partition_records
                )
        # anything beyond the expected count would be a duplicate: give it a moment
        extra = await consumer.getmany(timeout_ms=1000)
        for partition_records in extra.values():
            records.extend(
                (r.key, r.value or b"", {k: v.decode() for k, v in r.headers})
                for r in partition_records
            )
    finally:
        await consumer.stop()
    return records


async def test_dossiers_posted_over_http_reach_every_end_once(
    stack: Stack, probe: Probe, post_dossiers: PostMany
) -> None:
    codes = await post_dossiers(200)
    assert len(set(codes)) == 200
    assert sorted(int(c.rsplit("-", 1)[1]) for c in codes) == list(range(1, 201))
    assert await probe.wait_for_all(200) == exactly(200)
    routed = await read_topic(stack.bootstrap_servers, DOSSIER_ROUTING.name, expect=200)
    assert sorted(k.decode() for k, _, _ in routed if k) == sorted(codes)


@pytest.mark.parametrize("victim", ["routing", "notify"])
async def test_a_service_killed_mid_run_loses_and_doubles_nothing(
    stack: Stack, probe: Probe, post_dossiers: PostMany, victim: ServiceName
) -> None:
    await post_dossiers(80)
    stack.kill_service(victim)  # SIGKILL: no shutdown hook, a batch may be half done
    await post_dossiers(120)
    stack.start_service(victim)
    assert await probe.wait_for_all(200, within=180) == exactly(200)
    if victim == "routing":
        decisions = await probe.scalar(
            "routing", "SELECT count(DISTINCT dossier_code) FROM assignment"
        )
        assert decisions == 200


async def test_undecodable_messages_are_dead_lettered_and_partitions_keep_flowing(
    stack: Stack, probe: Probe, post_dossiers: PostMany
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers)
    await producer.start()
    try:
        for partition in range(DOSSIER_LIFECYCLE.partitions):
            await producer.send_and_wait(
                DOSSIER_LIFECYCLE.name, b"\x00garbage", key=b"poison", partition=partition
            )
    finally:
        await producer.stop()
    await post_dossiers(30)
    assert await probe.wait_for_all(30) == exactly(30)
    consumers = 3  # routing, sla and notify each read the lifecycle topic
    dead = await read_topic(
        stack.bootstrap_servers,
        DOSSIER_LIFECYCLE.dead_letter,
        expect=DOSSIER_LIFECYCLE.partitions * consumers,
    )
    assert len(dead) == DOSSIER_LIFECYCLE.partitions * consumers
    assert {h[HEADER_SERVICE] for _, _, h in dead} == {"routing", "sla", "notify"}
    for key, value, headers in dead:
        assert key == b"poison"
        assert value == b"\x00garbage"
        assert headers[HEADER_SOURCE_TOPIC] == DOSSIER_LIFECYCLE.name
        assert headers[HEADER_REASON].startswith("UndecodableEvent")


async def test_counter_keeps_working_while_the_broker_is_frozen(
    stack: Stack, probe: Probe, post_dossiers: PostMany
) -> None:
    assert stack.broker is not None
    stack.broker.freeze()  # SIGSTOP: unreachable, memory kept
    try:
        codes = await post_dossiers(40)
        progress = await probe.progress()
        assert progress["received"] == 40
        await asyncio.sleep(2)  # the relay tries and fails meanwhile; nothing is lost
        unsent = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"
        assert await probe.scalar("intake", unsent) == 40
    finally:
        stack.broker.thaw()
    assert len(set(codes)) == 40
    assert await probe.wait_for_all(40, within=180) == exactly(40)
