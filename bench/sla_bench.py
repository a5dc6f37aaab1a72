"""The SLA tracker with many open dossiers: store size, finding and flagging, rebuild.

Run: ``.venv/bin/python bench/sla_bench.py [OPEN] [REBUILD]`` (defaults 1,000,000 and
100,000). Fills a fresh SQLite file with OPEN open dossiers (2 working days each,
received over four weeks of June 2027, summaries computed with the domain's fold), then
measures, at an instant when 500 of them have a flag due:

- the next deadline of all clocks (one index lookup) and the query plan;
- one scheduler round: claim by the index, refold, insert flags and outbox rows;
- on the real clock, beside those clocks: how long after its due time a dossier due
  2 s ahead gets its overdue flag (the scheduler sleeps until the next deadline);
- ``rebuild`` of REBUILD dossiers from their ``dossier.received`` events.
"""

from __future__ import annotations

import asyncio
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, text

from services.sla import store
from services.sla.app import Tracker
from services.sla.domain import Terms, replay
from services.sla.process import standalone
from services.sla.rebuild import rebuild
from shared.calendar import VN_TZ, Duration
from shared.clock import utc_now
from shared.db import table
from shared.events import (
    Channel,
    DossierReceived,
    Envelope,
    SlaWarning,
    TimeLimit,
    decode,
)
from shared.outbox import OutboxRow
from shared.settings import Settings

ORIGIN = datetime(2027, 6, 1, 7, 30, tzinfo=VN_TZ)
"""In the future, so that the real-clock measurement flags only its own dossier."""
LIMIT = Duration(2, "working_days")
CHUNK = 20_000


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def code(index: int) -> str:
    return f"000.00.{index // 10_000:02d}.H56-2706{index % 28 + 1:02d}-{index % 10_000:04d}"


def received_at(index: int) -> datetime:
    return ORIGIN + timedelta(minutes=(index * 37) % (28 * 24 * 60))


async def fill(tracker: Tracker, count: int) -> float:
    """Insert ``count`` open clocks; returns seconds. Folds are cached per start minute."""
    folds: dict[datetime, tuple[datetime | None, datetime | None, datetime | None]] = {}
    began = time.perf_counter()
    db = tracker.db
    for start in range(0, count, CHUNK):
        rows = []
        for index in range(start, min(start + CHUNK, count)):
            at = received_at(index)
            if at not in folds:
                clock = replay(Terms(at, LIMIT, "pause"), [], tracker.calendar, tracker.policy)
                folds[at] = (
                    clock.due_at,
                    clock.due_soon_at(tracker.policy),
                    clock.next_deadline(tracker.policy, []),
                )
            due, soon, nxt = folds[at]
            rows.append(
                {
                    "code": code(index),
                    "version": 1,
                    "started_at": at,
                    "limit_value": "2",
                    "limit_unit": "working_days",
                    "supplement_rule": "pause",
                    "procedure_code": "2.000635",
                    "receiving_unit": "000.00.00.H56",
                    "channel": "counter",
                    "office": f"000.00.{index % 20:02d}.H56",
                    "phase": "running",
                    "due_at": due,
                    "due_soon_at": soon,
                    "next_deadline": nxt,
                    "tracked_at": at,
                }
            )
        async with db.transaction() as session:
            conn = await session.connection()
            await conn.execute(store.CLOCKS.insert(), rows)
    return time.perf_counter() - began


def received(index: int, *, at: datetime | None = None, due_at: datetime | None = None) -> Envelope:
    at = at or received_at(index)
    return Envelope.wrap(
        DossierReceived(
            procedure_code="2.000635",
            channel=Channel.COUNTER,
            receiving_unit="000.00.00.H56",
            received_at=at,
            due_at=due_at,
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(2), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        occurred_at=at,
        source="bench",
        dossier_code=code(index),
    )


async def real_clock_overdue(var_dir: Path, index: int) -> float:
    """Seconds after its due time that a dossier due 2 s ahead is flagged, real clock."""
    tracker = standalone(Settings(var_dir=var_dir))
    now = utc_now()
    event = received(index, at=now, due_at=now + timedelta(seconds=2))
    async with tracker.db.transaction() as session:
        await tracker.apply(session, [event])
    scheduler = asyncio.create_task(tracker.run_scheduler())
    outbox = table(OutboxRow)
    flagged: Envelope | None = None
    try:
        for _ in range(200):
            await asyncio.sleep(0.05)
            async with tracker.db.sessions() as session:
                conn = await session.connection()
                values = await conn.execute(
                    select(outbox.c.value).where(outbox.c.key == event.dossier_code)
                )
                events = [decode(v) for v in values.scalars()]
            overdue = [e for e in events if e.payload.get("kind") == "overdue"]
            if overdue:
                flagged = overdue[0]
                break
    finally:
        scheduler.cancel()
        await asyncio.gather(scheduler, return_exceptions=True)
        await tracker.db.dispose()
    assert flagged is not None, "no overdue flag within 10 s"
    warning = flagged.body(SlaWarning)
    return (warning.at - warning.due_at).total_seconds()


async def main(count: int, rebuild_count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        at = [ORIGIN]
        tracker = standalone(Settings(var_dir=Path(tmp) / "live"), clock=lambda: at[0])
        await tracker.db.create_tables(store.REBUILT_TABLES)
        seconds = await fill(tracker, count)
        print(f"fill {count:,} open clocks: {seconds:.1f} s ({count / seconds:,.0f}/s)")
        size = (Path(tmp) / "live" / "sla.db").stat().st_size
        print(f"sla.db size: {size / 2**20:.0f} MiB ({size / count:.0f} bytes/dossier)")

        async with tracker.db.sessions() as session:
            conn = await session.connection()
            deadline = store.CLOCKS.c.next_deadline
            ordered = await conn.execute(
                select(deadline)
                .where(deadline.is_not(None))
                .order_by(deadline)
                .limit(1)
                .offset(499)
            )
            due_at: datetime = ordered.scalar_one()
            plan = await conn.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT code FROM tracked_dossier "
                    "WHERE next_deadline <= :now ORDER BY next_deadline LIMIT 500"
                ),
                {"now": due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")},
            )
            print("claim plan:", "; ".join(str(r[-1]) for r in plan))
        began = time.perf_counter()
        async with tracker.db.sessions() as session:
            earliest = await store.earliest_deadline(session)
        print(f"next deadline of all clocks: {(time.perf_counter() - began) * 1000:.2f} ms")
        assert earliest is not None
        at[0] = due_at
        began = time.perf_counter()
        claimed = await tracker.flag_round(due_at)
        elapsed = time.perf_counter() - began
        print(f"one scheduler round: {claimed} clocks flagged in {elapsed * 1000:.0f} ms")
        print(f"peak RSS with {count:,} open clocks: {peak_rss_mib():.0f} MiB")
        await tracker.db.dispose()
        late = await real_clock_overdue(Path(tmp) / "live", count)
        print(f"real clock, {count:,} open clocks: overdue emitted {late * 1000:.0f} ms after due")

        rebuilt = standalone(Settings(var_dir=Path(tmp) / "rebuilt"), clock=lambda: ORIGIN)
        await rebuilt.db.create_tables(store.REBUILT_TABLES)
        facts = [received(i) for i in range(rebuild_count)]
        began = time.perf_counter()
        report = await rebuild(rebuilt, facts, [])
        seconds = time.perf_counter() - began
        print(
            f"rebuild {report.clocks:,} clocks from {report.events_applied:,} events: "
            f"{seconds:.1f} s ({report.events_applied / seconds:,.0f} events/s)"
        )
        await rebuilt.db.dispose()
    print(f"peak RSS after the rebuild (its events in memory): {peak_rss_mib():.0f} MiB")
    print(f"python {platform.python_version()} on {platform.machine()}")


if __name__ == "__main__":
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000,
            int(sys.argv[2]) if len(sys.argv) > 2 else 100_000,
        )
    )
