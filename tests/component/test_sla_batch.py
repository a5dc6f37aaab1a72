"""SLA's consumer hop in batches: a constant number of statements whatever the batch's
size, and the same state and outbox as event-by-event application.

Drives ``Tracker.apply`` in one transaction per batch, as the consumer does, on a real
SQLite file; statements are counted on the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from services.sla import process as sla_process
from services.sla import store
from shared.db import Database, table
from shared.events import DossierAction, Envelope, decode
from shared.outbox import OutboxRow
from shared.settings import Settings
from tests.component.test_sla_tracker import VirtualClock, action, received, vn


def dossier(index: int) -> list[Envelope]:
    """A dossier received and resolved the same morning (a clock start and a class)."""
    code = f"000.00.00.H56-260601-{index:04d}"
    return [
        received(code),
        action(1, DossierAction.RESOLVE, "2026-06-01 10:00", code=code),
    ]


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements executed on ``db`` inside the block."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def started(tmp_path: Path, name: str) -> sla_process.SlaProcess:
    clock = VirtualClock(vn("2026-06-02 08:00"))
    process = sla_process.build(Settings(var_dir=tmp_path / name), clock=clock)
    await process.runtime.db.create_tables(process.runtime.tables)
    return process


async def apply(process: sla_process.SlaProcess, events: list[Envelope]) -> list[str]:
    db = process.runtime.db
    with statements(db) as seen:
        async with db.transaction() as session:
            await process.tracker.apply(session, events)
    return seen


async def outbox_types(db: Database) -> list[tuple[str | None, str]]:
    outbox = table(OutboxRow)
    async with db.sessions() as session:
        conn = await session.connection()
        rows = await conn.execute(select(outbox.c.key, outbox.c.value).order_by(outbox.c.id))
        return [(key, decode(value).type) for key, value in rows]


async def test_a_batch_costs_the_same_statements_whatever_its_size(tmp_path: Path) -> None:
    process = await started(tmp_path, "sizes")
    counts = []
    for dossiers in (range(2), range(100, 300)):
        new = await apply(process, [dossier(i)[0] for i in dossiers])
        known = await apply(process, [dossier(i)[1] for i in dossiers])  # updates, finishes
        counts.append((len(new), len(known)))
    assert counts[0] == counts[1]
    assert counts[1][1] <= 7  # 3 reads; the clocks, the ledger, the flags, the outbox
    await process.runtime.db.dispose()


async def test_a_batch_writes_what_one_event_at_a_time_writes(tmp_path: Path) -> None:
    events = [e for i in range(20) for e in dossier(i)]
    batched = await started(tmp_path, "batched")
    single = await started(tmp_path, "single")
    await apply(batched, events)
    for envelope in events:
        await apply(single, [envelope])
    assert await outbox_types(batched.runtime.db) == await outbox_types(single.runtime.db)
    types = [t for _, t in await outbox_types(batched.runtime.db)]
    assert types == ["sla.clock_started", "sla.finished"] * 20
    for code in (f"000.00.00.H56-260601-{i:04d}" for i in range(20)):
        one, other = await batched.tracker.get(code), await single.tracker.get(code)
        assert one is not None
        assert other is not None
        assert one[0].outcome == other[0].outcome == "early"
        assert one[1] == other[1]
    await batched.runtime.db.dispose()
    await single.runtime.db.dispose()


async def test_a_redelivered_batch_announces_nothing_twice(tmp_path: Path) -> None:
    process = await started(tmp_path, "again")
    events = [e for i in range(5) for e in dossier(i)]
    await apply(process, events)
    await apply(process, events)
    types = [t for _, t in await outbox_types(process.runtime.db)]
    assert types.count("sla.finished") == 5
    assert types.count("sla.clock_started") == 5
    async with process.runtime.db.sessions() as session:
        ledgers = await store.load_ledgers(
            session, [f"000.00.00.H56-260601-{i:04d}" for i in range(5)]
        )
    assert all(len(entries) == 1 for entries in ledgers.values())
    await process.runtime.db.dispose()
