"""Concurrent kiosks on one SQLite file never share a ticket number, and two counters
calling at once never take one ticket."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.intake.process import build
from services.intake.queue.app import NewTicket, NothingWaiting, Queue
from shared.auth import ALL_UNITS, Principal, Role
from shared.localbroker import free_port
from shared.settings import Settings
from tests.component.test_intake_api import FakeClock

KIOSK = Principal("kiosk", Role.KIOSK, "000.00.00.H56")
CLERK = Principal("clerk", Role.COUNTER, ALL_UNITS)


def test_concurrent_issues_and_calls(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    intake = build(settings).intake
    queue = Queue(intake.runtime, catalogue=intake.catalogue, clock=FakeClock())
    new = NewTicket(unit="000.00.00.H56", field="Hộ tịch")

    async def run() -> tuple[list[str], list[str]]:
        await intake.runtime.db.create_tables(intake.runtime.tables)
        try:
            issued = await asyncio.gather(*(queue.issue(new, actor=KIOSK) for _ in range(20)))

            async def call(counter: str) -> str | None:
                try:
                    return (await queue.call_next(counter, actor=CLERK)).number
                except NothingWaiting:
                    return None

            called = await asyncio.gather(call("H56-01"), call("H56-02"))
        finally:
            await intake.runtime.db.dispose()
        return [t.number for t, _ in issued], [n for n in called if n is not None]

    numbers, called = asyncio.run(run())
    assert sorted(numbers) == [f"A-{n:03d}" for n in range(1, 21)]
    assert sorted(called) == ["A-001", "A-002"]
