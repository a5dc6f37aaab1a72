"""The SLA tracker's wiring in virtual time: consumer, scheduler, API, gauges.

FastStream's in-memory broker feeds the consumer; the scheduler is driven by calling
``flag_due`` at virtual instants; the database is a real SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from services.sla import api as sla_api
from services.sla import process as sla_process
from services.sla import store
from services.sla.rebuild import rebuild
from services.sla.settings import SlaSettings
from shared.auth import Authenticator
from shared.calendar import VN_TZ
from shared.db import Database, table
from shared.events import (
    ChainStep,
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    DossierRouted,
    Envelope,
    TimeLimit,
    decode,
)
from shared.keys_sync import key_lookup
from shared.outbox import OutboxRow
from shared.service import answer_refusals
from shared.settings import Settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING
from tests.factories import grant_key

CODE = "000.00.00.H56-260601-0001"


def vn(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=VN_TZ)


class VirtualClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, retry_backoff_seconds=0.0)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(vn("2026-06-01 08:00"))


async def started(settings: Settings, clock: VirtualClock) -> sla_process.SlaProcess:
    process = sla_process.build(settings, clock=clock)
    await process.runtime.db.create_tables(process.runtime.tables)
    return process


def received(code: str = CODE, *, at: str = "2026-06-01 08:00", rule: str = "pause") -> Envelope:
    return Envelope.wrap(
        DossierReceived(
            procedure_code="2.000635",
            channel=Channel.COUNTER,
            receiving_unit="000.00.00.H56",
            received_at=vn(at),
            due_at=None,
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(2), unit="working_days"),
            supplement_rule="restart" if rule == "restart" else "pause",
            catalogue_version=1,
        ),
        occurred_at=vn(at),
        source="test",
        dossier_code=code,
    )


def action(
    sequence: int, what: DossierAction, at: str, code: str = CODE, **extra: object
) -> Envelope:
    return Envelope.wrap(
        DossierActionRecorded.model_validate(
            {
                "action": what,
                "sequence": sequence,
                "at": vn(at),
                "status": what.value,
                "national_status": 4,
                **extra,
            }
        ),
        occurred_at=vn(at),
        source="test",
        dossier_code=code,
    )


async def publish(process: sla_process.SlaProcess, *events: Envelope) -> None:
    async with TestKafkaBroker(process.runtime.broker) as broker:
        for event in events:
            topic = DOSSIER_ROUTING if event.type == "dossier.routed" else DOSSIER_LIFECYCLE
            await broker.publish(event.encode(), topic.name, key=event.key)


async def sla_events(db: Database, kind: str | None = None) -> list[Envelope]:
    outbox = table(OutboxRow)
    async with db.sessions() as session:
        conn = await session.connection()
        values = (await conn.execute(select(outbox.c.value).order_by(outbox.c.id))).scalars().all()
    events = [decode(v) for v in values]
    if kind is None:
        return events
    return [e for e in events if e.type == "sla.warning" and e.payload["kind"] == kind]


async def test_pause_example_through_the_consumer_with_late_and_repeated_actions(
    settings: Settings, clock: VirtualClock
) -> None:
    process = await started(settings, clock)
    tracker = process.tracker
    pause = action(1, DossierAction.REQUEST_SUPPLEMENT, "2026-06-01 14:00", reason="thiếu tờ khai")
    back = action(2, DossierAction.SUBMIT_SUPPLEMENT, "2026-06-04 10:00")
    repeated = action(2, DossierAction.SUBMIT_SUPPLEMENT, "2026-06-04 11:00")
    await publish(process, received(), back, pause, pause, repeated)
    found = await tracker.get(CODE)
    assert found is not None
    row, ledger = found
    assert sorted(e.sequence for e in ledger) == [1, 2]
    assert row.due_at == vn("2026-06-05 15:00")
    assert row.phase == "running"
    assert [e.type for e in await sla_events(process.runtime.db)] == ["sla.clock_started"]


async def test_the_class_is_published_once_when_the_result_is_ready(
    settings: Settings, clock: VirtualClock
) -> None:
    process = await started(settings, clock)
    tracker = process.tracker
    resolve = action(1, DossierAction.RESOLVE, "2026-06-03 07:45")
    await publish(process, received(), resolve, resolve)
    await publish(process, action(2, DossierAction.RETURN_RESULT, "2026-06-04 09:00"))
    finished = [e for e in await sla_events(process.runtime.db) if e.type == "sla.finished"]
    assert len(finished) == 1
    assert finished[0].payload["outcome"] == "on_time"
    assert finished[0].dossier_code == CODE
    clock.at = vn("2026-06-10 08:00")
    assert await tracker.flag_due() is None
    assert await sla_events(process.runtime.db, "overdue") == []


async def test_scheduler_flags_each_warning_once_in_virtual_time(
    settings: Settings, clock: VirtualClock
) -> None:
    process = await started(settings, clock)
    tracker = process.tracker
    await publish(process, received())
    clock.at = vn("2026-06-02 07:59")
    assert await tracker.flag_due() == vn("2026-06-02 08:00")
    assert await sla_events(process.runtime.db, "due_soon") == []
    clock.at = vn("2026-06-02 15:00")
    assert await tracker.flag_due() == vn("2026-06-03 08:00") + timedelta(microseconds=1)
    [due_soon] = await sla_events(process.runtime.db, "due_soon")
    [apology] = await sla_events(process.runtime.db, "apology_needed")
    assert due_soon.payload["working_hours_left"] == 2.5
    assert apology.payload["due_at"] == "2026-06-03T08:00:00+07:00"
    clock.at = vn("2026-06-03 08:00:01")
    assert await tracker.flag_due() is None
    assert await tracker.flag_due() is None
    [overdue] = await sla_events(process.runtime.db, "overdue")
    assert overdue.payload["step"] is None
    assert overdue.dossier_code == CODE


async def test_a_pause_holds_the_flags_until_the_clock_runs_again(
    settings: Settings, clock: VirtualClock
) -> None:
    process = await started(settings, clock)
    tracker = process.tracker
    await publish(process, received(), action(1, DossierAction.STOP, "2026-06-01 09:00"))
    clock.at = vn("2026-06-20 09:00")
    assert await tracker.flag_due() is None
    assert await sla_events(process.runtime.db, "overdue") == []
    await publish(process, action(2, DossierAction.RESUME, "2026-06-22 09:00"))
    found = await tracker.get(CODE)
    assert found is not None
    assert found[0].next_deadline == vn("2026-06-23 08:00")


async def test_chain_steps_get_their_own_flags(settings: Settings, clock: VirtualClock) -> None:
    process = await started(settings, clock)
    tracker = process.tracker
    routed = Envelope.wrap(
        DossierRouted(
            procedure_code="2.000635",
            office="A",
            field="Hộ tịch",
            rule="test",
            catalogue_version=1,
            steps=[
                ChainStep(office="A", hours=Decimal(4)),
                ChainStep(office="B", hours=Decimal(8)),
            ],
        ),
        occurred_at=vn("2026-06-01 08:00"),
        source="routing",
        dossier_code=CODE,
    )
    await publish(process, routed, received())
    clock.at = vn("2026-06-01 13:30:01")
    await tracker.flag_due()
    [overdue] = await sla_events(process.runtime.db, "overdue")
    assert overdue.payload["step"] == 0
    assert overdue.payload["office"] == "A"


async def test_exactly_one_overdue_with_two_trackers_and_a_redelivered_event(
    settings: Settings, clock: VirtualClock
) -> None:
    first = await started(settings, clock)
    second = await started(settings, clock)
    event = received()
    await publish(first, event)
    await publish(second, event)
    clock.at = vn("2026-06-03 08:00:01")
    await asyncio.gather(
        first.tracker.flag_due(), second.tracker.flag_due(), first.tracker.flag_due()
    )
    await asyncio.gather(second.tracker.flag_due(), first.tracker.flag_due())
    events = await sla_events(first.runtime.db)
    assert len(await sla_events(first.runtime.db, "overdue")) == 1
    assert [e.type for e in events].count("sla.clock_started") == 1
    await first.runtime.db.dispose()
    await second.runtime.db.dispose()


async def test_the_api_explains_the_clock(settings: Settings, clock: VirtualClock) -> None:
    process = await started(settings, clock)
    tracker = process.tracker
    await publish(
        process,
        received(),
        action(1, DossierAction.REQUEST_SUPPLEMENT, "2026-06-01 14:00", reason="thiếu tờ khai"),
        action(2, DossierAction.SUBMIT_SUPPLEMENT, "2026-06-04 10:00"),
    )
    clock.at = vn("2026-06-04 13:00")
    db = process.runtime.db
    app = FastAPI()
    answer_refusals(app)  # as create_http_app does
    app.include_router(sla_api.router(tracker, Authenticator(key_lookup(db))))
    key = await grant_key(db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sla", headers=key
    ) as client:
        body = (await client.get(f"/api/v1/sla/{CODE}")).json()
        missing = await client.get("/api/v1/sla/000.00.00.H56-260601-9999")
    assert missing.status_code == 404
    contract = {
        "code",
        "due_at",
        "state",
        "outcome",
        "working_hours_used",
        "working_hours_left",
        "ledger",
        "steps",
    }
    assert contract <= body.keys()
    assert body["due_at"] == "2026-06-05T15:00:00+07:00"
    assert body["state"] == "in_time"
    assert body["outcome"] is None
    assert body["working_hours_used"] == 6.0
    assert body["working_hours_left"] == 10.0
    assert [line["kind"] for line in body["ledger"]] == ["start", "pause", "resume"]
    assert body["ledger"][1]["reason"] == "thiếu tờ khai"
    assert body["ledger"][2]["due_at"] == "2026-06-05T15:00:00+07:00"
    assert body["ledger"][2]["at"] == "2026-06-04T10:00:00+07:00"
    assert {"at", "kind", "reason", "due_at"} <= body["ledger"][0].keys()


async def test_gauges_count_open_dossiers_by_state(settings: Settings, clock: VirtualClock) -> None:
    process = await started(settings, clock)
    tracker = process.tracker
    await publish(
        process,
        received(),
        received("000.00.00.H56-260601-0002"),
        action(1, DossierAction.STOP, "2026-06-01 09:00", code="000.00.00.H56-260601-0002"),
    )
    clock.at = vn("2026-06-04 08:00")
    await tracker.refresh_gauges()
    overdue = REGISTRY.get_sample_value("motcua_sla_overdue_dossiers")
    paused = REGISTRY.get_sample_value(
        "motcua_sla_open_dossiers", {"state": "paused", "office": ""}
    )
    assert (overdue, paused) == (1.0, 1.0)


async def snapshot(db: Database) -> dict[str, list[tuple[object, ...]]]:
    """The tracker's state without its bookkeeping (arrival times, versions)."""
    clocks, ledger, flags = store.CLOCKS, store.LEDGER, store.FLAGS
    kept = [c for c in clocks.c if c.name not in {"tracked_at", "version"}]
    async with db.sessions() as session:
        conn = await session.connection()
        return {
            "clocks": list((await conn.execute(select(*kept).order_by(clocks.c.code))).all()),
            "ledger": list(
                (
                    await conn.execute(
                        select(*[c for c in ledger.c if c.name != "id"]).order_by(
                            ledger.c.code, ledger.c.sequence
                        )
                    )
                ).all()
            ),
            "flags": list(
                (
                    await conn.execute(
                        select(flags.c.code, flags.c.kind, flags.c.step).order_by(
                            flags.c.code, flags.c.kind, flags.c.step
                        )
                    )
                ).all()
            ),
        }


async def test_rebuild_from_the_topics_reproduces_the_live_state(
    tmp_path: Path, clock: VirtualClock
) -> None:
    live = await started(Settings(var_dir=tmp_path / "live"), clock)
    other = "000.00.00.H56-260601-0002"
    facts = [
        received(),
        received(other, at="2026-06-01 09:00"),
        action(1, DossierAction.REQUEST_SUPPLEMENT, "2026-06-01 14:00", reason="thiếu"),
        action(2, DossierAction.SUBMIT_SUPPLEMENT, "2026-06-04 10:00"),
        action(
            1,
            DossierAction.EXTEND,
            "2026-06-02 10:00",
            code=other,
            new_due_at=vn("2026-06-05 17:00"),
        ),
    ]
    await publish(live, *facts)
    clock.at = vn("2026-06-03 10:00")
    await live.tracker.flag_due()
    late = action(3, DossierAction.RESOLVE, "2026-06-05 16:00")
    await publish(live, late)
    facts.append(late)
    published = await sla_events(live.runtime.db)
    assert {e.type for e in published} >= {"sla.warning", "sla.finished"}

    rebuilt = await started(Settings(var_dir=tmp_path / "rebuilt"), clock)
    report = await rebuild(rebuilt.tracker, facts, published, batch=2)
    assert report.clocks == 2
    assert await snapshot(rebuilt.runtime.db) == await snapshot(live.runtime.db)
    assert await sla_events(rebuilt.runtime.db) == []
    assert await rebuilt.tracker.flag_due() == await live.tracker.flag_due()


async def test_the_scheduler_wakes_on_new_work(settings: Settings, clock: VirtualClock) -> None:
    process = sla_process.build(
        settings, clock=clock, sla=SlaSettings(scheduler_max_sleep_seconds=3600)
    )
    tracker = process.tracker
    await process.runtime.db.create_tables(process.runtime.tables)
    clock.at = vn("2026-06-03 09:00")
    scheduler = asyncio.create_task(tracker.run_scheduler())
    try:
        await asyncio.sleep(0.1)  # let it find no deadline and go to sleep
        await publish(process, received())
        for _ in range(200):  # 10 s at most, far less than its hour-long sleep
            if await sla_events(process.runtime.db, "overdue"):
                break
            await asyncio.sleep(0.05)
    finally:
        scheduler.cancel()
        await asyncio.gather(scheduler, return_exceptions=True)
    assert len(await sla_events(process.runtime.db, "overdue")) == 1


@pytest.fixture
async def pg_settings(tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings on PostgreSQL in a schema of this test's own (dropped afterwards)."""
    url = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL: set MOTCUA_TEST_POSTGRES_URL to run this backend")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    yield Settings(var_dir=tmp_path, database_url=url, db_schema_prefix=prefix)
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}sla" CASCADE'))
    await db.dispose()


async def test_exactly_one_overdue_with_two_trackers_on_postgresql(
    pg_settings: Settings, clock: VirtualClock
) -> None:
    first = await started(pg_settings, clock)
    second = await started(pg_settings, clock)
    codes = [f"000.00.00.H56-260601-{n:04d}" for n in range(1, 41)]
    await publish(first, *(received(code) for code in codes[:20]))
    await publish(second, *(received(code) for code in codes[20:]))
    clock.at = vn("2026-06-03 08:00:01")
    for _ in range(2):
        await asyncio.gather(first.tracker.flag_due(), second.tracker.flag_due())
    overdue = await sla_events(first.runtime.db, "overdue")
    assert sorted(e.dossier_code or "" for e in overdue) == codes
    await first.runtime.db.dispose()
    await second.runtime.db.dispose()
