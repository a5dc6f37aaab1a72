"""Report latency over a province-year of pre-aggregated counts (SQLite).

Writes the aggregates that ``--dossiers`` dossiers would leave (default 10 million: 200
units × 380 days, 2025-01-01 to 2026-01-15, ~132 dossiers per unit and day) straight into
``report_day`` / ``report_due`` and their monthly roll-ups (``report_month`` /
``report_due_month``) of a fresh notify SQLite file, for the ``unit`` dimension
(the one the query reads). Each unit-day's dossiers are spread over 20 (due offset,
closing offset) cells, so early, on-time, late and still-open dossiers all occur and the
by-due table has one row per (unit, due day, closing day) as in production. Then it times
``sla_report`` for the year 2025 grouped by unit (today = 2026-01-15, so the "after the
period" sums are read too), and for one month, median of ``--repeat`` runs.

    .venv/bin/python bench/report_bench.py [--dossiers N] [--repeat R]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from services.notify.reports import TABLES
from services.notify.reports import domain as d
from services.notify.reports.query import sla_report
from services.notify.reports.store import month_start
from shared.db import Database

UNITS = 200
FIRST = date(2025, 1, 1)
TODAY = date(2026, 1, 15)
CELLS = [(due, close) for due in range(2, 12, 2) for close in (due - 2, due - 1, due, due + 3)]


def generate(path: Path, dossiers: int) -> tuple[int, int, int]:
    """Write the aggregates; return (dossiers, day rows, due rows)."""
    days = (TODAY - FIRST).days + 1
    per_unit_day = dossiers // (UNITS * days)
    day_rows: Counter[tuple[str, date, str]] = Counter()
    due_rows: Counter[tuple[str, date, date, str]] = Counter()
    total = 0
    for u in range(UNITS):
        unit = f"000.00.{u // 100:02d}.H{u % 100:02d}"
        for offset in range(days):
            received = FIRST + timedelta(days=offset)
            n = per_unit_day + (u + offset) % 3 - 1
            total += n
            online = n * 2 // 5
            day_rows[unit, received, d.RECV_ONLINE] += online
            day_rows[unit, received, d.RECV_COUNTER_POST] += n - online
            for i, (due_off, close_off) in enumerate(CELLS):
                k = n // len(CELLS) + (1 if i < n % len(CELLS) else 0)
                if not k:
                    continue
                due = received + timedelta(days=due_off)
                closed = received + timedelta(days=close_off)
                if closed > TODAY:
                    closed = d.OPEN_DAY
                else:
                    measure = (
                        d.FIN_EARLY
                        if closed < due
                        else d.FIN_ON_TIME
                        if closed == due
                        else d.FIN_LATE
                    )
                    day_rows[unit, closed, measure] += k
                    if measure != d.FIN_LATE:
                        day_rows[unit, closed, d.FIN_OK_766] += k
                due_rows[unit, due, closed, d.DUE_ALL] += k
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO report_day (dim, key, day, measure, n) VALUES ('unit', ?, ?, ?, ?)",
            ((u, day.isoformat(), m, n) for (u, day, m), n in day_rows.items()),
        )
        conn.executemany(
            "INSERT INTO report_due (dim, key, due_day, closed_day, measure, n) "
            "VALUES ('unit', ?, ?, ?, ?, ?)",
            ((u, du.isoformat(), c.isoformat(), m, n) for (u, du, c, m), n in due_rows.items()),
        )
        # The monthly roll-ups, as ``store.add_counts`` keeps them beside the days.
        months: Counter[tuple[str, date, str]] = Counter()
        for (u, day, m), n in day_rows.items():
            months[u, month_start(day), m] += n
        due_months: Counter[tuple[str, date, date, str]] = Counter()
        for (u, du, c, m), n in due_rows.items():
            due_months[u, month_start(du), month_start(c), m] += n
        conn.executemany(
            "INSERT INTO report_month (dim, key, month, measure, n) VALUES ('unit', ?, ?, ?, ?)",
            ((u, month.isoformat(), m, n) for (u, month, m), n in months.items()),
        )
        conn.executemany(
            "INSERT INTO report_due_month (dim, key, due_month, closed_month, measure, n) "
            "VALUES ('unit', ?, ?, ?, ?, ?)",
            ((u, du.isoformat(), c.isoformat(), m, n) for (u, du, c, m), n in due_months.items()),
        )
        conn.execute("ANALYZE")
    return total, len(day_rows), len(due_rows)


async def time_report(db: Database, period: d.Period, repeat: int) -> tuple[float, int, int]:
    """Median seconds of ``repeat`` reports; rows and dossiers received in the last."""
    seconds = []
    rows = received = 0
    for _ in range(repeat):
        started = time.perf_counter()
        async with db.sessions() as session:
            report = await sla_report(session, period, "unit")
        seconds.append(time.perf_counter() - started)
        rows, received = len(report.rows), report.total.received
    return statistics.median(seconds), rows, received


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dossiers", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notify.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.create_tables(TABLES)
        started = time.perf_counter()
        total, day_rows, due_rows = generate(path, args.dossiers)
        print(
            f"generated {total:,} dossiers as {day_rows:,} by-day and {due_rows:,} by-due rows "
            f"in {time.perf_counter() - started:.1f} s ({path.stat().st_size / 2**20:.0f} MiB)"
        )
        for name, period in (
            ("year 2025 by unit", d.Period(date(2025, 1, 1), date(2025, 12, 31), TODAY)),
            ("March 2025 by unit", d.Period(date(2025, 3, 1), date(2025, 3, 31), TODAY)),
            (
                "January 2026 (running) by unit",
                d.Period(date(2026, 1, 1), date(2026, 1, 31), TODAY),
            ),
        ):
            median, rows, received = await time_report(db, period, args.repeat)
            print(
                f"{name}: median {median * 1000:.0f} ms of {args.repeat} "
                f"({rows} rows, {received:,} received)"
            )
        await db.dispose()
    cpu = platform.processor() or platform.machine()
    print(f"machine: {platform.node()}, {cpu}, Python {platform.python_version()}")


if __name__ == "__main__":
    asyncio.run(main())
