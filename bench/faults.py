"""Faults: what is lost or doubled when the power, PostgreSQL or a SQLite file fails,
and how long the stack takes to catch up.

Runs the faults of ``tests/integration/test_faults.py`` (the same functions, so the
same definition of "every end") with bigger numbers, each on a fresh stack (local
broker + four services) in a temporary directory, with the stack's clock from a working
Wednesday morning and the SMS gateway stand-in in this process:

- power cut: ``--dossiers`` dossiers posted by ``--counters`` counters, then the broker
  and every service SIGKILLed at one instant, and the stack started again on the same
  directory (a new, empty broker); ``--held N`` holds the consumers (SIGSTOP) while the
  last N are posted, to make the lag certain (default 0: whatever lag the machine has);
- PostgreSQL: every connection to the services' database (one made for the run) cut
  every ``--drop-every`` s for ``--drop-seconds`` s while the counters post (needs
  ``--postgres-url`` or ``MOTCUA_TEST_POSTGRES_URL``, skipped otherwise);
- SQLite: a consuming service's file held under an exclusive lock for ``--lock-seconds``
  (longer than the services' busy timeout, ``--busy-timeout-ms``, and its retries) while
  the counters post.

Per fault it prints the dossiers answered 201, how many of them are lost (miss an end:
routed, tracked with office, one receipt sent and delivered), duplicated (more than one
receipt), the records in the dead-letter topics, and the time from the end of the fault
until every dossier had reached every end. It reuses the tests' helpers, so run it as a
module from the repository root:

    .venv/bin/python -m bench.faults
    .venv/bin/python -m bench.faults --faults power --dossiers 800 --counters 8

The run exits non-zero when anything was lost, duplicated or dead-lettered, and prints
where the logs are.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

from motcua.stack import Stack
from shared.settings import ServiceName
from tests.integration.conftest import (
    FAULTS_LOG,
    SmsGateway,
    scratch_postgres_database,
    started_stack,
)
from tests.integration.test_faults import (
    CONSUMERS,
    FaultRun,
    connections_dropped,
    file_locked,
    power_cut,
)

FAULTS = ("power", "postgres", "sqlite")
Scenario = Callable[[Stack, SmsGateway], Coroutine[Any, Any, FaultRun]]


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"Python {platform.python_version()}, {platform.machine()}"
    )


@contextmanager
def no_database() -> Iterator[dict[str, str]]:
    yield {}


@contextmanager
def postgres(url: str) -> Iterator[dict[str, str]]:
    with scratch_postgres_database(url) as database:
        yield {"MOTCUA_DATABASE_URL": database}


@dataclass
class Fault:
    """One fault to run: on a fresh stack in ``var_dir`` with ``env``, and a fresh
    PostgreSQL database when ``database`` makes one."""

    label: str
    var_dir: Path
    scenario: Scenario
    env: dict[str, str] = field(default_factory=dict)
    database: Callable[[], AbstractContextManager[dict[str, str]]] = no_database


def run(fault: Fault) -> FaultRun:
    """One fault on a fresh stack (and a fresh PostgreSQL database if asked)."""
    print(f"\n{fault.label}: stack in {fault.var_dir}", flush=True)
    with SmsGateway() as gateway, fault.database() as db_env:
        started = time.perf_counter()
        env = {**fault.env, **db_env, **gateway.env()}
        with started_stack(fault.var_dir, env) as stack:
            print(f"  stack ready in {time.perf_counter() - started:.1f} s", flush=True)
            result = asyncio.run(fault.scenario(stack, gateway))  # logs its summary
    return result


def row(label: str, result: FaultRun) -> str:
    took = result.catch_up.seconds
    tally = result.tally()
    return (
        f"| {label} | {len(result.codes)} | {tally['lost']} | {tally['duplicated']} "
        f"| {tally['dead-lettered']} | "
        + (f"{took:.1f} s" if took is not None else "not caught up")
        + " |"
    )


def plan(args: argparse.Namespace, base: Path) -> list[Fault]:
    """The faults chosen with ``--faults``, with the numbers of the command line."""
    chosen = {f.strip() for f in args.faults.split(",") if f.strip()}
    faults: list[Fault] = []
    if "power" in chosen:
        label = f"power cut, {args.dossiers} dossiers, {args.counters} counters"
        if args.held:
            label += f", consumers held for the last {args.held}"
        scenario = partial(
            power_cut,
            dossiers=args.dossiers,
            counters=args.counters,
            held=args.held,
            within=args.within,
        )
        faults.append(Fault(label, base / "power-cut", scenario))
    if "postgres" in chosen:
        label = f"PostgreSQL connections cut every {args.drop_every} s for {args.drop_seconds} s"
        if args.postgres_url:
            scenario = partial(
                connections_dropped,
                seconds=args.drop_seconds,
                counters=args.counters,
                every=args.drop_every,
                within=args.within,
            )
            database = partial(postgres, args.postgres_url)
            faults.append(Fault(label, base / "postgres", scenario, database=database))
        else:
            print(f"\n{label}: skipped (no --postgres-url nor MOTCUA_TEST_POSTGRES_URL)")
    if "sqlite" in chosen:
        for name in (n.strip() for n in args.lock_services.split(",") if n.strip()):
            service = cast(ServiceName, name)
            label = (
                f"SQLite {service}.db locked {args.lock_seconds:.0f} s "
                f"(busy timeout {args.busy_timeout_ms} ms)"
            )
            scenario = partial(
                file_locked,
                service=service,
                hold=args.lock_seconds,
                counters=args.counters,
                within=args.within,
            )
            env = {"MOTCUA_SQLITE_BUSY_TIMEOUT_MS": str(args.busy_timeout_ms)}
            faults.append(Fault(label, base / f"sqlite-{service}", scenario, env))
    return faults


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help=f"comma-separated, from {', '.join(FAULTS)}"
    )
    parser.add_argument("--dossiers", type=int, default=800, help="power cut: dossiers posted")
    parser.add_argument("--counters", type=int, default=8, help="counters posting at once")
    parser.add_argument(
        "--held", type=int, default=0, help="power cut: consumers held for the last N dossiers"
    )
    parser.add_argument("--drop-seconds", type=float, default=20.0, help="PostgreSQL: cut for")
    parser.add_argument("--drop-every", type=float, default=0.5, help="PostgreSQL: cut every")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("MOTCUA_TEST_POSTGRES_URL"),
        help="SQLAlchemy URL of a PostgreSQL server where a database may be created "
        "(default: MOTCUA_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--lock-services",
        default="routing,sla,notify",
        help="SQLite: whose file is locked, one run each (comma-separated)",
    )
    parser.add_argument(
        "--busy-timeout-ms", type=int, default=5000, help="SQLite: the services' busy timeout"
    )
    parser.add_argument("--lock-seconds", type=float, default=30.0, help="SQLite: lock held for")
    parser.add_argument(
        "--within", type=float, default=150.0, help="seconds allowed to catch up after a fault"
    )
    parser.add_argument("--var-dir", type=Path, default=None, help="state dir (default: temp)")
    return parser


def main() -> int:
    parser = arguments()
    args = parser.parse_args()
    unknown = {f.strip() for f in args.faults.split(",") if f.strip()} - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    wrong = {n.strip() for n in args.lock_services.split(",") if n.strip()} - set(CONSUMERS)
    if wrong:
        parser.error(f"--lock-services: not a consuming service: {', '.join(sorted(wrong))}")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger(FAULTS_LOG).setLevel(logging.INFO)
    base: Path = args.var_dir or Path(tempfile.mkdtemp(prefix="motcua-faults-"))
    print(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}; state under {base}")

    done = [(fault, run(fault)) for fault in plan(args, base)]

    print("\n| fault | answered 201 | lost | duplicated | dead-lettered | caught up after |")
    print("|---|---|---|---|---|---|")
    failed = False
    for fault, result in done:
        print(row(fault.label, result))
        if result.faults():
            failed = True
            print(f"  !! logs: {fault.var_dir / 'logs'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
