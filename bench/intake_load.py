"""Load on the front door: ``POST /api/v1/dossiers`` against the real local stack.

Starts the broker and the four services (SQLite files, or PostgreSQL schemas with
``--postgres URL``), then keeps ``--concurrency`` requests in flight for ``--seconds``
from one asyncio client on the same machine, and prints the sustained rate and the
latency percentiles of the answers (every one must be 201), and the CPU time each process
(services, broker, this client) used during the load, per request: a figure the other
load on a shared machine barely moves. The client shares the two cores with the
services: the rates are a floor, not a ceiling.

    .venv/bin/python bench/intake_load.py [--seconds 20] [--concurrency 32] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import httpx
from benchkit import DOSSIER, machine, percentile

from motcua.stack import Stack
from shared.auth import API_KEY_HEADER


async def load(base: str, key: str, seconds: float, concurrency: int) -> tuple[int, list[float]]:
    """Post dossiers for ``seconds``; return (errors, latencies in seconds)."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    async with httpx.AsyncClient(
        base_url=base,
        headers={API_KEY_HEADER: key},
        timeout=30,
        limits=httpx.Limits(max_connections=concurrency),
    ) as client:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                response = await client.post("/api/v1/dossiers", json=DOSSIER)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 201:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors, latencies


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_env(postgres: str | None) -> dict[str, str]:
    """The stack's environment for its database: SQLite files under its ``var`` without
    ``postgres``, else that PostgreSQL with schemas of a fresh prefix (no earlier run's
    rows are seen)."""
    if not postgres:
        return {}
    return {
        "MOTCUA_DATABASE_URL": postgres,
        "MOTCUA_DB_SCHEMA_PREFIX": f"bench{uuid.uuid4().hex[:6]}_",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--postgres", help="SQLAlchemy URL; default: SQLite files")
    args = parser.parse_args()
    env = database_env(args.postgres)
    with tempfile.TemporaryDirectory(prefix="motcua-load-") as tmp:
        stack = Stack(Path(tmp) / "var", env=env)
        try:
            stack.start(timeout=120)
            assert stack.admin_key is not None
            processes: dict[str, int] = {
                name: svc.process.pid
                for name, svc in stack.services.items()
                if svc.process is not None
            }
            if stack.broker is not None and stack.broker.process is not None:
                processes["broker"] = stack.broker.process.pid
            processes["client"] = os.getpid()
            cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
            errors, latencies = asyncio.run(
                load(stack.services["intake"].url, stack.admin_key, args.seconds, args.concurrency)
            )
            cpu_used = {
                name: cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()
            }
        finally:
            stack.stop()
    latencies.sort()
    print(f"date {date.today()}  machine: {machine()}")  # noqa: DTZ011
    print(
        f"database {'PostgreSQL' if args.postgres else 'SQLite'}, "
        f"{args.concurrency} in flight for {args.seconds:.0f} s"
    )
    print(
        f"  requests {len(latencies)}, errors {errors}, rate {len(latencies) / args.seconds:,.0f}/s"
    )
    print(
        f"  latency p50 {percentile(latencies, 0.50) * 1000:.1f} ms, "
        f"p90 {percentile(latencies, 0.90) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
        f"mean {statistics.fmean(latencies) * 1000:.1f} ms"
    )
    print(
        f"  load average at the end {os.getloadavg()[0]:.1f}; CPU a request (ms): "
        + ", ".join(f"{name} {used / len(latencies) * 1000:.2f}" for name, used in cpu_used.items())
    )


if __name__ == "__main__":
    main()
