"""Routing's consumer hop applies a mixed batch as it applies the same events one at a
time: the same assignments, chain steps, manual-queue entries and outbox events.

Two SQLite files hold the same stored dossiers; one gets the batch in one
``Routing.apply`` (new decisions and changes kept as plain rows, written in a few
statements at the end), the other each event in its own transaction (every change to a
stored row). The batch mixes receptions, an unroutable dossier, transfers and an ending,
sla's due times, a dossier received and transferred in one batch, an event delivered
twice and a reception redelivered under a new event id.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from services.routing import process as routing_process
from services.routing import store
from services.routing.process import RoutingProcess
from shared.calendar import VN_TZ
from shared.db import Database
from shared.events import (
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    Envelope,
    SlaDueTimes,
    StepDueTime,
    TimeLimit,
    decode,
)
from shared.settings import Settings

UNIT = "000.00.00.H56"
POLICE = "000.00.61.H56"
BHXH = "000.00.62.H56"
OTHER = "000.00.63.H56"
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)
NOW = MONDAY + timedelta(days=2)
THREE_STEPS = "1.010801"
"""The seed catalogue's procedure with a three-step chain (unit, police, BHXH)."""


def received(code: str, procedure: str = THREE_STEPS, *, due: bool = True) -> Envelope:
    return Envelope.wrap(
        DossierReceived(
            procedure_code=procedure,
            channel=Channel.COUNTER,
            receiving_unit=UNIT,
            received_at=MONDAY,
            due_at=MONDAY + timedelta(days=7) if due else None,
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        occurred_at=MONDAY,
        source="test",
        dossier_code=code,
    )


def action(
    code: str, kind: DossierAction, sequence: int, hours: int, office: str | None = None
) -> Envelope:
    at = MONDAY + timedelta(hours=hours)
    return Envelope.wrap(
        DossierActionRecorded(
            action=kind,
            sequence=sequence,
            at=at,
            status="processing",
            national_status=4,
            office=office,
        ),
        occurred_at=at,
        source="test",
        dossier_code=code,
    )


def due_times(code: str, hours: int) -> Envelope:
    due = MONDAY + timedelta(hours=hours)
    return Envelope.wrap(
        SlaDueTimes(
            due_at=due,
            steps=[
                StepDueTime(step=0, office=UNIT, started_at=MONDAY, due_at=due),
                StepDueTime(step=2, office=BHXH, started_at=None, due_at=None),
            ],
        ),
        occurred_at=MONDAY,
        source="test",
        dossier_code=code,
    )


STORED = [received("S1"), received("S2"), received("S3", due=False)]
"""Dossiers routed before the batch."""


def mixed_batch() -> list[Envelope]:
    """Every kind of event routing takes, in partition order, with repeats."""
    a = received("A")
    transfer_s1 = action("S1", DossierAction.TRANSFER, 1, 3, OTHER)
    return [
        a,
        received("B", "2.000635", due=False),
        received("U", "9.999999"),
        a,
        action("A", DossierAction.TRANSFER, 1, 2),
        received("A"),
        transfer_s1,
        transfer_s1,
        action("S1", DossierAction.TRANSFER, 2, 5),
        due_times("S2", 30),
        action("S2", DossierAction.RESOLVE, 1, 6),
        due_times("A", 40),
        action("U", DossierAction.TRANSFER, 1, 4),
        received("S1"),
        action("S3", DossierAction.TRANSFER, 1, 7),
        action("S3", DossierAction.TRANSFER, 1, 8),
        due_times("S3", 50),
        action("B", DossierAction.TRANSFER, 1, 9),
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
async def processes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[list[RoutingProcess]]:
    """Two routing processes on empty databases: SQLite files, or schemas of their own
    on PostgreSQL (dropped afterwards)."""
    url = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
    if request.param == "postgresql" and not url:
        pytest.skip("PostgreSQL: set MOTCUA_TEST_POSTGRES_URL to run this backend")
    prefixes = [f"t{uuid.uuid4().hex[:8]}_" for _ in range(2)]
    built = []
    for name, prefix in zip(("batched", "single"), prefixes, strict=True):
        (tmp_path / name).mkdir()
        settings = (
            Settings(var_dir=tmp_path / name, database_url=url, db_schema_prefix=prefix)
            if request.param == "postgresql" and url
            else Settings(var_dir=tmp_path / name)
        )
        process = routing_process.build(settings, clock=lambda: NOW)
        await process.runtime.db.create_tables(process.runtime.tables)
        await process.routing.catalogues.load()
        built.append(process)
    yield built
    for process in built:
        await process.runtime.db.dispose()
    if request.param == "postgresql" and url:
        db = Database(url)
        async with db.engine.begin() as conn:
            for prefix in prefixes:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}routing" CASCADE'))
        await db.dispose()


async def apply(process: RoutingProcess, events: Sequence[Envelope]) -> None:
    async with process.runtime.db.transaction() as session:
        await process.routing.apply(session, events)


async def contents(process: RoutingProcess) -> dict[str, list[Any]]:
    """Every routing row, and every outbox event without its (random) event id."""
    async with process.runtime.db.sessions() as session:
        conn = await session.connection()
        tables = {
            "assignment": store.ASSIGNMENTS,
            "chain_step": store.CHAIN_STEPS,
            "manual_queue": store.MANUAL_QUEUE,
        }
        found: dict[str, list[Any]] = {
            name: [
                dict(row._mapping)
                for row in await conn.execute(select(target).order_by(*target.primary_key.columns))
            ]
            for name, target in tables.items()
        }
        outbox = store.OUTBOX
        found["outbox"] = [
            (topic, key, decode(value).model_dump(exclude={"event_id"}))
            for topic, key, value in await conn.execute(
                select(outbox.c.topic, outbox.c.key, outbox.c.value).order_by(outbox.c.id)
            )
        ]
        return found


async def test_a_mixed_batch_writes_what_its_events_write_one_at_a_time(
    processes: list[RoutingProcess],
) -> None:
    batched, single = processes
    for process in processes:
        await apply(process, STORED)
    events = mixed_batch()
    await apply(batched, events)
    for event in events:
        await apply(single, [event])
    got, expected = await contents(batched), await contents(single)
    assert got == expected
    assignments = {row["dossier_code"]: row for row in got["assignment"]}
    assert set(assignments) == {"A", "B", "S1", "S2", "S3"}
    assert [row["dossier_code"] for row in got["manual_queue"]] == ["U"]
    assert (assignments["A"]["current_step"], assignments["A"]["office"]) == (1, POLICE)
    assert assignments["A"]["clock_due_at"] == MONDAY + timedelta(hours=40)
    assert (assignments["S1"]["current_step"], assignments["S1"]["office"]) == (2, BHXH)
    assert assignments["S1"]["action_sequence"] == 2
    assert assignments["S2"]["closed_at"] == MONDAY + timedelta(hours=6)
    assert (assignments["S3"]["current_step"], assignments["S3"]["office"]) == (1, POLICE)
    steps = {(row["dossier_code"], row["position"]): row for row in got["chain_step"]}
    assert steps["S1", 1]["office"] == OTHER
    assert steps["S1", 1]["ended_at"] == MONDAY + timedelta(hours=5)
    assert steps["A", 1]["started_at"] == MONDAY + timedelta(hours=2)
    assert steps["A", 1]["due_at"] is not None
    assert steps["S3", 1]["started_at"] == MONDAY + timedelta(hours=7)
    assert [steps["S2", p]["clock_due_at"] for p in range(3)] == [
        MONDAY + timedelta(hours=30),
        None,
        None,
    ]
    assert [(event["type"], event["dossier_code"]) for _, _, event in got["outbox"][3:]] == [
        ("dossier.routed", "A"),
        ("dossier.routed", "B"),
        ("dossier.unroutable", "U"),
    ]
