"""``motcua sla rebuild``: the tracker's tables rebuilt from the topics.

Reads the sla topic (what was already announced), then the lifecycle and routing topics
(the facts), each from the start to its end when its reading starts, in batches, and
replaces the sla tables with the fold of the facts, batch by batch (see
``services.sla.rebuild``); it prints the offsets it read up to. Stop the sla service
first.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.sla import process
from services.sla.app.core import FOLD_MEMO_SIZE
from services.sla.rebuild import rebuild
from shared.events import Envelope, UndecodableEvent, decode
from shared.kafka_security import client_security
from shared.settings import get_settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_SLA, TopicSpec


@dataclass(slots=True)
class TopicStream:
    """The decodable events of ``topics`` from their start to at least their end when
    ``batches`` starts, as batches of at most ``batch`` records, in order per partition;
    ``ends`` is then where each partition's reading stopped (exclusive): the end taken at
    the start, or beyond it by the records of the last fetch (the local broker's end
    offsets may lag records already acknowledged). ``client``: connection options
    (``shared.kafka_security.client_security``).

    Undecodable records are skipped: the consumers dead-lettered them already. Memory is
    bounded by the batch and the client's fetch buffers, whatever the topics' size.
    """

    bootstrap: str
    topics: tuple[TopicSpec, ...]
    batch: int
    client: dict[str, Any] = field(default_factory=dict)
    ends: dict[TopicPartition, int] = field(default_factory=dict)

    async def batches(self) -> AsyncIterator[list[Envelope]]:
        """Read the topics; each batch is one fetch of some partitions."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            group_id=None,
            max_poll_records=self.batch,
            **self.client,
        )
        await consumer.start()
        try:
            await consumer.topics()
            parts = [
                TopicPartition(spec.name, p)
                for spec in self.topics
                for p in sorted(consumer.partitions_for_topic(spec.name) or ())
            ]
            if not parts:
                return
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            self.ends = await consumer.end_offsets(parts)
            pending = {tp for tp in parts if self.ends[tp] > 0}
            while pending:
                fetched = await consumer.getmany(*pending, timeout_ms=500, max_records=self.batch)
                events: list[Envelope] = []
                for tp, records in fetched.items():
                    events += _decoded(r.value for r in records)
                    if (position := await consumer.position(tp)) >= self.ends[tp]:
                        self.ends[tp] = position
                        pending.discard(tp)
                if events:
                    yield events
        finally:
            await consumer.stop()


def _decoded(values: Iterable[bytes | None]) -> list[Envelope]:
    events: list[Envelope] = []
    for value in values:
        try:
            events.append(decode(value or b""))
        except UndecodableEvent:
            continue
    return events


def _offsets(ends: dict[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]={end}" for tp, end in sorted(ends.items()))


GC_YOUNG_THRESHOLD = 50_000
"""Allocations between two collections of the youngest generation during a rebuild."""


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Collect cyclic garbage less often while the rebuild runs: it allocates millions
    of short-lived objects (events, rows, statement parameters) that reference counting
    frees anyway, and with the default threshold (700) the collector kept walking them
    and the growing long-lived ones (announced codes, the fold memo): a third of the
    rebuild's CPU, measured at 20,000 dossiers. What exists before (modules, the
    calendar) is frozen out of the collections. Cycles are still collected, in larger
    steps; the previous setting comes back afterwards."""
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, previous[1], previous[2])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


async def _rebuild(batch: int) -> None:
    settings = get_settings()
    tracker = process.standalone(settings, fold_memo=FOLD_MEMO_SIZE)
    try:
        await process.prepare(tracker, settings)
        began = time.perf_counter()
        client = client_security(settings)
        bootstrap = settings.kafka_bootstrap_servers
        facts = TopicStream(bootstrap, (DOSSIER_LIFECYCLE, DOSSIER_ROUTING), batch, client)
        published = TopicStream(bootstrap, (DOSSIER_SLA,), batch, client)
        with _fewer_collections():
            report = await rebuild(tracker, facts.batches(), published.batches(), batch=batch)
        seconds = time.perf_counter() - began
    finally:
        await tracker.db.dispose()
    typer.echo(
        f"rebuilt {report.clocks} clocks from {report.events_applied} events "
        f"({report.flags_known} flags already announced) in {seconds:.1f} s"
    )
    typer.echo(f"read up to (exclusive) {_offsets(facts.ends | published.ends) or 'nothing'}")


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
