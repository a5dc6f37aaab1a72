"""Notify's consumer hop alone: batches of lifecycle, contact and SLA records through the
same ``BatchConsumer`` (decode, inbox, messages then the report projection, one
transaction) the service runs.

Run: ``.venv/bin/python bench/notify_consume.py [--dossiers N] [--batch B] [--profile]``
(defaults 2,000 and 500, the consumer's ``consumer_batch_max``). Each dossier brings
``dossier.contact``, ``dossier.received``, ``sla.clock_started``, a resolving action and
``sla.finished``; every fourth also a supplement request, every fifth an
``apology_needed`` warning (its office head is on file: an office e-mail). Records are
fed in batches of B, dossiers interleaved as partitions deliver them, on a fresh SQLite
file (or ``--database-url`` for PostgreSQL); prints events/s and the CPU per 1,000
events, and with ``--profile`` the top of a cProfile by cumulative and internal time. It
checks what it wrote: the messages by trigger and the report facts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import pstats
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchkit import Record, consume_timed, records_of
from sqlalchemy import func, select

from services.notify import store
from services.notify.process import build, consume_apply
from services.notify.reports.store import ReportFact
from services.notify.settings import NotifySettings
from shared.calendar import VN_TZ
from shared.db import table
from shared.events import (
    Channel,
    ClockStarted,
    Contact,
    DossierAction,
    DossierActionRecorded,
    DossierContact,
    DossierReceived,
    Envelope,
    Payload,
    SlaFinished,
    SlaWarning,
    TimeLimit,
)
from shared.settings import Settings

ORIGIN = datetime(2026, 12, 2, 9, 0, tzinfo=VN_TZ)
UNIT = "000.00.00.H56"
OFFICE_EVERY = 5
SUPPLEMENT_EVERY = 4


def events(index: int) -> list[Envelope]:
    """One dossier's events, in the order each topic has them."""
    code = f"{UNIT}-261202-{index:06d}"
    at = ORIGIN + timedelta(seconds=index % 3600)
    due = at + timedelta(days=2)
    payloads: list[Payload] = [
        DossierContact(
            applicant=Contact(name="Trần Thị B", phone="0987654321", email="b@example.vn"),
            procedure_code="2.000635",
            receiving_unit=UNIT,
        ),
        DossierReceived(
            procedure_code="2.000635",
            channel=Channel.COUNTER,
            receiving_unit=UNIT,
            received_at=at,
            due_at=due,
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(2), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        ClockStarted(started_at=at, due_at=due),
    ]
    sequence = 1
    if index % SUPPLEMENT_EVERY == 0:
        payloads.append(_action(DossierAction.REQUEST_SUPPLEMENT, sequence, at))
        sequence += 1
    if index % OFFICE_EVERY == 0:
        payloads.append(
            SlaWarning(
                kind="apology_needed",
                office=UNIT,
                due_at=due,
                working_hours_left=2.5,
                at=due - timedelta(hours=3),
            )
        )
    payloads.append(_action(DossierAction.RESOLVE, sequence, at + timedelta(hours=2)))
    payloads.append(
        SlaFinished(
            outcome="early",
            finished_at=at + timedelta(hours=2),
            due_at=due,
            supplement_requests=0,
            extended=False,
            office=UNIT,
            procedure_code="2.000635",
            receiving_unit=UNIT,
            channel=Channel.COUNTER,
        )
    )
    return [Envelope.wrap(p, occurred_at=at, source="bench", dossier_code=code) for p in payloads]


def _action(action: DossierAction, sequence: int, at: datetime) -> DossierActionRecorded:
    return DossierActionRecorded(
        action=action, sequence=sequence, at=at, status=action.value, national_status=4
    )


def records(count: int) -> list[Record]:
    """Every dossier's events, dossiers interleaved (each topic keeps a dossier's order)."""
    return records_of(event for index in range(count) for event in events(index))


async def run(count: int, batch: int, url: str | None, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(var_dir=Path(tmp))
        if url:
            settings = settings.model_copy(update={"database_url": url})
        built = build(
            settings,
            NotifySettings(sms_sinks="file", email_sinks="file"),
            clock=lambda: ORIGIN + timedelta(days=1),
        )
        db = built.runtime.db
        await db.create_tables(built.runtime.tables)
        async with db.transaction() as session:
            await store.put_head(
                session, UNIT, name="Nguyễn Văn A", email="head@example.vn", now=ORIGIN
            )
        consumer = built.runtime.consumer(consume_apply(built.notifier))
        feed = records(count)
        measured = await consume_timed(consumer, feed, batch, profile=profile)
        wall, cpu, profiler = measured.wall, measured.cpu, measured.profiler
        async with db.sessions() as session:
            conn = await session.connection()
            message = table(store.Message)
            by_trigger = Counter(
                {
                    str(t): int(n)
                    for t, n in await conn.execute(
                        select(message.c.trigger, func.count()).group_by(message.c.trigger)
                    )
                }
            )
            facts = (
                await conn.execute(select(func.count()).select_from(table(ReportFact)))
            ).scalar()
        await db.dispose()
    offices = len(range(0, count, OFFICE_EVERY))
    supplements = len(range(0, count, SUPPLEMENT_EVERY))
    wanted = {
        "received": 2 * count,
        "result_ready": 2 * count,
        "supplement_requested": 2 * supplements,
        "office_warning": offices,
    }
    assert by_trigger == Counter(wanted), by_trigger
    assert facts == count, facts
    print(
        f"{platform.node()} python {platform.python_version()}, batch {batch}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{len(feed):,} events ({count:,} dossiers) in {wall:.2f} s: "
        f"{len(feed) / wall:,.0f} events/s; CPU {cpu / len(feed) * 1000:.3f} s per 1,000 events"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dossiers", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.dossiers, args.batch, args.database_url, args.profile))


if __name__ == "__main__":
    main()
