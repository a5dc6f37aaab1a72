"""Calendar changes as events: a service following the topic computes with the new table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path

import pytest
from faststream.kafka import TestKafkaBroker
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.calendar import (
    VN_TZ,
    DayKind,
    Duration,
    DurationUnit,
    ProvinceOverrides,
    SpecialDay,
    WorkCalendar,
    default_calendar,
    overrides_path,
    read_overrides,
)
from shared.calendar_sync import change_event, following_calendar, overrides_of
from shared.consume import subscribe
from shared.events import Envelope
from shared.service import ServiceRuntime
from shared.settings import Settings, get_settings
from shared.topics import CALENDAR, DOSSIER_LIFECYCLE
from tests.factories import received_envelope

# Tuesday 02/06/2026 declared a day off by a (hypothetical) provincial decision
EXTRA_DAY_OFF = SpecialDay(
    day=date(2026, 6, 2),
    kind=DayKind.OFF,
    description="Nghỉ theo quyết định của tỉnh",
    source="test fixture",
)


@pytest.fixture
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MOTCUA_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    default_calendar.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    default_calendar.cache_clear()


def test_event_carries_the_edits_both_ways() -> None:
    edits = ProvinceOverrides(rows=(EXTRA_DAY_OFF,), removed=(date(2026, 4, 27),), last_year=2027)
    assert overrides_of(change_event("hue", edits)) == edits


async def test_following_service_sees_the_change_and_its_own_events(var_dir: Path) -> None:
    runtime = ServiceRuntime("sla", Settings(var_dir=var_dir), tables=[], publishes=[])
    await runtime.db.create_tables(runtime.tables)
    seen: list[str] = []

    async def apply(_session: AsyncSession, events: Sequence[Envelope]) -> None:
        seen.extend(e.type for e in events)

    used: list[WorkCalendar] = []
    subscribe(
        runtime,
        following_calendar(var_dir, "default", used.append, apply),
        DOSSIER_LIFECYCLE,
        CALENDAR,
    )
    start = datetime(2026, 6, 1, 9, 0, tzinfo=VN_TZ)  # Monday
    one_day = Duration(value=1, unit=DurationUnit.WORKING_DAYS)
    assert default_calendar().due_at(start, one_day) == datetime(2026, 6, 2, 9, 0, tzinfo=VN_TZ)

    change = Envelope.wrap(
        change_event("default", ProvinceOverrides(rows=(EXTRA_DAY_OFF,))),
        occurred_at=start,
        source="intake",
        dossier_code=None,
    )
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(change.encode(), CALENDAR.name)
        other = received_envelope()
        await broker.publish(other.encode(), DOSSIER_LIFECYCLE.name, key=other.key)

    assert read_overrides(overrides_path(var_dir, "default")).rows == (EXTRA_DAY_OFF,)
    assert default_calendar().due_at(start, one_day) == datetime(2026, 6, 3, 9, 0, tzinfo=VN_TZ)
    assert seen == ["dossier.received"]
    [given] = used
    assert given.due_at(start, one_day) == datetime(2026, 6, 3, 9, 0, tzinfo=VN_TZ)
