"""``motcua sla rebuild`` from a real broker: wall time and peak resident memory.

Run: ``.venv/bin/python bench/sla_rebuild.py [DOSSIERS] [--routed] [--workers N ...]``
(default 100,000 dossiers; ``--workers 1 2`` rebuilds twice from the same topics, back
to back). Starts a local tansu broker, produces one ``dossier.received`` per dossier (2
working days, received over four weeks of June 2027) on the lifecycle topic, and with
``--routed`` one ``dossier.routed`` (a two-step chain, so the tracker publishes due
times) on the routing topic; then runs ``motcua sla rebuild`` as a child process on a
fresh SQLite directory per run and reports its wall time, the CPU of the child and its
workers (``getrusage``), what the command says of each process (events, CPU, peak RSS),
and the clocks in the rebuilt database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from benchkit import machine
from sla_bench import code, received, received_at

from shared.events import ChainStep, DossierRouted, Envelope
from shared.localbroker import LocalBroker
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_SLA

CHUNK = 20_000
ROOT = Path(__file__).resolve().parent.parent


def routed(index: int) -> Envelope:
    unit = f"000.00.{index % 20:02d}.H56"
    return Envelope.wrap(
        DossierRouted(
            procedure_code="2.000635",
            office=unit,
            field="Hộ tịch",
            rule="bench",
            catalogue_version=1,
            steps=[ChainStep(office=unit, hours=Decimal(8)), ChainStep(office=unit, hours=8)],
        ),
        occurred_at=received_at(index),
        source="bench",
        dossier_code=code(index),
    )


async def produce(bootstrap: str, count: int, with_routed: bool) -> float:
    """Create the topics and produce the facts, in chunks; seconds taken."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = (DOSSIER_LIFECYCLE, DOSSIER_ROUTING, DOSSIER_SLA)
        await admin.create_topics([NewTopic(t.name, t.partitions, 1) for t in topics])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    began = time.perf_counter()
    try:
        for start in range(0, count, CHUNK):
            futures = []
            for index in range(start, min(start + CHUNK, count)):
                events = [(DOSSIER_LIFECYCLE.name, received(index))]
                if with_routed:
                    events.append((DOSSIER_ROUTING.name, routed(index)))
                for topic, event in events:
                    futures.append(await producer.send(topic, event.encode(), key=event.key))
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - began


def rebuild(bootstrap: str, var_dir: Path, workers: int | None) -> tuple[float, float, str]:
    """Run ``motcua sla rebuild``; (seconds, CPU seconds of the child and its workers, its
    output: each process's peak RSS)."""
    env = {**os.environ, "MOTCUA_VAR_DIR": str(var_dir)}
    env["MOTCUA_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    command = [sys.executable, "-m", "motcua.cli", "sla", "rebuild"]
    if workers is not None:
        command += ["--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        command,
        env=env,
        cwd=os.environ.get("BENCH_TREE", ROOT),
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dossiers", nargs="?", type=int, default=100_000)
    parser.add_argument("--routed", action="store_true")
    parser.add_argument("--workers", type=int, nargs="+", default=[None])
    args = parser.parse_args()
    count: int = args.dossiers
    with LocalBroker() as broker:
        bootstrap = broker.bootstrap_servers
        seconds = asyncio.run(produce(bootstrap, count, args.routed))
        print(f"produced {count:,} dossiers (routed: {args.routed}) in {seconds:.1f} s")
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                wall, cpu, output = rebuild(bootstrap, Path(tmp), workers)
                print("\n".join(line for line in output.splitlines() if "read up to" not in line))
                with sqlite3.connect(Path(tmp) / "sla.db") as db:
                    clocks = db.execute("SELECT count(*) FROM tracked_dossier").fetchone()[0]
                    outbox = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            print(
                f"rebuild of {count:,} dossiers, workers {workers or 'default'}: {wall:.1f} s "
                f"wall, {cpu:.1f} s CPU; clocks {clocks:,}, outbox rows {outbox:,}; "
                f"load average {os.getloadavg()[0]:.1f}"
            )
    print(machine())


if __name__ == "__main__":
    main()
