"""A calendar change reaches the deadlines sla already stored (virtual time, SQLite).

The scheduler wakes by the stored ``next_deadline``; a change that moves a due time
earlier must not leave a warning waiting for the old instant.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from shared.calendar import DayKind, SpecialDay, WorkCalendar, default_calendar
from shared.settings import Settings
from tests.component.test_sla_tracker import (
    CODE,
    VirtualClock,
    publish,
    received,
    sla_events,
    sla_process,
    vn,
)


def with_day_off(base: WorkCalendar, day: date) -> WorkCalendar:
    return WorkCalendar(
        [*base.special_days, SpecialDay(day, DayKind.OFF, "nghỉ đột xuất", "test")],
        first_year=base.first_day.year,
        last_year=base.last_day.year,
    )


async def test_a_change_that_brings_the_due_time_forward_is_flagged_at_the_new_time(
    tmp_path: Path,
) -> None:
    plain = default_calendar("default")
    tuesday_off = with_day_off(plain, date(2026, 6, 2))
    clock = VirtualClock(vn("2026-06-01 08:00"))
    process = sla_process.build(Settings(var_dir=tmp_path), clock=clock, calendar=tuesday_off)
    tracker = process.tracker
    await process.runtime.db.create_tables(process.runtime.tables)
    await publish(process, received())  # 2 working days from Mon 08:00, Tuesday off
    found = await tracker.get(CODE)
    assert found is not None
    assert found[0].due_at == vn("2026-06-04 08:00")
    assert found[0].next_deadline == vn("2026-06-03 08:00")  # due soon: 8 working hours

    tracker.use_calendar(plain)  # the day off is withdrawn: due Wed 08:00
    clock.at = vn("2026-06-02 09:00")
    assert await tracker.flag_due() == vn("2026-06-02 14:30")  # the apology: 3 working h
    [due_soon] = await sla_events(process.runtime.db, "due_soon")
    assert due_soon.payload["due_at"] == "2026-06-03T08:00:00+07:00"
    refolded = await tracker.get(CODE)
    assert refolded is not None
    assert refolded[0].due_at == vn("2026-06-03 08:00")  # what the gauges count by
    await process.runtime.db.dispose()


async def test_a_calendar_equal_in_working_time_leaves_the_deadlines_alone(
    tmp_path: Path,
) -> None:
    plain = default_calendar("default")
    renamed = WorkCalendar(
        [SpecialDay(s.day, s.kind, "mô tả khác", "another source") for s in plain.special_days],
        first_year=plain.first_day.year,
        last_year=plain.last_day.year,
    )
    assert renamed.same_working_time(plain)
    assert not with_day_off(plain, date(2026, 6, 2)).same_working_time(plain)

    clock = VirtualClock(vn("2026-06-01 08:00"))
    process = sla_process.build(Settings(var_dir=tmp_path), clock=clock, calendar=plain)
    tracker = process.tracker
    await process.runtime.db.create_tables(process.runtime.tables)
    await publish(process, received())
    tracker.use_calendar(renamed)
    clock.at = vn("2026-06-01 09:00")
    assert await tracker.flag_due() == vn("2026-06-02 08:00")  # unchanged, nothing refolded
    found = await tracker.get(CODE)
    assert found is not None
    assert found[0].next_deadline == vn("2026-06-02 08:00")
    await process.runtime.db.dispose()
