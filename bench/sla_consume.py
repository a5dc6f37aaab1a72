"""SLA's consumer hop alone: batches of lifecycle and routing records through the same
``BatchConsumer`` (decode, inbox, ``Tracker.apply``, one transaction) the service runs.

Run: ``.venv/bin/python bench/sla_consume.py [--dossiers N] [--batch B] [--profile]``
(defaults 5,000 and 500, the consumer's ``consumer_batch_max``). Each dossier brings
three events: ``dossier.received``, ``dossier.routed`` and a resolving action (so the
hop starts a clock, routes it and finishes it: a clock start and a final class in the
outbox). Records are fed in batches of B in topic order on a fresh SQLite file (or
``--database-url`` for PostgreSQL); prints events/s and CPU µs per event, and with
``--profile`` the top of a cProfile by cumulative time. It checks what it wrote: one
clock, one ledger entry and two outbox rows per dossier.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import pstats
import tempfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchkit import Record, consume_timed, records_of
from sqlalchemy import func, select

from services.sla import store
from services.sla.process import build
from shared.calendar import VN_TZ
from shared.db import table
from shared.events import (
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    DossierRouted,
    Envelope,
    TimeLimit,
)
from shared.outbox import OutboxRow
from shared.settings import Settings

ORIGIN = datetime(2026, 12, 2, 9, 0, tzinfo=VN_TZ)


def events(index: int) -> list[Envelope]:
    """A dossier's reception, routing and resolution."""
    code = f"000.00.00.H56-261202-{index:06d}"
    at = ORIGIN + timedelta(seconds=index % 3600)
    received = DossierReceived(
        procedure_code="2.000635",
        channel=Channel.COUNTER,
        receiving_unit="000.00.00.H56",
        received_at=at,
        due_at=None,
        field="Hộ tịch",
        time_limit=TimeLimit(value=Decimal(2), unit="working_days"),
        supplement_rule="pause",
        catalogue_version=1,
    )
    routed = DossierRouted(
        procedure_code="2.000635",
        office=f"000.00.{index % 20:02d}.H56",
        field="Hộ tịch",
        rule="bench",
        catalogue_version=1,
    )
    resolved = DossierActionRecorded.model_validate(
        {
            "action": DossierAction.RESOLVE,
            "sequence": 1,
            "at": at + timedelta(hours=2),
            "status": DossierAction.RESOLVE.value,
            "national_status": 4,
        }
    )
    return [
        Envelope.wrap(p, occurred_at=at, source="bench", dossier_code=code)
        for p in (received, routed, resolved)
    ]


def records(count: int) -> list[Record]:
    """Every dossier's three events, dossiers interleaved as partitions deliver them."""
    return records_of(event for index in range(count) for event in events(index))


async def run(count: int, batch: int, url: str | None, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(var_dir=Path(tmp), **({"database_url": url} if url else {}))
        built = build(settings, clock=lambda: ORIGIN + timedelta(days=1))
        db = built.runtime.db
        await db.create_tables(built.runtime.tables)
        consumer = built.runtime.consumer(built.tracker.apply)
        feed = records(count)
        measured = await consume_timed(consumer, feed, batch, profile=profile)
        wall, cpu, profiler = measured.wall, measured.cpu, measured.profiler
        async with db.sessions() as session:
            conn = await session.connection()
            clocks = (await conn.execute(select(func.count()).select_from(store.CLOCKS))).scalar()
            ledger = (await conn.execute(select(func.count()).select_from(store.LEDGER))).scalar()
            outbox = table(OutboxRow)
            sent = (await conn.execute(select(func.count()).select_from(outbox))).scalar()
        await db.dispose()
    assert (clocks, ledger, sent) == (count, count, 2 * count), (clocks, ledger, sent)
    print(f"{platform.node()} python {platform.python_version()}, batch {batch}")
    print(
        f"{len(feed):,} events ({count:,} dossiers) in {wall:.2f} s: "
        f"{len(feed) / wall:,.0f} events/s; CPU {cpu / len(feed) * 1e6:,.0f} µs/event"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dossiers", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.dossiers, args.batch, args.database_url, args.profile))


if __name__ == "__main__":
    main()
