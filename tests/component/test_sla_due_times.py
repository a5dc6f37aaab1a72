"""Sla publishes a chain dossier's due times (``sla.due_times``) when its clock moves them,
and only then: from the consumer, and from the scheduler after a calendar change
(virtual time, SQLite)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from services.sla.rebuild import rebuild
from shared.calendar import default_calendar
from shared.events import ChainStep, DossierAction, DossierRouted, Envelope, SlaDueTimes
from shared.settings import Settings
from tests.component.test_sla_calendar_change import with_day_off
from tests.component.test_sla_tracker import (
    CODE,
    VirtualClock,
    action,
    publish,
    received,
    sla_events,
    sla_process,
    vn,
)

UNIT = "000.00.00.H56"
POLICE = "000.00.61.H56"


def routed(code: str = CODE) -> Envelope:
    return Envelope.wrap(
        DossierRouted(
            procedure_code="2.000635",
            office=UNIT,
            field="Hộ tịch",
            rule="test",
            catalogue_version=1,
            steps=[ChainStep(office=UNIT, hours=Decimal(4)), ChainStep(office=POLICE, hours=4)],
        ),
        occurred_at=vn("2026-06-01 08:00"),
        source="routing",
        dossier_code=code,
    )


async def due_times(process: sla_process.SlaProcess) -> list[SlaDueTimes]:
    return [
        e.body(SlaDueTimes)
        for e in await sla_events(process.runtime.db)
        if e.type == SlaDueTimes.event_type
    ]


async def test_the_consumer_publishes_due_times_when_they_move_and_only_then(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(vn("2026-06-01 08:00"))
    process = sla_process.build(Settings(var_dir=tmp_path), clock=clock)
    await process.runtime.db.create_tables(process.runtime.tables)
    await publish(process, received())
    assert await due_times(process) == []  # no chain yet: nobody dates its steps
    await publish(process, routed())
    [first] = await due_times(process)
    assert first.due_at == vn("2026-06-03 08:00")
    assert [(s.office, s.started_at) for s in first.steps] == [
        (UNIT, vn("2026-06-01 08:00")),
        (POLICE, None),
    ]
    ask = action(1, DossierAction.REQUEST_SUPPLEMENT, "2026-06-01 09:00", reason="thiếu")
    give = action(2, DossierAction.SUBMIT_SUPPLEMENT, "2026-06-01 10:00")
    await publish(process, ask)
    assert len(await due_times(process)) == 1  # a pause moves nothing yet
    await publish(process, give, routed(), ask, give)  # and again: nothing new
    [_, resumed] = await due_times(process)
    assert resumed.due_at == vn("2026-06-03 09:00")
    # 4 working hours from 08:00 (morning until 11:30) end at 13:30, one hour waited
    assert resumed.steps[0].due_at == vn("2026-06-01 14:30")
    found = await process.tracker.get(CODE)
    assert found is not None
    assert found[0].due_times == resumed.model_dump(mode="json")
    await process.runtime.db.dispose()


async def test_a_calendar_change_publishes_the_moved_due_times_once(tmp_path: Path) -> None:
    plain = default_calendar("default")
    tuesday_off = with_day_off(plain, date(2026, 6, 2))
    clock = VirtualClock(vn("2026-06-01 08:00"))
    process = sla_process.build(Settings(var_dir=tmp_path), clock=clock, calendar=tuesday_off)
    tracker = process.tracker
    await process.runtime.db.create_tables(process.runtime.tables)
    await publish(process, received(), routed())
    [before] = await due_times(process)
    assert before.due_at == vn("2026-06-04 08:00")

    tracker.use_calendar(plain)  # the day off is withdrawn: due Wed 08:00
    clock.at = vn("2026-06-01 09:00")
    await tracker.flag_due()
    [_, after] = await due_times(process)
    assert after.due_at == vn("2026-06-03 08:00")
    await tracker.flag_due()
    assert len(await due_times(process)) == 2
    await process.runtime.db.dispose()


async def test_a_rebuild_publishes_only_due_times_the_topic_lacks(tmp_path: Path) -> None:
    clock = VirtualClock(vn("2026-06-01 10:00"))
    live = sla_process.build(Settings(var_dir=tmp_path / "live"), clock=clock)
    await live.runtime.db.create_tables(live.runtime.tables)
    facts = [
        received(),
        routed(),
        action(1, DossierAction.REQUEST_SUPPLEMENT, "2026-06-01 09:00", reason="thiếu"),
        action(2, DossierAction.SUBMIT_SUPPLEMENT, "2026-06-01 10:00"),
    ]
    await publish(live, *facts)
    published = await sla_events(live.runtime.db)
    latest = (await due_times(live))[-1]

    whole = sla_process.build(Settings(var_dir=tmp_path / "whole"), clock=clock)
    await rebuild(whole.tracker, facts, published, batch=1)
    assert await due_times(whole) == []  # the topic carries them all already
    found = await whole.tracker.get(CODE)
    assert found is not None
    assert found[0].due_times == latest.model_dump(mode="json")

    lost = sla_process.build(Settings(var_dir=tmp_path / "lost"), clock=clock)
    await rebuild(lost.tracker, facts, published[:-1], batch=1)  # the latest never went out
    assert await due_times(lost) == [latest]
    for process in (live, whole, lost):
        await process.runtime.db.dispose()
