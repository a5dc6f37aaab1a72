"""``motcua sla rebuild``: the tracker's tables rebuilt from the topics.

Reads the sla topic (what was already announced), then the lifecycle and routing topics
(the facts), each from the start to its end when its reading starts, in batches, and
replaces the sla tables with the fold of the facts, batch by batch (see
``services.sla.rebuild``); it prints the offsets it read up to. Stop the sla service
first.

With ``--workers N`` (default: the CPUs, at most the partitions) the tables are made
again once, then N processes replay at once, worker ``i`` the partitions whose index is
``i`` modulo N of all three topics: their partition counts are equal and every record
is keyed by its dossier's code, so a dossier's facts and announcements share a partition
index, and no two workers touch the same dossier. If the counts differ, one worker does
it all (and says why).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import resource
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from services.sla import process
from services.sla.app import Tracker
from services.sla.app.core import FOLD_MEMO_SIZE
from services.sla.rebuild import Replayed, count, replay, reset
from shared.events import Envelope, UndecodableEvent, decode
from shared.kafka_security import client_security
from shared.settings import Settings, get_settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_SLA, TopicSpec

Part = tuple[int, int]
"""A worker's share of the partitions: ``(i, n)``, the indexes equal to ``i`` modulo ``n``."""

FACTS = (DOSSIER_LIFECYCLE, DOSSIER_ROUTING)
PUBLISHED = (DOSSIER_SLA,)


@dataclass(slots=True)
class TopicStream:
    """The decodable events of ``topics`` from their start to their end, as batches of at
    most ``batch`` records, in order per partition; ``client``: connection options
    (``shared.kafka_security.client_security``).

    The end: the ends are asked again each time the reading reaches them, and reading
    goes on until they stay where it stopped. The local broker's end offsets may lag
    records it acknowledged (a rebuild right after a million records stopped 19 short);
    records written while it reads are read too (a restarted consumer skips them by its
    inbox). ``ends`` is then where each partition's reading stopped (exclusive).

    ``part`` ``(i, n)``: only the partitions whose index is ``i`` modulo ``n``.

    Undecodable records are skipped: the consumers dead-lettered them already. Memory is
    bounded by the batch and the client's fetch buffers, whatever the topics' size.
    """

    bootstrap: str
    topics: tuple[TopicSpec, ...]
    batch: int
    client: dict[str, Any] = field(default_factory=dict)
    part: Part = (0, 1)
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
            index, count = self.part
            parts = [
                TopicPartition(spec.name, p)
                for spec in self.topics
                for p in sorted(consumer.partitions_for_topic(spec.name) or ())
                if p % count == index
            ]
            if not parts:
                return
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            self.ends = await consumer.beginning_offsets(parts)
            while pending := await self._behind(consumer, parts):
                while pending:
                    fetched = await consumer.getmany(
                        *pending, timeout_ms=500, max_records=self.batch
                    )
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

    async def _behind(
        self, consumer: AIOKafkaConsumer, parts: Sequence[TopicPartition]
    ) -> set[TopicPartition]:
        """The partitions whose end is beyond where their reading stopped; their ends
        moved there."""
        latest = await consumer.end_offsets(list(parts))
        behind = {tp for tp in parts if latest[tp] > self.ends[tp]}
        self.ends |= {tp: latest[tp] for tp in behind}
        return behind


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


async def partition_counts(
    bootstrap: str, topics: Sequence[TopicSpec], client: dict[str, Any]
) -> dict[str, int]:
    """How many partitions each of ``topics`` has on the broker (0 if it is missing)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, **client)
    try:
        await consumer.start()
        await consumer.topics()
        return {t.name: len(consumer.partitions_for_topic(t.name) or ()) for t in topics}
    finally:
        await consumer.stop()


def split(counts: dict[str, int], workers: int) -> tuple[int, str | None]:
    """How many workers may share the topics, given their partition ``counts`` (0: not on
    the broker) and the number asked: at most the partitions, and one if the counts
    differ (a dossier's records would then sit at different indexes); why fewer, if
    fewer."""
    present = {n for n in counts.values() if n > 0}
    if workers == 1:
        return 1, None
    if not present:
        return 1, "one worker: none of the topics is on the broker"
    if len(present) > 1:
        listed = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
        return 1, f"one worker: the topics' partition counts differ ({listed})"
    (most,) = present
    if workers > most:
        return most, f"{most} workers: the topics have {most} partitions"
    return workers, None


@asynccontextmanager
async def _tracker(settings: Settings, *, fold_memo: int = 0) -> AsyncIterator[Tracker]:
    """The tracker over sla's database (``process.standalone``), its connections closed
    after use."""
    tracker = process.standalone(settings, fold_memo=fold_memo)
    try:
        yield tracker
    finally:
        await tracker.db.dispose()


@dataclass(frozen=True, slots=True)
class PartDone:
    """What one worker did: its replay, where it read to, its CPU seconds and peak RSS."""

    replayed: Replayed
    ends: dict[TopicPartition, int]
    cpu_seconds: float
    peak_mib: float


async def _replay(part: Part, batch: int) -> tuple[Replayed, dict[TopicPartition, int]]:
    settings = get_settings()
    client = client_security(settings)
    bootstrap = settings.kafka_bootstrap_servers
    facts = TopicStream(bootstrap, FACTS, batch, client, part)
    published = TopicStream(bootstrap, PUBLISHED, batch, client, part)
    async with _tracker(settings, fold_memo=FOLD_MEMO_SIZE) as tracker:
        with _fewer_collections():
            replayed = await replay(tracker, facts.batches(), published.batches(), batch=batch)
    return replayed, facts.ends | published.ends


def replay_part(part: Part, batch: int) -> PartDone:
    """Replay one part of the partitions (in a worker process of its own)."""
    replayed, ends = asyncio.run(_replay(part, batch))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return PartDone(replayed, ends, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _in_workers(workers: int, batch: int) -> list[PartDone]:
    """Replay the parts in ``workers`` processes at once (started afresh: ``spawn``, so
    no event loop, thread or connection of this process is copied into them)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(replay_part, (i, workers), batch) for i in range(workers)]
        return [future.result() for future in futures]


async def _count(settings: Settings) -> int:
    async with _tracker(settings) as tracker:
        return await count(tracker.db)


def _rebuild(batch: int, workers: int) -> None:
    """Make the tables again and replay the topics into them, in ``workers`` processes
    if the topics allow; print what each did."""
    began = time.perf_counter()
    settings = get_settings()
    try:
        counts = asyncio.run(_prepared(settings))
    except KafkaConnectionError:
        typer.echo(
            f"error: no broker answers at {settings.kafka_bootstrap_servers}; nothing was changed",
            err=True,
        )
        raise typer.Exit(2) from None
    workers, why = split(counts, workers)
    if why:
        typer.echo(why)
    done = [replay_part((0, 1), batch)] if workers == 1 else _in_workers(workers, batch)
    clocks = asyncio.run(_count(settings))
    seconds = time.perf_counter() - began
    applied = sum(d.replayed.events_applied for d in done)
    flags = sum(d.replayed.flags_known for d in done)
    typer.echo(
        f"rebuilt {clocks} clocks from {applied} events "
        f"({flags} flags already announced) in {seconds:.1f} s, {workers} worker(s)"
    )
    for index, part in enumerate(done):
        typer.echo(
            f"worker {index}: {part.replayed.events_applied} events, "
            f"{part.cpu_seconds:.1f} s CPU, peak RSS {part.peak_mib:.0f} MiB"
        )
    if workers > 1:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        typer.echo(f"this process (started the workers): peak RSS {own:.0f} MiB")
    ends: dict[TopicPartition, int] = {}
    for part in done:
        ends |= part.ends
    typer.echo(f"read up to (exclusive) {_offsets(ends) or 'nothing'}")


async def _prepared(settings: Settings) -> dict[str, int]:
    """The topics' partition counts (the broker answers, or nothing is dropped); then the
    migrations checked and the tables made again."""
    counts = await partition_counts(
        settings.kafka_bootstrap_servers, FACTS + PUBLISHED, client_security(settings)
    )
    async with _tracker(settings) as tracker:
        await process.prepare(tracker, settings)
        await reset(tracker.db)
    return counts


def rebuild_command(
    batch: Annotated[int, typer.Option("--batch", min=1, help="Events per transaction.")] = 2000,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes replaying at once, each its share of the partitions "
            "(default: the CPUs).",
        ),
    ] = None,
) -> None:
    """Replace the sla tables with the fold of the topics (stop the sla service first)."""
    _rebuild(batch, workers or os.cpu_count() or 1)


def register(app: typer.Typer) -> None:
    """Add the ``sla`` group to the motcua command line."""
    sla = typer.Typer(help="The SLA tracker's tables.")
    sla.command("rebuild")(rebuild_command)
    app.add_typer(sla, name="sla")
