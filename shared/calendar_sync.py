"""Calendar changes travel as events, so every service computes with the same table.

The service where an administrator edits the calendar writes the province's edits to
its own ``calendar-<province>.json`` and publishes ``calendar.changed``; every service
that follows the calendar topic writes the same edits to its own file and drops its
cached calendar. The event holds all of the province's edits, so applying it twice, or
applying only the latest, gives the same file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from shared.calendar import (
    DayKind,
    ProvinceOverrides,
    SpecialDay,
    WorkCalendar,
    default_calendar,
    overrides_path,
    write_overrides,
)
from shared.events import CalendarChanged, Envelope, SpecialDayRow, of_type
from shared.inbox import Apply


def change_event(province: str, overrides: ProvinceOverrides) -> CalendarChanged:
    """The event announcing a province's edits as they now stand."""
    return CalendarChanged(
        province=province,
        last_year=overrides.last_year,
        rows=[
            SpecialDayRow(day=r.day, kind=r.kind.value, description=r.description, source=r.source)
            for r in overrides.rows
        ],
        removed=list(overrides.removed),
    )


def overrides_of(change: CalendarChanged) -> ProvinceOverrides:
    """The province's edits an event carries."""
    return ProvinceOverrides(
        rows=tuple(
            SpecialDay(day=r.day, kind=DayKind(r.kind), description=r.description, source=r.source)
            for r in change.rows
        ),
        removed=tuple(change.removed),
        last_year=change.last_year,
    )


def apply_change(var_dir: Path, change: CalendarChanged) -> None:
    """Store a province's edits and make the next calendar lookup see them."""
    write_overrides(overrides_path(var_dir, change.province), overrides_of(change))
    default_calendar.cache_clear()


async def _nothing_else(_session: AsyncSession, _events: Sequence[Envelope]) -> None:
    return None


def following_calendar(
    var_dir: Path,
    province: str,
    use: Callable[[WorkCalendar], None],
    apply: Apply = _nothing_else,
) -> Apply:
    """``apply`` that takes ``calendar.changed`` events (pass it to ``shared.consume.follow``
    on the calendar topic, so every instance sees every change).

    After a batch with changes of ``province`` (the one this service computes with),
    ``use`` is given the calendar as the batch leaves it, once, before the rest of the
    batch is applied, so events after the change in the same batch are computed with it
    (a restarted process reading the topic from the start sees only where it ends).
    """

    async def wrapped(session: AsyncSession, events: Sequence[Envelope]) -> None:
        changed = False
        for change, _ in of_type(events, CalendarChanged):
            apply_change(var_dir, change)
            changed = changed or change.province == province
        if changed:
            use(default_calendar(province))
        await apply(session, [e for e in events if e.type != CalendarChanged.event_type])

    return wrapped
