"""One million due-time computations on the shipped calendar; prints the figures.

Run: ``.venv/bin/python bench/calendar_bench.py [COUNT]``. Starts are spread over
2024-2026 at minute resolution; durations mix every unit the way a counter sees them.
"""

from __future__ import annotations

import platform
import random
import sys
import time
from datetime import datetime, timedelta

from shared.calendar import VN_TZ, Duration, DurationUnit, build_calendar

POOL = 10_000


def main(count: int) -> None:
    started = time.perf_counter()
    cal = build_calendar()
    built = time.perf_counter() - started
    print(f"calendar build (holidays seed + {len(cal.known_years)} years): {built * 1000:.1f} ms")

    rng = random.Random(2026)
    origin = datetime(2024, 1, 1, tzinfo=VN_TZ)
    starts = [origin + timedelta(minutes=rng.randrange(3 * 365 * 24 * 60)) for _ in range(POOL)]
    mix = [
        *(Duration(rng.randint(1, 60) / 2, DurationUnit.WORKING_DAYS) for _ in range(6)),
        Duration(rng.randint(1, 16), DurationUnit.WORKING_HOURS),
        Duration(rng.randint(1, 30), DurationUnit.CALENDAR_DAYS),
        Duration(0, DurationUnit.SAME_DAY),
    ]
    durations = [rng.choice(mix) for _ in range(POOL)]
    dues = [cal.due_at(s, d) for s, d in zip(starts, durations, strict=True)]

    due_at = cal.due_at
    started = time.perf_counter()
    for index in range(count):
        due_at(starts[index % POOL], durations[index % POOL])
    elapsed = time.perf_counter() - started
    print(
        f"due_at, mixed units: {count:,} in {elapsed:.2f} s = "
        f"{count / elapsed:,.0f}/s, {elapsed / count * 1e6:.2f} µs each"
    )

    between = cal.working_time_between
    ends = [due or start for due, start in zip(dues, starts, strict=True)]
    started = time.perf_counter()
    for index in range(count):
        between(starts[index % POOL], ends[index % POOL])
    elapsed = time.perf_counter() - started
    print(
        f"working_time_between: {count:,} in {elapsed:.2f} s = "
        f"{count / elapsed:,.0f}/s, {elapsed / count * 1e6:.2f} µs each"
    )
    print(f"python {platform.python_version()} on {platform.machine()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
