"""The whole stack at six instants of the week and the year, on its settable clock.

Each run starts the real broker and the four services with ``clock_start`` at one
instant, posts a same-day dossier and a dossier of 3 working days at the counter, and
asserts exactly what is true then: the due times on the slips, the clock's state and the
warnings raised, and the messages sent to the citizen (the receipt, and nothing else).
At Wednesday 16:59:40 a dossier imported as received at 08:00 that day becomes overdue
at 17:00: the citizen gets exactly one overdue message, created after 17:00:00.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from motcua.stack import Stack
from shared.calendar import VN_TZ, default_calendar
from tests.factories import api_key_header, dossier_body

pytestmark = pytest.mark.integration

CALENDAR = default_calendar()
HOUR = timedelta(hours=1)
SAME_DAY = "2.000635"
THREE_DAYS = "1.004873"


def vn(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=VN_TZ)


@dataclass(frozen=True)
class Instant:
    """An instant to post dossiers at, and what is true there.

    ``three_days_due`` is exact when the counter is closed at ``at`` (the clock starts at
    the next working start); in working time it is the 3 working days from the actual
    reception, a few seconds after ``at``, on that date. ``lead`` starts the stack's clock
    that much before ``at`` (the stack takes some seconds to start), and the test waits
    for ``at`` before posting.
    """

    name: str
    at: datetime
    same_day_due: datetime
    three_days_due: datetime
    lead: timedelta = timedelta(0)


INSTANTS = [
    Instant("wed-morning", vn("2026-12-02 09:00"), vn("2026-12-02 17:00"), vn("2026-12-07 09:00")),
    # a same-day dossier received now has 2.5 working hours: its windows (1.25 h and
    # 0.625 h) begin later, so nothing is flagged at reception
    Instant("wed-14:30", vn("2026-12-02 14:30"), vn("2026-12-02 17:00"), vn("2026-12-07 14:30")),
    # from 15:00 on, a same-day dossier is due at the end of the next working day
    Instant(
        "wed-16:59:40",
        vn("2026-12-02 16:59:40"),
        vn("2026-12-03 17:00"),
        vn("2026-12-07 16:59:40"),
        lead=timedelta(seconds=45),
    ),
    Instant("fri-evening", vn("2026-12-04 18:00"), vn("2026-12-07 17:00"), vn("2026-12-09 17:00")),
    Instant("sunday", vn("2026-12-06 10:00"), vn("2026-12-07 17:00"), vn("2026-12-09 17:00")),
    # the last working afternoon before Tết 2026 (Sat 14/02 – Sun 22/02 off)
    Instant("tet-eve", vn("2026-02-13 16:00"), vn("2026-02-23 17:00"), vn("2026-02-25 16:00")),
]


@pytest.fixture(params=INSTANTS, ids=[i.name for i in INSTANTS])
def at_instant(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Stack, Instant]]:
    instant: Instant = request.param
    env = {"MOTCUA_RELAY_POLL_SECONDS": "0.2"}
    stack = Stack(tmp_path / "var", env=env, clock_start=instant.at - instant.lead)
    try:
        stack.start(timeout=90)
        yield stack, instant
    finally:
        stack.stop()


class Desk:
    """The counter, and an operator reading the clock and the messages."""

    def __init__(self, stack: Stack, client: httpx.AsyncClient) -> None:
        self.stack = stack
        self.client = client

    def url(self, service: str, path: str) -> str:
        return f"{self.stack.services[service].url}{path}"  # type: ignore[index]

    async def receive(self, procedure: str, **extra: Any) -> dict[str, Any]:
        body = dossier_body(procedure_code=procedure, **extra)
        response = await self.client.post(self.url("intake", "/api/v1/dossiers"), json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def clock(self, code: str) -> dict[str, Any]:
        """The sla clock of ``code``, once the tracker has it."""
        deadline = time.monotonic() + 60
        while True:
            response = await self.client.get(self.url("sla", f"/api/v1/sla/{code}"))
            if response.status_code == 200:
                clock: dict[str, Any] = response.json()
                return clock
            assert time.monotonic() < deadline, f"{code} never tracked"
            await asyncio.sleep(0.2)

    async def messages(self, code: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            self.url("notify", "/api/v1/notifications"), params={"dossier": code}
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    async def sent(self, code: str, trigger: str, *, within: float = 60) -> list[dict[str, Any]]:
        """The messages of ``code``, once one of ``trigger`` is sent."""
        deadline = time.monotonic() + within
        while True:
            found = await self.messages(code)
            if any(m["trigger"] == trigger and m["status"] == "sent" for m in found):
                return found
            assert time.monotonic() < deadline, f"no {trigger} message sent for {code}: {found}"
            await asyncio.sleep(0.2)

    def body_of(self, key: str) -> str:
        """The text the development sink was handed for message ``key``."""
        name = key.replace(":", "_")
        sent = orjson.loads((self.stack.var_dir / "messages" / f"{name}.json").read_bytes())
        text: str = sent["body"]
        return text


def raised(clock: dict[str, Any]) -> set[str]:
    return {w["kind"] for w in clock["warnings"] if w["emitted"] and w["step"] is None}


async def test_what_is_true_at_each_instant(at_instant: tuple[Stack, Instant]) -> None:
    stack, instant = at_instant
    assert stack.admin_key is not None
    headers = api_key_header(stack.admin_key)
    async with httpx.AsyncClient(timeout=30, headers=headers) as client:
        desk = Desk(stack, client)
        await asyncio.sleep(max(0.0, (instant.at - stack.now()).total_seconds()))
        same_day = await desk.receive(SAME_DAY)
        three_days = await desk.receive(THREE_DAYS)
        yymmdd = f"{instant.at:%y%m%d}"
        for created, due in (
            (same_day, instant.same_day_due),
            (three_days, instant.three_days_due),
        ):
            assert created["code"].split("-")[1] == yymmdd  # numbered on the set clock's day
            due_at = datetime.fromisoformat(created["due_at"])
            received_at = datetime.fromisoformat(created["received_at"])
            assert due_at.date() == due.date()
            if due is instant.three_days_due and CALENDAR.is_working_day(received_at.date()):
                assert due_at == CALENDAR.add_working_time(received_at, 24 * HOUR)
            else:
                assert due_at == due
            messages = await desk.sent(created["code"], "received")
            # the receipt, and nothing else: no warning reaches the citizen at reception
            assert [m["trigger"] for m in messages] == ["received"], messages
            receipt = messages[0]
            assert f"{due_at:%H:%M %d/%m/%Y}" in desk.body_of(receipt["key"])
            clock = await desk.clock(created["code"])
            assert clock["state"] == "in_time"
            assert raised(clock) == set()
            kinds = [w["kind"] for w in clock["warnings"] if w["step"] is None]
            assert kinds == ["due_soon", "apology_needed", "overdue"]
            assert all(datetime.fromisoformat(w["at"]) > stack.now() for w in clock["warnings"])

        if instant.name == "wed-14:30":
            await morning_dossier_is_due_soon(desk)
        if instant.name == "wed-16:59:40":
            await morning_dossier_becomes_overdue_at_17(desk)


async def morning_dossier_is_due_soon(desk: Desk) -> None:
    """Received at 08:00 (7.5 working hours to 17:00): due soon from 13:15 (3.75 h
    left), an apology letter needed from 15:07:30 (1.875 h left). At 14:30 the office is
    warned that it is due soon; the citizen has only the receipt."""
    created = await desk.receive(SAME_DAY, received_at="2026-12-02T08:00:00+07:00")
    clock = await desk.clock(created["code"])
    windows = {w["kind"]: w for w in clock["warnings"] if w["step"] is None}
    assert datetime.fromisoformat(windows["due_soon"]["at"]) == vn("2026-12-02 13:15")
    assert datetime.fromisoformat(windows["apology_needed"]["at"]) == vn("2026-12-02 15:07:30")
    assert clock["state"] == "due_soon"
    deadline = time.monotonic() + 30
    while raised(clock) != {"due_soon"}:
        assert time.monotonic() < deadline, clock["warnings"]
        await asyncio.sleep(0.2)
        clock = await desk.clock(created["code"])
    messages = await desk.sent(created["code"], "received")
    assert {m["trigger"] for m in messages} == {"received"}


async def morning_dossier_becomes_overdue_at_17(desk: Desk) -> None:
    """Received at 08:00, due 17:00: nothing overdue before 17:00:00; after it, exactly
    one overdue message per channel, created after 17:00:00."""
    five_pm = vn("2026-12-02 17:00")
    created = await desk.receive(SAME_DAY, received_at="2026-12-02T08:00:00+07:00")
    code = created["code"]
    assert desk.stack.now() < five_pm, "the stack took too long to start to see 17:00 pass"
    await desk.sent(code, "received")
    while desk.stack.now() < five_pm:
        clock = await desk.clock(code)
        before = await desk.messages(code)
        if desk.stack.now() < five_pm:
            assert clock["state"] == "due_soon"
            assert "overdue" not in raised(clock)
            assert {m["trigger"] for m in before} == {"received"}, before
        await asyncio.sleep(0.5)
    messages = await desk.sent(code, "overdue", within=30)
    await asyncio.sleep(1.5)  # a second overdue message would have come by now
    messages = await desk.messages(code)
    overdue = [m for m in messages if m["trigger"] == "overdue"]
    assert len(overdue) == 1, messages  # one SMS: the applicant has no e-mail
    assert all(datetime.fromisoformat(m["created_at"]) > five_pm for m in overdue)
    clock = await desk.clock(code)
    assert clock["state"] == "overdue"
    assert raised(clock) >= {"due_soon", "apology_needed", "overdue"}
    assert "17:00 02/12/2026" in desk.body_of(overdue[0]["key"])
