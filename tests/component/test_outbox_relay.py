"""The outbox relay when the broker loses what it was given, and retention.

The broker here is a recording stand-in (what the relay sends, where each record lands,
and the end offsets it reports), so that every way of losing records can be staged
exactly; the power cut on the real local broker is in tests/integration/test_faults.py.
The database is a real SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from shared.db import Database, table
from shared.events import CalendarChanged, DossierReceived, decode
from shared.inbox import InboxRow, purge_inbox
from shared.outbox import OutboxRelay, OutboxRow, Partition, enqueue, purge_outbox
from shared.topics import API_KEYS, DOSSIER_LIFECYCLE
from tests.factories import received_envelope

OUTBOX = table(OutboxRow)


@dataclass(frozen=True)
class Placement:
    partition: int
    offset: int


@dataclass
class Broker:
    """One partition per topic; ``wipe`` forgets everything (a memory broker restarted)."""

    logs: dict[str, list[bytes]] = field(default_factory=dict)
    lose_before_next_send: bool = False
    last_batch: dict[str, int] = field(default_factory=dict)
    """Where the latest run of sends began in each log: like the local broker, the end
    offset reported is that plus one (one batch), short of the real end."""
    asked: bool = True

    def wipe(self) -> None:
        self.logs.clear()
        self.last_batch.clear()

    async def send(self, topic: str, value: bytes, _key: bytes | None) -> Awaitable[Placement]:
        if self.lose_before_next_send:
            self.lose_before_next_send = False
            self.wipe()
        log = self.logs.setdefault(topic, [])
        if self.asked or topic not in self.last_batch:
            self.asked = False
            self.last_batch[topic] = len(log)
        log.append(value)
        done: asyncio.Future[Placement] = asyncio.get_running_loop().create_future()
        done.set_result(Placement(0, len(log) - 1))
        return done

    async def end_offsets(self, partitions: Collection[Partition]) -> dict[Partition, int]:
        self.asked = True
        return {(t, p): self.last_batch[t] + 1 if self.logs.get(t) else 0 for t, p in partitions}


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    await database.create_tables([table(OutboxRow), table(InboxRow)])
    return database


def relay(db: Database, broker: Broker) -> OutboxRelay:
    return OutboxRelay(
        db,
        broker.send,
        service="intake",
        batch_max=100,
        poll_seconds=0.1,
        end_offsets=broker.end_offsets,
    )


async def add(db: Database, n: int) -> list[str]:
    codes = []
    async with db.transaction() as session:
        for _ in range(n):
            event = received_envelope()
            enqueue(
                session,
                event.body(DossierReceived),
                occurred_at=event.occurred_at,
                source="intake",
                dossier_code=event.dossier_code,
            )
            codes.append(event.dossier_code or "")
    return codes


def codes_in(broker: Broker) -> list[str]:
    return [decode(v).dossier_code or "" for v in broker.logs.get(DOSSIER_LIFECYCLE.name, [])]


async def test_a_broker_that_lost_everything_gets_it_again_in_order(db: Database) -> None:
    broker = Broker()
    first = await add(db, 5)
    assert await relay(db, broker).publish_round() == 5
    broker.wipe()
    later = await add(db, 2)
    # a new relay (the process restarted too) learns what it expects from the table
    assert await relay(db, broker).publish_round() == 7
    assert codes_in(broker) == first + later


async def test_only_what_the_broker_lacks_is_published_again(db: Database) -> None:
    broker = Broker()
    codes = await add(db, 5)
    the_relay = relay(db, broker)
    assert await the_relay.publish_round() == 5
    codes += await add(db, 2)
    assert await the_relay.publish_round() == 2
    log = broker.logs[DOSSIER_LIFECYCLE.name]
    del log[3:]  # a truncated log: offsets 3 to 6 gone
    broker.last_batch[DOSSIER_LIFECYCLE.name] = 2
    assert await relay(db, broker).publish_round() == 4  # a restarted relay sees it too
    assert codes_in(broker) == codes
    assert await the_relay.publish_round() == 0  # and then nothing more


async def test_an_end_reported_short_of_the_real_one_is_no_loss(db: Database) -> None:
    broker = Broker()
    await add(db, 5)
    assert await relay(db, broker).publish_round() == 5
    assert await broker.end_offsets([(DOSSIER_LIFECYCLE.name, 0)]) == {
        (DOSSIER_LIFECYCLE.name, 0): 1
    }
    assert await relay(db, broker).publish_round() == 0  # restarted: the table's marks
    the_relay = relay(db, broker)
    for _ in range(3):
        await add(db, 3)
        assert await the_relay.publish_round() == 3
    assert len(codes_in(broker)) == 14


async def test_a_loss_during_the_round_is_seen_in_its_confirmations(db: Database) -> None:
    broker = Broker()
    first = await add(db, 4)
    the_relay = relay(db, broker)
    assert await the_relay.publish_round() == 4
    second = await add(db, 1)
    broker.lose_before_next_send = True  # restarted between the check and the send
    assert await the_relay.publish_round() == 1
    assert await the_relay.publish_round() == 4
    assert sorted(codes_in(broker)) == sorted(first + second)


async def test_nothing_is_published_again_while_the_broker_keeps_it(db: Database) -> None:
    broker = Broker()
    await add(db, 3)
    the_relay = relay(db, broker)
    assert await the_relay.publish_round() == 3
    assert await the_relay.publish_round() == 0
    assert len(codes_in(broker)) == 3


async def test_retention_deletes_old_sent_rows_but_the_newest_of_each_key(db: Database) -> None:
    now = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # the sweep's "now" is its argument
    async with db.transaction() as session:
        for key in ("k1", "k1", "k2"):
            enqueue(
                session,
                CalendarChanged(province="default", last_year=None, rows=[], removed=[]),
                occurred_at=now,
                source="intake",
                dossier_code=None,
                key=key,
            )
    await add(db, 2)
    async with db.transaction() as session:
        conn = await session.connection()
        await conn.execute(update(OUTBOX).values(sent_at=now - timedelta(days=8)))
        await conn.execute(update(OUTBOX).where(OUTBOX.c.key == "k1").values(topic=API_KEYS.name))
        await conn.execute(update(OUTBOX).where(OUTBOX.c.key == "k2").values(topic=API_KEYS.name))
        session.add(InboxRow(event_id="old", event_type="x", applied_at=now - timedelta(days=8)))
        session.add(InboxRow(event_id="new", event_type="x", applied_at=now))
    await add(db, 1)  # unsent: never deleted
    purged = await purge_outbox(
        db, older_than=now - timedelta(days=7), service="intake", compacted={API_KEYS.name}
    )
    assert purged == 3  # the two old lifecycle rows and the superseded k1
    async with db.sessions() as session:
        conn = await session.connection()
        left = (await conn.execute(select(OUTBOX.c.key, OUTBOX.c.sent_at))).all()
    assert sorted((k or "", s is None) for k, s in left if k in {"k1", "k2"}) == [
        ("k1", False),
        ("k2", False),
    ]
    assert sum(1 for _k, s in left if s is None) == 1
    assert await purge_inbox(db, older_than=now - timedelta(days=7), service="intake") == 1
