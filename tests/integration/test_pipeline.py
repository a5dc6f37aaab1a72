"""End to end on the real broker: nothing lost, nothing doubled, whatever fails."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from motcua.stack import Stack
from shared.deadletter import HEADER_REASON, HEADER_SERVICE, HEADER_SOURCE_TOPIC
from shared.settings import ServiceName
from shared.topics import ALL_TOPICS, DOSSIER_CONTACTS, DOSSIER_LIFECYCLE, DOSSIER_ROUTING
from tests.factories import api_key_header, dossier_body
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
    await applicant_stays_with_intake_and_notify(stack, probe)


MARKED_APPLICANT = {
    "name": "Hoàng Thị Mẫu Đơn",
    "phone": "0987001122",
    "email": "mau.don.h7q@example.vn",
    "id_number": "079203004005",
}
"""An applicant whose every detail is looked for where it must not be."""
MARKS = (
    "Hoàng Thị Mẫu Đơn".encode(),
    b"Hoang Thi Mau Don",  # as an SMS without diacritics would write it
    b"987001122",  # 0987001122 and +84987001122 alike
    b"mau.don.h7q",
    b"079203004005",
)


def marked(data: bytes) -> list[bytes]:
    """The marks of ``MARKED_APPLICANT`` found in ``data``."""
    return [mark for mark in MARKS if mark in data]


async def every_record(bootstrap: str, topic: str) -> list[bytes]:
    """Key, value and headers of every record of ``topic`` up to its end, as bytes."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    out: list[bytes] = []
    try:
        await consumer.topics()  # metadata of every topic
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return out
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = asyncio.get_running_loop().time() + 30
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert asyncio.get_running_loop().time() < deadline, f"{topic} not read to its end"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(
                    b"".join([r.key or b"", r.value or b"", *(v for _, v in r.headers)])
                    for r in records
                )
    finally:
        await consumer.stop()
    return out


async def applicant_stays_with_intake_and_notify(stack: Stack, probe: Probe) -> None:
    """After an end-to-end run, an applicant's name, phone, e-mail and id number are in
    intake's and notify's own tables and on the topic only notify reads
    (``motcua.dossier.contacts``), and nowhere else: not in any other topic's records
    (dead letters included), any process's log, routing's or sla's database, or any
    service's metrics."""
    assert stack.admin_key is not None
    async with httpx.AsyncClient(
        base_url=stack.services["intake"].url, timeout=30, headers=api_key_header(stack.admin_key)
    ) as client:
        answer = await client.post(
            "/api/v1/dossiers", json=dossier_body(applicant=MARKED_APPLICANT)
        )
        assert answer.status_code == 201, answer.text
        code = answer.json()["code"]
        refused = await client.post(  # a bad request naming the applicant: 422, not logged
            "/api/v1/dossiers",
            json=dossier_body(applicant={**MARKED_APPLICANT, "phone": "not-a-phone"}),
        )
        assert refused.status_code == 422
        assert (await client.get(f"/api/v1/dossiers/{code}/slip")).status_code == 200
    assert (await probe.wait_for_all(201))["notified"] >= 201
    sent = await probe.rows(
        "notify", f"SELECT recipient FROM message WHERE dossier_code = '{code}'"
    )
    assert {recipient for (recipient,) in sent} == {
        MARKED_APPLICANT["phone"],
        MARKED_APPLICANT["email"],
    }

    for topic in (t for spec in ALL_TOPICS for t in (spec.name, spec.dead_letter)):
        records = await every_record(stack.bootstrap_servers, topic)
        found = [m for record in records for m in marked(record)]
        if topic in (DOSSIER_LIFECYCLE.name, DOSSIER_ROUTING.name):
            assert len(records) >= 201, topic  # read whole: every dossier's events
        if topic == DOSSIER_CONTACTS.name:  # where they belong: the scan sees them
            assert b"987001122" in found
            assert b"mau.don.h7q" in found
            assert b"079203004005" not in found  # the id number stays in intake
        else:
            assert found == [], topic
    logs = sorted((stack.var_dir / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"intake", "routing", "sla", "notify"}
    for log_file in logs:
        assert marked(log_file.read_bytes()) == [], log_file.name
    if not stack.env.get("MOTCUA_DATABASE_URL"):  # SQLite: one file (and its WAL) each
        for service in ("routing", "sla"):
            for path in stack.var_dir.glob(f"{service}.db*"):
                assert marked(path.read_bytes()) == [], path.name
        intake_files = b"".join(p.read_bytes() for p in stack.var_dir.glob("intake.db*"))
        assert b"079203004005" in intake_files  # the scan sees what is there
    async with httpx.AsyncClient(timeout=30) as client:
        for name, service in stack.services.items():
            metrics = await client.get(f"{service.url}/metrics")
            assert metrics.status_code == 200
            assert marked(metrics.content) == [], name


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
    consumers = 4  # routing, sla, notify and portal each read the lifecycle topic
    dead = await read_topic(
        stack.bootstrap_servers,
        DOSSIER_LIFECYCLE.dead_letter,
        expect=DOSSIER_LIFECYCLE.partitions * consumers,
    )
    assert len(dead) == DOSSIER_LIFECYCLE.partitions * consumers
    assert {h[HEADER_SERVICE] for _, _, h in dead} == {"routing", "sla", "notify", "portal"}
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
        unsent = "SELECT topic, count(*) FROM outbox WHERE sent_at IS NULL GROUP BY topic"
        assert dict(await probe.rows("intake", unsent)) == {
            DOSSIER_LIFECYCLE.name: 40,
            DOSSIER_CONTACTS.name: 40,
        }
    finally:
        stack.broker.thaw()
    assert len(set(codes)) == 40
    assert await probe.wait_for_all(40, within=180) == exactly(40)
