"""Where one reception's CPU goes: intake's real app in-process (no broker, no HTTP
server), ``POST /api/v1/dossiers`` driven ``--requests`` times through
``httpx.ASGITransport`` under cProfile, on a SQLite file or PostgreSQL (``--postgres URL``).

Prints the CPU per request and the top functions by cumulative time. The broker address
is a closed port: the events stay in the outbox (the relay's attempts are in the profile).

    .venv/bin/python bench/intake_profile.py [--requests 2000] [--concurrency 16] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from benchkit import DOSSIER

from services.intake.api import create_app
from services.intake.keys import create_key
from shared.auth import API_KEY_HEADER, Role
from shared.localbroker import free_port
from shared.settings import Settings


async def drive(settings: Settings, args: argparse.Namespace) -> None:
    """Warm up, then post ``args.requests`` dossiers ``args.concurrency`` at a time (under
    cProfile unless ``args.no_profile``), and print what it cost."""
    key = await create_key(settings, Role.ADMIN, "*")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    concurrency = args.concurrency
    done = args.requests // concurrency * concurrency
    profile = None if args.no_profile else cProfile.Profile()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://intake", headers={API_KEY_HEADER: key}
        ) as client,
    ):

        async def post(count: int) -> None:
            for _ in range(count):
                answer = await client.post("/api/v1/dossiers", json=DOSSIER)
                assert answer.status_code == 201, answer.text

        await asyncio.gather(*(post(20) for _ in range(concurrency)))  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        if profile is not None:
            profile.enable()
        await asyncio.gather(*(post(done // concurrency) for _ in range(concurrency)))
        if profile is not None:
            profile.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{done} requests, {concurrency} at a time: {done / wall:,.0f}/s in-process, "
        f"CPU {cpu / done * 1000:.2f} ms a request (client included), "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if profile is None:
        return
    if args.save:
        profile.dump_stats(args.save)
    print(f"under the profiler: {profile_calls(profile) / done:,.0f} function calls a request")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())
    print(by_package(pstats.Stats(profile), done))


def profile_calls(profile: cProfile.Profile) -> int:
    """How many Python and C function calls the profile saw (a load-independent measure)."""
    stats = pstats.Stats(profile)
    return int(stats.total_calls)  # type: ignore[attr-defined]


def by_package(stats: pstats.Stats, requests: int) -> str:
    """Own time (``tottime``) summed by where the code lives, per request, largest first."""
    totals: dict[str, float] = {}
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        match = re.search(r"site-packages/([A-Za-z0-9_]+)", filename)
        if match:
            where = match[1]
        elif "/work/main/" in filename or filename.startswith(("services", "shared")):
            where = "/".join(filename.split("/work/main/")[-1].split("/")[:2])
        elif filename == "~":
            where = "builtins (C)"
        else:
            where = "stdlib"
        totals[where] = totals.get(where, 0.0) + tottime
    lines = [f"{'own time by package':<30} ms a request"]
    lines += [
        f"{where:<30} {total / requests * 1000:8.3f}"
        for where, total in sorted(totals.items(), key=lambda item: -item[1])[:20]
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--save", help="also write the raw profile here (pstats format)")
    parser.add_argument(
        "--no-profile", action="store_true", help="only the rate and the CPU a request"
    )
    parser.add_argument("--postgres", help="SQLAlchemy URL; default: a SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="motcua-profile-") as tmp:
        extra: dict[str, str] = {}
        if args.postgres:
            extra = {
                "database_url": args.postgres,
                "db_schema_prefix": f"prof{uuid.uuid4().hex[:6]}_",
            }
        settings = Settings(
            var_dir=Path(tmp), kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", **extra
        )
        asyncio.run(drive(settings, args))


if __name__ == "__main__":
    main()
