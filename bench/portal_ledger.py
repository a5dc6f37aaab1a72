"""The portal's consumer hop alone: batches of lifecycle, routing and contact records
through the same ``BatchConsumer`` (decode, inbox, ``Ledger.apply``, one transaction) the
service runs.

Run: ``.venv/bin/python bench/portal_ledger.py [--dossiers N] [--batch B] [--profile]``
(defaults 4,000 and 500, the consumer's ``consumer_batch_max``; the pipeline's batches
are smaller, try ``--batch 25``). Each dossier brings five events: ``dossier.received``,
``dossier.contact``, ``dossier.routed``, then a resolving and a returning action (three
states to send). Records are fed in batches of B, dossiers interleaved, on a fresh SQLite
file (or ``--database-url`` for PostgreSQL). Prints events/s and the CPU seconds per
1,000 events of the whole hop and of ``Ledger.apply`` alone, and with ``--profile`` the
top of a cProfile by internal time. It checks what it wrote: one ledger row per dossier
with its facts, applicant and office, and three pending states.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import pstats
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchkit import Record, consume_timed, records_of
from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.portal import store
from services.portal.process import build
from shared.calendar import VN_TZ
from shared.events import (
    Channel,
    Contact,
    DossierAction,
    DossierActionRecorded,
    DossierContact,
    DossierReceived,
    DossierRouted,
    Envelope,
    Payload,
    TimeLimit,
)
from shared.settings import Settings

ORIGIN = datetime(2026, 12, 2, 9, 0, tzinfo=VN_TZ)
UNIT = "000.00.00.H56"
EVENTS_PER_DOSSIER = 5
STATES_PER_DOSSIER = 3


def _action(what: DossierAction, sequence: int, at: datetime, status: int) -> Payload:
    return DossierActionRecorded.model_validate(
        {
            "action": what,
            "sequence": sequence,
            "at": at,
            "status": what.value,
            "national_status": status,
        }
    )


def events(index: int) -> list[Envelope]:
    """A dossier's reception, contact, routing, resolution and return."""
    code = f"{UNIT}-261202-{index:06d}"
    at = ORIGIN + timedelta(seconds=index % 3600)
    payloads: list[Payload] = [
        DossierReceived(
            procedure_code="2.000635",
            channel=Channel.COUNTER,
            receiving_unit=UNIT,
            received_at=at,
            due_at=at + timedelta(days=2),
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(2), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        DossierContact(
            applicant=Contact(name="Phạm Thị Dung", phone="0912000333"),
            procedure_code="2.000635",
            receiving_unit=UNIT,
        ),
        DossierRouted(
            procedure_code="2.000635",
            office=f"000.00.{index % 20:02d}.H56",
            field="Hộ tịch",
            rule="bench",
            catalogue_version=1,
        ),
        _action(DossierAction.RESOLVE, 1, at + timedelta(hours=2), 9),
        _action(DossierAction.RETURN_RESULT, 2, at + timedelta(hours=3), 10),
    ]
    return [Envelope.wrap(p, occurred_at=at, source="bench", dossier_code=code) for p in payloads]


def records(count: int) -> list[Record]:
    """Every dossier's events, dossiers interleaved as partitions deliver them."""
    return records_of(event for index in range(count) for event in events(index))


async def run(count: int, batch: int, url: str | None, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(var_dir=Path(tmp), database_url=url)
        built = build(settings, clock=lambda: ORIGIN + timedelta(days=1))
        db = built.runtime.db
        await db.create_tables(built.runtime.tables)
        in_apply = 0.0

        async def timed(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
            nonlocal in_apply
            started = time.process_time()
            await built.ledger.apply(session, envelopes)
            in_apply += time.process_time() - started

        consumer = built.runtime.consumer(timed)
        feed = records(count)
        measured = await consume_timed(consumer, feed, batch, profile=profile)
        wall, cpu, profiler = measured.wall, measured.cpu, measured.profiler
        async with db.sessions() as session:
            conn = await session.connection()
            dossiers = (
                await conn.execute(
                    select(func.count())
                    .select_from(store.TABLES[0])
                    .where(
                        store.TABLES[0].c.facts.is_not(None),
                        store.TABLES[0].c.applicant.is_not(None),
                        store.TABLES[0].c.office.is_not(None),
                    )
                )
            ).scalar()
            states = (
                await conn.execute(select(func.count()).select_from(store.TABLES[1]))
            ).scalar()
        await db.dispose()
    assert (dossiers, states) == (count, STATES_PER_DOSSIER * count), (dossiers, states)
    per_k = 1000 / len(feed)
    print(f"{platform.node()} python {platform.python_version()}, batch {batch}")
    print(
        f"{len(feed):,} events ({count:,} dossiers) in {wall:.2f} s: "
        f"{len(feed) / wall:,.0f} events/s; CPU per 1,000 events: hop {cpu * per_k:.3f} s, "
        f"Ledger.apply {in_apply * per_k:.3f} s"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dossiers", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.dossiers, args.batch, args.database_url, args.profile))


if __name__ == "__main__":
    main()
