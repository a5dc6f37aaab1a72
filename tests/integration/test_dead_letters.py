"""On the real local broker: an operational failure makes a consumer wait at its record
(never the dead-letter topic), and a record bad on its own is dead-lettered, listed, and
replayed once fixed, exactly once."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy import exc as sa_exc
from sqlmodel.ext.asyncio.session import AsyncSession

from motcua.dlq_cli import read_dead_letters, replay_dead_letters
from shared.broker import ensure_topics
from shared.consume import follow, subscribe
from shared.deadletter import HEADER_ATTEMPTS, HEADER_REASON, HEADER_SERVICE
from shared.events import Envelope
from shared.localbroker import LocalBroker
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.topics import CALENDAR, DOSSIER_LIFECYCLE
from tests.factories import received_envelope

pytestmark = pytest.mark.integration


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as local:
        asyncio.run(ensure_topics(local.bootstrap_servers))
        yield local


def settings(tmp_path: Path, broker: LocalBroker) -> Settings:
    return Settings(
        var_dir=tmp_path,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_create_topics=False,
        retry_attempts=3,
        retry_backoff_seconds=0.05,
        retry_max_backoff_seconds=0.3,
    )


@pytest.fixture
async def runtime(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[ServiceRuntime]:
    service = ServiceRuntime("routing", settings(tmp_path, broker), tables=[], publishes=[])
    yield service
    await service.stop()


async def started(service: ServiceRuntime) -> None:
    await service.start()
    await until(lambda: service.broker_connected, "broker connected")


async def publish(broker: LocalBroker, events: Sequence[Envelope], topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic, event.encode(), key=event.key)
    finally:
        await producer.stop()


async def until(check: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(0.05)


def locked() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("UPDATE clock", {}, sqlite3.OperationalError("locked"))


def dead_lettered(topic: str) -> float:
    return REGISTRY.get_sample_value("motcua_dead_letters_total", {"topic": topic}) or 0.0


def transient_failures(service: str, topic: str) -> float:
    value = REGISTRY.get_sample_value(
        "motcua_consumer_transient_failures_total", {"service": service, "topic": topic}
    )
    return value or 0.0


@pytest.mark.parametrize("how", ["subscribe", "follow"])
async def test_a_consumer_waits_out_an_operational_failure_and_dead_letters_nothing(
    runtime: ServiceRuntime, broker: LocalBroker, how: str
) -> None:
    topic = DOSSIER_LIFECYCLE if how == "subscribe" else CALENDAR
    away = True
    applied: list[str] = []

    async def apply(_session: AsyncSession, events: Sequence[Envelope]) -> None:
        if away:
            raise locked()
        applied.extend(str(e.event_id) for e in events)

    (subscribe if how == "subscribe" else follow)(runtime, apply, topic)
    before = transient_failures("routing", topic.name)
    await started(runtime)
    events = [received_envelope("000.00.00.H56-261202-0001") for _ in range(5)]  # one key
    await publish(broker, events, topic.name)

    await until(lambda: transient_failures("routing", topic.name) >= before + 3, "retries")
    report = await runtime.readiness()
    [stall] = report["consumers"]
    assert stall.startswith(f"{topic.name}: OperationalError since ")
    assert applied == []

    away = False
    await until(lambda: len(applied) >= len(events), "applied after the database is back")
    await until(lambda: not runtime.stalls.report(), "stall cleared")
    assert (await runtime.readiness())["consumers"] == "ok"
    assert applied == [str(e.event_id) for e in events]  # each once, in order
    assert await read_dead_letters(broker.bootstrap_servers, topic) == []


async def test_a_bad_record_is_dead_lettered_then_replayed_once_after_the_fix(
    runtime: ServiceRuntime, broker: LocalBroker, tmp_path: Path
) -> None:
    fixed = False
    applied: list[str] = []
    poison = received_envelope("000.00.00.H56-261202-0666")

    async def apply(_session: AsyncSession, events: Sequence[Envelope]) -> None:
        # all or nothing, like the transaction around it
        if not fixed and any(e.dossier_code == poison.dossier_code for e in events):
            msg = "no office answers for this procedure"
            raise ValueError(msg)
        applied.extend(e.dossier_code or "" for e in events)

    subscribe(runtime, apply, DOSSIER_LIFECYCLE)
    before = dead_lettered(DOSSIER_LIFECYCLE.name)
    await started(runtime)
    good = [received_envelope(f"000.00.00.H56-261202-{i:04d}") for i in range(3)]
    await publish(broker, [good[0], poison, *good[1:]], DOSSIER_LIFECYCLE.name)
    await until(lambda: len(applied) == 3, "the good records applied")
    await until(
        lambda: dead_lettered(DOSSIER_LIFECYCLE.name) == before + 1, "the bad one dead-lettered"
    )
    [letter] = await read_dead_letters(broker.bootstrap_servers, DOSSIER_LIFECYCLE)
    assert not letter.replayed
    assert letter.headers[HEADER_SERVICE] == "routing"
    assert letter.headers[HEADER_ATTEMPTS] == "3"
    assert letter.headers[HEADER_REASON] == "ValueError: no office answers for this procedure"

    listed = motcua(broker, tmp_path, "dlq", "list", DOSSIER_LIFECYCLE.name)
    assert "1 dead letters, 1 not replayed" in listed
    assert f"dossier.received {poison.event_id} dossier {poison.dossier_code}" in listed
    assert "Trần" not in listed  # nothing personal
    assert "0987654321" not in listed

    fixed = True
    replayed = motcua(broker, tmp_path, "dlq", "replay", DOSSIER_LIFECYCLE.name)
    assert "1 dead letters published again" in replayed
    await until(lambda: poison.dossier_code in applied, "the replayed record applied")
    assert "0 dead letters published again" in motcua(
        broker, tmp_path, "dlq", "replay", DOSSIER_LIFECYCLE.name
    )
    # replaying the same dead letter again on purpose changes nothing: the inbox has it
    again = await replay_dead_letters(
        broker.bootstrap_servers, DOSSIER_LIFECYCLE, from_offset=0, idempotence=False
    )
    assert len(again) == 1
    await publish(broker, [received_envelope("000.00.00.H56-261202-0999")], DOSSIER_LIFECYCLE.name)
    await until(lambda: "000.00.00.H56-261202-0999" in applied, "a later record applied")
    assert sorted(applied) == sorted(
        [*(g.dossier_code or "" for g in good), poison.dossier_code, "000.00.00.H56-261202-0999"]
    )
    [letter] = await read_dead_letters(broker.bootstrap_servers, DOSSIER_LIFECYCLE)
    assert letter.replayed


def motcua(broker: LocalBroker, var_dir: Path, *args: str) -> str:
    """Run the command line as a user would, against the test's broker."""
    env = {
        **os.environ,
        "MOTCUA_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "MOTCUA_VAR_DIR": str(var_dir),
    }
    done = subprocess.run(
        [sys.executable, "-m", "motcua.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
