"""The report read through the monthly roll-ups equals the report recomputed from the
facts, on random dossiers, for past months, years, running months and ranges that cut
months (issue 14).

The reference is computed here in memory from ``domain.aggregate`` of the final facts,
day by day, without the roll-up; the database gets the same facts the projection's way
(first versions, then the changes of some of them as deltas), then ``recompute``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify.reports import TABLES, domain, query, recompute
from services.notify.reports.store import (
    ReportDay,
    ReportDue,
    ReportDueMonth,
    ReportFact,
    ReportMonth,
    add_counts,
    month_start,
)
from shared import migrations
from shared.calendar import VN_TZ
from shared.db import Database

FIRST = date(2025, 1, 1)
TODAY = date(2026, 2, 10)
UNITS = ["000.00.01.H56", "000.00.02.H56", "000.00.03.H56"]


def random_fact(rng: random.Random, n: int) -> domain.Fact:
    """A dossier received between ``FIRST`` and ``TODAY``: finished (early, on time,
    late), withdrawn, or still open; some with no due time, some with two supplements."""
    received = datetime.combine(
        FIRST + timedelta(days=rng.randrange((TODAY - FIRST).days + 1)),
        datetime.min.time(),
        tzinfo=VN_TZ,
    ) + timedelta(hours=rng.randrange(7, 17))
    due = None if rng.random() < 0.05 else received + timedelta(days=rng.randrange(0, 40))
    closed = received + timedelta(days=rng.randrange(0, 60))
    fate = rng.random()
    finished = closed if fate < 0.6 and closed.date() <= TODAY else None
    withdrawn = closed if 0.6 <= fate < 0.7 and closed.date() <= TODAY else None
    outcome = None
    if finished is not None:
        outcome = rng.choice(["early", "on_time", "late"])
    return domain.Fact(
        code=f"000.00.01.H56-{n:08d}",
        unit=rng.choice(UNITS),
        field=rng.choice(["Hộ tịch", "Đất đai"]),
        procedure=rng.choice(["2.000635", "1.001612"]),
        level=rng.choice(["tinh", "xa"]),
        channel=rng.choice(["online", "counter", "post"]),
        received_at=received,
        due_at=due,
        finished_at=finished,
        outcome=outcome,
        supplement_requests=rng.choice([0, 0, 0, 1, 2]),
        withdrawn_at=withdrawn,
    )


def reference(
    counts: Mapping[domain.DayKey | domain.DueKey, int], period: domain.Period, dim: str
) -> dict[str, domain.Counts]:
    """The report's rows by day, in memory: the sums the per-day statements compute."""
    in_period: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    after: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    open_now: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    overdue: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for k, n in counts.items():
        if k.dim != dim:
            continue
        if isinstance(k, domain.DayKey):
            if period.first <= k.day <= period.last:
                in_period[k.key][k.measure] += n
            elif k.day > period.last:
                after[k.key][k.measure] += n
        elif k.closed_day > period.last_counted:
            if k.closed_day == domain.OPEN_DAY:
                open_now[k.key][k.measure] += n
            if k.due_day < period.overdue_before:
                overdue[k.key][k.measure] += n
    rows = {}
    for key in set(in_period) | set(after) | set(open_now):
        row = domain.counts_from(in_period[key], after[key], open_now[key], overdue[key])
        if not domain.is_empty(row):
            rows[key] = row
    return rows


def periods(rng: random.Random) -> list[domain.Period]:
    """Every month of the range (past ones and the running one), the year, and random
    ranges that start and end inside months."""
    out = [domain.Period(date(2025, 1, 1), date(2025, 12, 31), TODAY)]
    month = FIRST
    while month <= TODAY:
        following = (month + timedelta(days=32)).replace(day=1)
        out.append(domain.Period(month, following - timedelta(days=1), TODAY))
        month = following
    for _ in range(12):
        first = FIRST + timedelta(days=rng.randrange(400))
        out.append(domain.Period(first, first + timedelta(days=rng.randrange(90)), TODAY))
    return out


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_report_from_the_roll_ups_equals_a_recompute(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    first = [random_fact(rng, n) for n in range(600)]
    final = list(first)
    changed = rng.sample(range(len(first)), 150)
    for n in changed:  # a later event changes the fact: finished, withdrawn, new due time
        final[n] = random_fact(rng, n)
    expected_counts = domain.aggregate(final)

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    await db.create_tables(TABLES)
    async with db.transaction() as session:
        await add_counts(session, domain.aggregate(first))
        await add_counts(
            session, domain.delta([first[n] for n in changed], [final[n] for n in changed])
        )
        for fact in final:
            row = ReportFact(code=fact.code)
            row.load(fact)
            session.add(row)

    async def check() -> None:
        async with db.sessions() as session:
            for period in periods(rng):
                for dim in domain.DIMENSIONS:
                    report = await query.sla_report(session, period, dim)
                    got = {r.key: r.counts for r in report.rows}
                    assert got == reference(expected_counts, period, dim), (period, dim)
            await roll_ups_sum_the_days(session)

    await check()
    async with db.transaction() as session:
        assert await recompute(session) == len(final)
    await check()
    await db.dispose()


async def roll_ups_sum_the_days(session: AsyncSession) -> None:
    """Each roll-up row is the sum of its month's daily rows (zeros aside)."""
    by_month: dict[tuple[str, str, date, str], int] = defaultdict(int)
    for day in (await session.exec(select(ReportDay))).all():
        by_month[day.dim, day.key, month_start(day.day), day.measure] += day.n
    months = {
        (m.dim, m.key, m.month, m.measure): m.n
        for m in (await session.exec(select(ReportMonth))).all()
    }
    assert {k: n for k, n in months.items() if n} == {k: n for k, n in by_month.items() if n}
    by_due: dict[tuple[str, str, date, date, str], int] = defaultdict(int)
    for due in (await session.exec(select(ReportDue))).all():
        key = (due.dim, due.key, month_start(due.due_day), month_start(due.closed_day))
        by_due[(*key, due.measure)] += due.n
    due_months = {
        (m.dim, m.key, m.due_month, m.closed_month, m.measure): m.n
        for m in (await session.exec(select(ReportDueMonth))).all()
    }
    assert {k: n for k, n in due_months.items() if n} == {k: n for k, n in by_due.items() if n}


async def test_the_migration_fills_the_roll_ups_from_the_counts_already_there(
    tmp_path: Path,
) -> None:
    """A database at notify_0003 with counts: after the upgrade, the roll-ups sum them,
    so the first report read from them equals the one read from the days."""
    rng = random.Random(3)
    facts = [random_fact(rng, n) for n in range(300)]
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    await migrations.upgrade(db, "notify", to=("notify_0003",))
    async with db.transaction() as session:
        for k, n in domain.aggregate(facts).items():
            session.add(
                ReportDay(dim=k.dim, key=k.key, day=k.day, measure=k.measure, n=n)
                if isinstance(k, domain.DayKey)
                else ReportDue(
                    dim=k.dim,
                    key=k.key,
                    due_day=k.due_day,
                    closed_day=k.closed_day,
                    measure=k.measure,
                    n=n,
                )
            )
    await migrations.upgrade(db, "notify")  # to head, through notify_0004
    async with db.sessions() as session:
        await roll_ups_sum_the_days(session)
        assert (await session.exec(select(ReportMonth))).first() is not None
        period = domain.Period(date(2025, 3, 1), date(2025, 3, 31), TODAY)
        report = await query.sla_report(session, period, "unit")
        assert {r.key: r.counts for r in report.rows} == reference(
            domain.aggregate(facts), period, "unit"
        )
    await db.dispose()
