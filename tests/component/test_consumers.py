"""Service wiring with FastStream's in-memory broker and real SQLite files.

The in-memory broker has no partitions, groups or offsets: ordering and
at-least-once are tested on the real broker in tests/integration.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import process as notify_process
from services.notify import store as notify_store
from services.routing import process as routing_process
from services.routing import store as routing_store
from services.sla import process as sla_process
from services.sla import store as sla_store
from shared.db import Database, table
from shared.deadletter import HEADER_ATTEMPTS, HEADER_REASON, HEADER_SOURCE_TOPIC
from shared.events import DossierRouted, Envelope, decode
from shared.inbox import InboxRow
from shared.outbox import OutboxRow
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.topics import DOSSIER_CONTACTS, DOSSIER_LIFECYCLE, DOSSIER_ROUTING
from tests.factories import contact_envelope, received_envelope


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, retry_backoff_seconds=0.0, retry_attempts=3)


async def count(db: Database, model: type[Any]) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(table(model))) or 0)


async def outbox_events(db: Database) -> list[Envelope]:
    async with db.sessions() as session:
        conn = await session.connection()
        values = (await conn.execute(select(table(OutboxRow).c.value))).scalars().all()
    return [decode(v) for v in values]


def collect_dead_letters(runtime: ServiceRuntime) -> list[KafkaMessage]:
    seen: list[KafkaMessage] = []

    @runtime.broker.subscriber(DOSSIER_LIFECYCLE.dead_letter)
    async def dlq(message: KafkaMessage) -> None:
        seen.append(message)

    return seen


async def test_routing_routes_once_despite_redelivery(settings: Settings) -> None:
    routing = routing_process.build(settings)
    db = routing.runtime.db
    await db.create_tables(routing.runtime.tables)
    event = received_envelope()
    async with TestKafkaBroker(routing.runtime.broker) as broker:
        for _ in range(3):
            await broker.publish(event.encode(), DOSSIER_LIFECYCLE.name, key=event.key)
    assert await count(db, routing_store.Assignment) == 1
    assert await count(db, InboxRow) == 1
    [routed] = await outbox_events(db)
    assert routed.type == "dossier.routed"
    assert routed.dossier_code == event.dossier_code
    assert routed.correlation_id == event.correlation_id


async def test_unknown_procedure_goes_to_the_manual_queue(settings: Settings) -> None:
    routing = routing_process.build(settings)
    db = routing.runtime.db
    await db.create_tables(routing.runtime.tables)
    event = received_envelope(procedure="9.999999")
    async with TestKafkaBroker(routing.runtime.broker) as broker:
        await broker.publish(event.encode(), DOSSIER_LIFECYCLE.name, key=event.key)
    assert await count(db, routing_store.ManualQueueEntry) == 1
    [unroutable] = await outbox_events(db)
    assert unroutable.type == "dossier.unroutable"
    assert "9.999999" in unroutable.payload["reason"]


async def test_sla_accepts_routed_before_received(settings: Settings) -> None:
    process = sla_process.build(settings)
    tracker = process.tracker
    db = process.runtime.db
    await db.create_tables(process.runtime.tables)
    received = received_envelope()
    routed = Envelope.wrap(
        DossierRouted(
            procedure_code="2.000635",
            office="000.00.00.H56",
            field="Hộ tịch",
            rule="test",
            catalogue_version=1,
        ),
        occurred_at=received.occurred_at,
        source="routing",
        dossier_code=received.dossier_code,
    )
    async with TestKafkaBroker(process.runtime.broker) as broker:
        await broker.publish(routed.encode(), DOSSIER_ROUTING.name, key=routed.key)
        await broker.publish(received.encode(), DOSSIER_LIFECYCLE.name, key=received.key)
    found = await tracker.get(received.dossier_code or "")
    assert found is not None
    row, _ledger = found
    assert row.office == "000.00.00.H56"
    assert row.started_at is not None
    assert await count(db, sla_store.DossierClock) == 1
    [started] = await outbox_events(db)
    assert started.type == "sla.clock_started"


async def test_notify_stores_one_receipt_and_sends_it(settings: Settings) -> None:
    notifier = notify_process.build(settings).notifier
    db = notifier.runtime.db
    await db.create_tables(notifier.runtime.tables)
    event = received_envelope()
    contact = contact_envelope(event.dossier_code or "")
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(contact.encode(), DOSSIER_CONTACTS.name, key=contact.key)
        await broker.publish(event.encode(), DOSSIER_LIFECYCLE.name, key=event.key)
        await broker.publish(event.encode(), DOSSIER_LIFECYCLE.name, key=event.key)
    assert await count(db, notify_store.Message) == 1
    assert await notifier.dispatch_round() == 1
    [message] = await notifier.for_dossier(event.dossier_code or "")
    assert message.status == "sent"
    files = list((settings.var_dir / "messages").glob("*.json"))
    assert len(files) == 1
    text = files[0].read_text("utf-8")
    assert event.dossier_code in text
    assert "Ho so" in text  # SMS without diacritics
    assert await notifier.dispatch_round() == 0


async def test_undecodable_message_is_dead_lettered_and_the_rest_applied(
    settings: Settings,
) -> None:
    routing = routing_process.build(settings)
    db = routing.runtime.db
    await db.create_tables(routing.runtime.tables)
    dead = collect_dead_letters(routing.runtime)
    good = received_envelope()
    async with TestKafkaBroker(routing.runtime.broker) as broker:
        await broker.publish(b"not an event", DOSSIER_LIFECYCLE.name, key=b"K")
        await broker.publish(good.encode(), DOSSIER_LIFECYCLE.name, key=good.key)
    assert len(dead) == 1
    headers = dead[0].headers
    assert headers[HEADER_SOURCE_TOPIC] == DOSSIER_LIFECYCLE.name
    assert headers[HEADER_REASON].startswith("UndecodableEvent: invalid envelope")
    assert dead[0].body == b"not an event"
    assert await count(db, routing_store.Assignment) == 1


async def test_failing_handler_is_retried_then_dead_lettered(settings: Settings) -> None:
    runtime = ServiceRuntime("routing", settings, tables=[], publishes=[])
    await runtime.db.create_tables(runtime.tables)
    attempts: list[int] = []

    async def always_fails(_session: AsyncSession, events: Sequence[Envelope]) -> None:
        attempts.append(len(events))
        msg = "office directory unavailable"
        raise RuntimeError(msg)

    from shared.consume import subscribe  # noqa: PLC0415

    subscribe(runtime, always_fails, DOSSIER_LIFECYCLE)
    dead = collect_dead_letters(runtime)
    event = received_envelope()
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(event.encode(), DOSSIER_LIFECYCLE.name, key=event.key)
    assert attempts == [1, 1, 1]
    assert len(dead) == 1
    assert dead[0].headers[HEADER_ATTEMPTS] == "3"
    assert dead[0].headers[HEADER_REASON] == "RuntimeError: office directory unavailable"
    assert await count(runtime.db, InboxRow) == 0
