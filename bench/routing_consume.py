"""Routing's consumer hop alone: batches of ``dossier.received`` records through the same
``BatchConsumer`` (decode, inbox, ``Routing.apply``, one transaction) the service runs.

Run: ``.venv/bin/python bench/routing_consume.py [--events N] [--batch B] [--profile]``
(defaults 5,000 and 500, the consumer's ``consumer_batch_max``). Each event receives one
dossier of procedure 1.010801 (a three-step chain in the seed catalogue) with a due
time, so the hop decides it, dates its first step and puts ``dossier.routed`` in the
outbox. Records are fed in batches of B on a fresh SQLite file (or ``--database-url``
for PostgreSQL: a schema of the run's own, dropped afterwards); prints events/s and CPU
seconds per 1,000 events, and with ``--profile`` the top of a cProfile by cumulative
time. It checks what it wrote: one assignment, three chain steps and one outbox row per
event.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import pstats
import tempfile
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchkit import Record, consume_timed, records_of
from sqlalchemy import func, select, text

from services.routing import store
from services.routing.process import build
from shared.calendar import VN_TZ
from shared.db import table
from shared.events import Channel, DossierReceived, Envelope, TimeLimit
from shared.outbox import OutboxRow
from shared.settings import Settings

ORIGIN = datetime(2026, 12, 2, 9, 0, tzinfo=VN_TZ)


def received(index: int) -> Envelope:
    """A dossier's reception."""
    at = ORIGIN + timedelta(seconds=index % 3600)
    payload = DossierReceived(
        procedure_code="1.010801",
        channel=Channel.COUNTER,
        receiving_unit="000.00.00.H56",
        received_at=at,
        due_at=at + timedelta(days=5),
        field="Hộ tịch",
        time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
        supplement_rule="pause",
        catalogue_version=1,
    )
    code = f"000.00.00.H56-261202-{index:06d}"
    return Envelope.wrap(payload, occurred_at=at, source="bench", dossier_code=code)


def records(count: int) -> list[Record]:
    """``count`` receptions, in topic order."""
    return records_of(received(i) for i in range(count))


async def run(count: int, batch: int, url: str | None, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"bench{uuid.uuid4().hex[:8]}_"
        settings = (
            Settings(var_dir=Path(tmp))
            if url is None
            else Settings(var_dir=Path(tmp), database_url=url, db_schema_prefix=prefix)
        )
        built = build(settings, clock=lambda: ORIGIN + timedelta(hours=1))
        db = built.runtime.db
        await db.create_tables(built.runtime.tables)
        await built.routing.catalogues.load()
        consumer = built.runtime.consumer(built.routing.apply)
        feed = records(count)
        measured = await consume_timed(consumer, feed, batch, profile=profile)
        wall, cpu, profiler = measured.wall, measured.cpu, measured.profiler
        async with db.sessions() as session:
            conn = await session.connection()
            counts = [
                (await conn.execute(select(func.count()).select_from(table(model)))).scalar()
                for model in (store.Assignment, store.ChainStepRow, OutboxRow)
            ]
        if url is not None:
            async with db.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}routing" CASCADE'))
        await db.dispose()
    assert counts == [count, 3 * count, count], counts
    print(
        f"{platform.node()} python {platform.python_version()}, batch {batch}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{count:,} events in {wall:.2f} s: {count / wall:,.0f} events/s; "
        f"CPU {cpu / count * 1000:.3f} s per 1,000 events"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.events, args.batch, args.database_url, args.profile))


if __name__ == "__main__":
    main()
