"""The rebuild streams: batches from an async source, bounded in size, give the state
the live consumer built, and publish nothing the sla topic carries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from services.sla.rebuild import batches, rebuild
from shared.events import DossierAction, Envelope
from shared.settings import Settings
from tests.component.test_sla_due_times import routed
from tests.component.test_sla_tracker import (
    CODE,
    VirtualClock,
    action,
    publish,
    received,
    sla_events,
    snapshot,
    started,
    vn,
)

OTHER = "000.00.00.H56-260601-0002"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(vn("2026-06-01 10:00"))


async def in_parts(events: Sequence[Envelope], size: int) -> AsyncIterator[list[Envelope]]:
    """``events`` as a topic reader yields them: batches of ``size``."""
    for start in range(0, len(events), size):
        yield list(events[start : start + size])


async def test_batches_keep_the_order_and_the_bound() -> None:
    events = [received(f"000.00.00.H56-260601-{i:04d}") for i in range(7)]
    from_list = [chunk async for chunk in batches(events, 3)]
    from_parts = [chunk async for chunk in batches(in_parts(events, 2), 3)]
    assert [len(c) for c in from_list] == [3, 3, 1]
    assert from_parts == from_list
    assert [e for c in from_parts for e in c] == events


async def test_a_streamed_rebuild_equals_the_live_state(
    tmp_path: Path, clock: VirtualClock
) -> None:
    live = await started(Settings(var_dir=tmp_path / "live"), clock)
    facts = [
        received(),
        received(OTHER, at="2026-06-01 09:00"),
        routed(),
        action(1, DossierAction.REQUEST_SUPPLEMENT, "2026-06-01 14:00", reason="thiếu"),
        action(2, DossierAction.SUBMIT_SUPPLEMENT, "2026-06-04 10:00"),
        action(1, DossierAction.RESOLVE, "2026-06-02 10:00", code=OTHER),
    ]
    await publish(live, *facts)
    clock.at = vn("2026-06-03 10:00")
    await live.tracker.flag_due()
    published = await sla_events(live.runtime.db)
    assert {e.type for e in published} >= {"sla.due_times", "sla.finished", "sla.clock_started"}

    rebuilt = await started(Settings(var_dir=tmp_path / "rebuilt"), clock)
    report = await rebuild(rebuilt.tracker, in_parts(facts, 2), in_parts(published, 1), batch=1)
    assert (report.events_applied, report.clocks) == (len(facts), 2)
    assert report.flags_known == len([e for e in published if e.type != "sla.due_times"]) - 2
    assert await snapshot(rebuilt.runtime.db) == await snapshot(live.runtime.db)
    assert await sla_events(rebuilt.runtime.db) == []  # the topic carries it all already
    assert await rebuilt.tracker.flag_due() == await live.tracker.flag_due()
    for process in (live, rebuilt):
        await process.runtime.db.dispose()


async def test_a_streamed_rebuild_publishes_what_the_topic_lacks(
    tmp_path: Path, clock: VirtualClock
) -> None:
    live = await started(Settings(var_dir=tmp_path / "live"), clock)
    facts = [received(), routed(), action(1, DossierAction.RESOLVE, "2026-06-01 10:00")]
    await publish(live, *facts)
    published = await sla_events(live.runtime.db)
    kept = [e for e in published if e.type != "sla.finished"]  # the final class was lost
    assert len(kept) == len(published) - 1

    rebuilt = await started(Settings(var_dir=tmp_path / "rebuilt"), clock)
    await rebuild(rebuilt.tracker, in_parts(facts, 1), in_parts(kept, 2), batch=2)
    assert [e.type for e in await sla_events(rebuilt.runtime.db)] == ["sla.finished"]
    assert CODE in {e.dossier_code for e in await sla_events(rebuilt.runtime.db)}
    for process in (live, rebuilt):
        await process.runtime.db.dispose()
