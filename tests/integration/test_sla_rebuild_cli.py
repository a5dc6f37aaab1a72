"""``motcua sla rebuild`` against the real local broker: read from the topics, in one
process or in several side by side (each its share of the partitions), it makes the
same tables and outbox, and publishes nothing the sla topic already carries."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from motcua.sla_cli import TopicStream, split
from shared.broker import ensure_topics
from shared.events import Channel, ClockStarted, DossierAction, Envelope, SlaFinished
from shared.localbroker import LocalBroker
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_SLA
from tests.component.test_sla_due_times import routed
from tests.component.test_sla_tracker import action, received, vn

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CODES = [f"000.00.00.H56-260601-{i:04d}" for i in range(1, 31)]
RESOLVED = CODES[::3]
ANNOUNCED = CODES[:6]
"""Dossiers whose clock start (and, for the resolved, final class) the sla topic has."""


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as local:
        asyncio.run(ensure_topics(local.bootstrap_servers))
        yield local


def facts() -> list[tuple[str, Envelope]]:
    events: list[tuple[str, Envelope]] = []
    for index, code in enumerate(CODES):
        events.append(
            (DOSSIER_LIFECYCLE.name, received(code, at=f"2026-06-01 {8 + index % 8:02d}:15"))
        )
        if index % 2 == 0:
            events.append((DOSSIER_ROUTING.name, routed(code)))
        if code in RESOLVED:
            resolve = action(1, DossierAction.RESOLVE, "2026-06-02 10:00", code=code)
            events.append((DOSSIER_LIFECYCLE.name, resolve))
    return events


def announced() -> list[tuple[str, Envelope]]:
    """What a tracker published before its tables were lost."""
    events: list[tuple[str, Envelope]] = []
    for code in ANNOUNCED:
        started = ClockStarted(started_at=vn("2026-06-01 08:15"), due_at=vn("2026-06-03 08:15"))
        events.append((DOSSIER_SLA.name, wrap(started, code)))
        if code in RESOLVED:
            finished = SlaFinished(
                outcome="early",
                finished_at=vn("2026-06-02 10:00"),
                due_at=vn("2026-06-03 08:15"),
                supplement_requests=0,
                extended=False,
                office=None,
                procedure_code="2.000635",
                receiving_unit="000.00.00.H56",
                channel=Channel.COUNTER,
            )
            events.append((DOSSIER_SLA.name, wrap(finished, code)))
    return events


def wrap(payload: ClockStarted | SlaFinished, code: str) -> Envelope:
    return Envelope.wrap(
        payload, occurred_at=vn("2026-06-02 10:00"), source="sla", dossier_code=code
    )


async def produce(bootstrap: str, events: Sequence[tuple[str, Envelope]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, event in events:
            await producer.send_and_wait(topic, event.encode(), key=event.key)
    finally:
        await producer.stop()


def rebuild(bootstrap: str, var_dir: Path, workers: int, *, expect: int = 0) -> str:
    """Run the command; its output (``expect``: its exit status)."""
    env = {
        **os.environ,
        "MOTCUA_VAR_DIR": str(var_dir),
        "MOTCUA_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
    }
    command = [sys.executable, "-m", "motcua.cli", "sla", "rebuild", "--batch", "4"]
    done = subprocess.run(
        [*command, "--workers", str(workers)],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == expect, done.stderr
    return done.stdout + done.stderr


def tables(var_dir: Path) -> dict[str, list[tuple[object, ...]]]:
    """The rebuilt tables without bookkeeping (arrival times, versions, ids), the outbox
    as (dossier, event type), and the due times published.

    The final classes' payloads are left out: a dossier's routing and lifecycle facts
    are on two topics, read in either order, and a class folded before its routing has
    no office (as in the consumer, which meets the same orders)."""
    with sqlite3.connect(var_dir / "sla.db") as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(tracked_dossier)")]
        kept = ", ".join(c for c in columns if c not in {"tracked_at", "version"})
        outbox: list[tuple[object, ...]] = []
        due_times: list[tuple[object, ...]] = []
        for key, value in db.execute("SELECT key, value FROM outbox"):
            event = orjson.loads(value)
            outbox.append((key, event["type"]))
            if event["type"] == "sla.due_times":
                due_times.append((key, orjson.dumps(event["payload"]).decode()))
        return {
            "clocks": db.execute(f"SELECT {kept} FROM tracked_dossier ORDER BY code").fetchall(),
            "ledger": db.execute(
                "SELECT code, sequence, action, at FROM sla_ledger ORDER BY code, sequence"
            ).fetchall(),
            "flags": db.execute(
                "SELECT code, kind, step FROM sla_flag ORDER BY code, kind, step"
            ).fetchall(),
            "outbox": sorted(outbox),
            "due_times": sorted(due_times),
        }


def test_workers_side_by_side_rebuild_what_one_does(broker: LocalBroker, tmp_path: Path) -> None:
    asyncio.run(produce(broker.bootstrap_servers, facts() + announced()))
    one = rebuild(broker.bootstrap_servers, tmp_path / "one", 1)
    two = rebuild(broker.bootstrap_servers, tmp_path / "two", 2)
    assert "1 worker(s)" in one
    assert "2 worker(s)" in two
    assert "worker 1:" in two
    by_one, by_two = tables(tmp_path / "one"), tables(tmp_path / "two")
    assert by_two == by_one
    assert len(by_one["clocks"]) == len(CODES)
    assert len(by_one["ledger"]) == len(RESOLVED)
    published = set(by_one["outbox"])
    # what the topic carries is not announced again; what it lacks is
    assert {code for code, kind in published if kind == "sla.clock_started"} == set(CODES[6:])
    finished = {code for code, kind in published if kind == "sla.finished"}
    assert finished == set(RESOLVED) - set(ANNOUNCED)
    assert {code for code, kind, _ in by_one["flags"]} == set(RESOLVED)
    routed_codes = set(CODES[::2])
    assert {code for code, kind in published if kind == "sla.due_times"} == routed_codes


def test_workers_never_split_a_dossier() -> None:
    assert split({"a": 6, "b": 6, "c": 6}, 2) == (2, None)
    assert split({"a": 6, "b": 6, "c": 0}, 4) == (4, None)  # a missing topic has no records
    assert split({"a": 6, "b": 6, "c": 6}, 8) == (6, "6 workers: the topics have 6 partitions")
    assert split({"a": 0, "b": 0, "c": 0}, 2) == (
        1,
        "one worker: none of the topics is on the broker",
    )
    assert split({"a": 6, "b": 3, "c": 6}, 2) == (
        1,
        "one worker: the topics' partition counts differ (a 6, b 3, c 6)",
    )
    assert split({"a": 6, "b": 3, "c": 6}, 1) == (1, None)


def test_without_a_broker_nothing_is_dropped(broker: LocalBroker, tmp_path: Path) -> None:
    asyncio.run(produce(broker.bootstrap_servers, facts()[:6]))
    rebuild(broker.bootstrap_servers, tmp_path, 1)
    before = tables(tmp_path)
    assert before["clocks"]
    said = rebuild("127.0.0.1:1", tmp_path, 2, expect=2)
    assert "error: no broker answers at 127.0.0.1:1; nothing was changed" in said
    assert tables(tmp_path) == before


async def test_the_reader_reads_to_the_end_as_it_is_when_it_gets_there(
    broker: LocalBroker,
) -> None:
    """The ends are asked again when the reading reaches them: what was written meanwhile
    is read too (as are records the broker acknowledged before its end offsets showed
    them)."""
    first = [(DOSSIER_LIFECYCLE.name, received(code)) for code in CODES[:8]]
    later = [(DOSSIER_LIFECYCLE.name, received(code)) for code in CODES[8:12]]
    await produce(broker.bootstrap_servers, first)
    stream = TopicStream(broker.bootstrap_servers, (DOSSIER_LIFECYCLE,), batch=2)
    read: list[str | None] = []
    async for events in stream.batches():
        if not read:
            await produce(broker.bootstrap_servers, later)
        read += [e.dossier_code for e in events]
    assert sorted(c for c in read if c) == sorted(CODES[:12])
    assert sum(stream.ends.values()) == 12
