"""What the benches share (each bench imports it as a sibling: `python bench/<name>.py`
puts this folder first on the path): the dossier they post, percentiles, the machine,
and the harness of the in-process hop benches (records fed to a service's own
``BatchConsumer`` in batches, timed)."""

from __future__ import annotations

import cProfile
import os
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.events import PAYLOAD_TYPES, Envelope
from shared.inbox import BatchConsumer

DOSSIER = {
    "procedure_code": "2.000635",
    "channel": "counter",
    "receiving_unit": "000.00.00.H56",
    "applicant": {"name": "Nguyễn Văn A", "phone": "0912345678"},
    "documents": ["Tờ khai"],
}
"""A same-day dossier at the counter (cấp bản sao trích lục hộ tịch), as a clerk posts it."""


def dossier(n: int) -> dict[str, object]:
    """``DOSSIER`` with the ``n``-th applicant's own phone: notify sends one recipient's
    messages one after another, so one phone for every dossier would measure that queue
    rather than the stack."""
    return {**DOSSIER, "applicant": {"name": "Nguyễn Văn A", "phone": f"09{n % 10**8:08d}"}}


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of the sorted values fall (nearest rank)."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def machine() -> str:
    """CPUs, their model and Python's version, for the results' header."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    return f"{os.cpu_count()} CPUs, {cpu}, Python {platform.python_version()}"


@dataclass(frozen=True, slots=True)
class Record:
    """A consumed record, as ``BatchConsumer`` reads it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def records_of(envelopes: Iterable[Envelope]) -> list[Record]:
    """The envelopes as records of one partition of their topics, in the given order
    (each dossier's order is its topic's)."""
    return [
        Record(PAYLOAD_TYPES[e.type].topic.name, 0, offset, e.key, e.encode())
        for offset, e in enumerate(envelopes)
    ]


@dataclass(frozen=True, slots=True)
class Timed:
    """Wall and CPU seconds of a run (and its profile when one was asked for)."""

    wall: float
    cpu: float
    profiler: cProfile.Profile | None


async def consume_timed(
    consumer: BatchConsumer, feed: Sequence[Record], batch: int, *, profile: bool
) -> Timed:
    """Feed ``feed`` to ``consumer`` in batches of ``batch``, as the broker would."""
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    for start in range(0, len(feed), batch):
        await consumer.consume(feed[start : start + batch])
    if profiler:
        profiler.disable()
    return Timed(time.perf_counter() - wall, time.process_time() - cpu, profiler)
