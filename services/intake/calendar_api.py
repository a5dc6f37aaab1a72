"""The calendar's administration over HTTP (``/api/v1/calendar``).

An edit is not applied here directly: it becomes a ``calendar.changed`` event in
intake's outbox (committed before the answer), and every service, intake included,
applies it when it arrives on the calendar topic. So all services change calendars
by the same path and in the same order. Edits are computed from this instance's
current table; two administrators editing at the same moment may overwrite each
other (the later event wins whole).

A refused edit (a province name that is not a plain word, a day out of range, a removal
of a day that is not special) is a ``shared.calendar.CalendarEditError``: 422 with the
reason, nothing published.
"""

# No ``from __future__ import annotations``: FastAPI must evaluate the ``Depends`` in the
# endpoints' annotations, which name this module's local ``auth``.

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from shared.auth import Authenticator, Principal, Role
from shared.calendar import (
    DayKind,
    ProvinceOverrides,
    SpecialDay,
    overrides_path,
    province_table,
    read_overrides,
)
from shared.calendar.edits import with_days, without_day
from shared.calendar_sync import change_event
from shared.clock import utc_now
from shared.outbox import enqueue
from shared.service import ServiceRuntime


class DayIn(BaseModel):
    """A special day to add or replace."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    kind: Literal["off", "makeup_workday"]
    description: str = Field(min_length=1, max_length=300)
    source: str = Field(min_length=1, max_length=300, description="Where the day comes from.")


class DayOut(BaseModel):
    """A row of the effective table."""

    day: date
    kind: str
    description: str
    source: str


class CalendarOut(BaseModel):
    """A province's effective special days and the years it can compute in."""

    province: str
    first_year: int
    last_year: int
    days: list[DayOut]


def _table(province: str, overrides: ProvinceOverrides, year: int | None) -> CalendarOut:
    known, rows = province_table(overrides)
    return CalendarOut(
        province=province,
        first_year=known.start,
        last_year=known.stop - 1,
        days=[
            DayOut(day=r.day, kind=r.kind.value, description=r.description, source=r.source)
            for r in rows
            if r.day.year in known and year in (None, r.day.year)
        ],
    )


def router(runtime: ServiceRuntime, auth: Authenticator) -> APIRouter:
    """The calendar endpoints: anyone with a key reads, an admin edits."""
    api = APIRouter(prefix="/api/v1/calendar", tags=["calendar"])
    var_dir = runtime.settings.var_dir

    def current(province: str) -> ProvinceOverrides:
        return read_overrides(overrides_path(var_dir, province))

    async def publish(province: str, edited: ProvinceOverrides, by: Principal) -> None:
        async with runtime.db.transaction() as session:
            enqueue(
                session,
                change_event(province, edited),
                occurred_at=utc_now(),
                source=f"intake:{by.key_id}",
                dossier_code=None,
            )
        runtime.relay.wake()

    @api.get("", response_model=CalendarOut)
    async def get_calendar(
        _: Annotated[Principal, Depends(auth.require())],
        province: Annotated[str, Query()] = "default",
        year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    ) -> CalendarOut:
        """The effective special days (days off, make-up working days) of a province."""
        return _table(province, current(province), year)

    @api.put("/days/{day}", response_model=CalendarOut, status_code=status.HTTP_202_ACCEPTED)
    async def put_day(
        day: date,
        body: DayIn,
        principal: Annotated[Principal, Depends(auth.require(Role.ADMIN))],
        province: Annotated[str, Query()] = "default",
    ) -> CalendarOut:
        """Add or replace a special day; every service applies it from the calendar topic."""
        row = SpecialDay(day, DayKind(body.kind), body.description, body.source)
        edited = with_days(current(province), [row])
        await publish(province, edited, principal)
        return _table(province, edited, day.year)

    @api.delete("/days/{day}", response_model=CalendarOut, status_code=status.HTTP_202_ACCEPTED)
    async def delete_day(
        day: date,
        principal: Annotated[Principal, Depends(auth.require(Role.ADMIN))],
        province: Annotated[str, Query()] = "default",
    ) -> CalendarOut:
        """Return a day to the weekly pattern; every service applies it from the topic."""
        edited = without_day(current(province), day)
        await publish(province, edited, principal)
        return _table(province, edited, day.year)

    return api
