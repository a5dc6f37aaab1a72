"""``motcua sla rebuild``: the tracker's tables rebuilt from the topics.

Reads the lifecycle and routing topics (the facts) and the sla topic (what was already
announced) from the start to their current end, then replaces the sla tables with the
fold of the facts (see ``services.sla.rebuild``). Stop the sla service first.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.sla import process
from services.sla.rebuild import rebuild
from shared.events import Envelope, UndecodableEvent, decode
from shared.kafka_security import client_security
from shared.settings import get_settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_SLA, TopicSpec


async def read_topics(bootstrap: str, *topics: TopicSpec, **client: Any) -> list[Envelope]:
    """Every decodable event of ``topics`` up to their end now, in order per partition
    (``client``: connection options, ``shared.kafka_security.client_security``).

    Undecodable records are skipped: the consumers dead-lettered them already.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **client
    )
    await consumer.start()
    events: list[Envelope] = []
    try:
        await consumer.topics()
        parts = [
            TopicPartition(spec.name, p)
            for spec in topics
            for p in sorted(consumer.partitions_for_topic(spec.name) or ())
        ]
        if not parts:
            return events
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        pending = {tp for tp in parts if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    try:
                        events.append(decode(record.value or b""))
                    except UndecodableEvent:
                        continue
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return events


async def _rebuild(batch: int) -> None:
    settings = get_settings()
    tracker = process.standalone(settings)
    try:
        await process.prepare(tracker, settings)
        began = time.perf_counter()
        client = client_security(settings)
        facts = await read_topics(
            settings.kafka_bootstrap_servers, DOSSIER_LIFECYCLE, DOSSIER_ROUTING, **client
        )
        published = await read_topics(settings.kafka_bootstrap_servers, DOSSIER_SLA, **client)
        report = await rebuild(tracker, facts, published, batch=batch)
        seconds = time.perf_counter() - began
    finally:
        await tracker.db.dispose()
    typer.echo(
        f"rebuilt {report.clocks} clocks from {report.events_applied} events "
        f"({report.flags_known} flags already announced) in {seconds:.1f} s"
    )


def rebuild_command(
    batch: Annotated[int, typer.Option("--batch", min=1, help="Events per transaction.")] = 2000,
) -> None:
    """Replace the sla tables with the fold of the topics (stop the sla service first)."""
    asyncio.run(_rebuild(batch))


def register(app: typer.Typer) -> None:
    """Add the ``sla`` group to the motcua command line."""
    sla = typer.Typer(help="The SLA tracker's tables.")
    sla.command("rebuild")(rebuild_command)
    app.add_typer(sla, name="sla")
