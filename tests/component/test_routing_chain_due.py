"""Routing's sheet (Mẫu 06) and sla's clock give a chain step the same due time.

Routing's use cases on a SQLite file fed through the in-memory broker; sla's due times
from its pure fold (``services.sla.domain.replay``) over the same reception, chain and
transfers, with the same calendar. With a pause, both services' ``apply`` on their own
SQLite files, fed the same envelopes and each other's outbox rows (routing's
``dossier.routed`` to sla, sla's ``sla.due_times`` to routing), on one injected clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy import select

from services.routing import process as routing_process
from services.routing.process import RoutingProcess
from services.routing.store import Assignment, ChainStepRow
from services.routing.views import SheetOut
from services.sla import domain as sla
from services.sla import process as sla_process
from services.sla.process import SlaProcess
from services.sla.views import ClockOut, clock_out
from shared.calendar import VN_TZ, Duration, DurationUnit
from shared.catalogue import Step
from shared.chain import working_hours
from shared.db import Database, table
from shared.events import (
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    Envelope,
    SlaDueTimes,
    TimeLimit,
    decode,
)
from shared.outbox import OutboxRow
from shared.settings import Settings
from shared.topics import DOSSIER_LIFECYCLE

UNIT = "000.00.00.H56"
POLICE = "000.00.61.H56"
BHXH = "000.00.62.H56"
RECEIVED = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)
TO_POLICE = datetime(2026, 3, 2, 15, 0, tzinfo=VN_TZ)
TO_BHXH = datetime(2026, 3, 3, 9, 0, tzinfo=VN_TZ)
TIGHT_DUE = datetime(2026, 3, 3, 15, 0, tzinfo=VN_TZ)
"""Less working time than the chain's 24 hours: every step is fitted into it."""
ROOMY_DUE = datetime(2026, 3, 5, 10, 0, tzinfo=VN_TZ)
"""Exactly the chain's 24 working hours from reception."""
CHAIN = [(UNIT, Decimal(8)), (POLICE, Decimal(8)), (BHXH, Decimal(8))]
"""The seed catalogue's chain of procedure 1.010801."""


@pytest.fixture
async def process(tmp_path: Path) -> AsyncIterator[RoutingProcess]:
    built = routing_process.build(Settings(var_dir=tmp_path, retry_backoff_seconds=0.0))
    await built.runtime.db.create_tables(built.runtime.tables)
    yield built
    await built.runtime.db.dispose()


def received(code: str, due_at: datetime | None) -> Envelope:
    return Envelope.wrap(
        DossierReceived(
            procedure_code="1.010801",
            channel=Channel.COUNTER,
            receiving_unit=UNIT,
            received_at=RECEIVED,
            due_at=due_at,
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        occurred_at=RECEIVED,
        source="test",
        dossier_code=code,
    )


def transfer(code: str, sequence: int, at: datetime, office: str) -> Envelope:
    return Envelope.wrap(
        DossierActionRecorded(
            action=DossierAction.TRANSFER,
            sequence=sequence,
            at=at,
            status="processing",
            national_status=4,
            office=office,
        ),
        occurred_at=at,
        source="test",
        dossier_code=code,
    )


TRANSFERS = [(TO_POLICE, POLICE), (TO_BHXH, BHXH)]


async def publish(process: RoutingProcess, *events: Envelope) -> None:
    async with TestKafkaBroker(process.runtime.broker) as broker:
        for event in events:
            await broker.publish(event.encode(), DOSSIER_LIFECYCLE.name, key=event.key)


async def routing_sheet(process: RoutingProcess, code: str) -> SheetOut:
    found = await process.routing.sheet(code)
    assert found is not None
    return SheetOut.of(*found)


def sla_steps(
    process: RoutingProcess,
    due_at: datetime | None,
    chain: Sequence[tuple[str, Decimal]],
    transfers: Sequence[tuple[datetime, str]],
) -> tuple[sla.StepClock, ...]:
    terms = sla.Terms(
        received_at=RECEIVED,
        time_limit=Duration(Decimal(3), DurationUnit.WORKING_DAYS),
        supplement_rule="pause",
        slip_due_at=due_at,
        steps=tuple(sla.ChainStep(office, hours) for office, hours in chain),
    )
    entries = [
        sla.Entry(n, at, "transfer", office=office)
        for n, (at, office) in enumerate(transfers, start=1)
    ]
    return sla.replay(terms, entries, process.routing.calendar, sla.Policy()).steps


def due_times(sheet: SheetOut) -> list[tuple[datetime | None, datetime | None]]:
    return [(step.started_at, step.due_at) for step in sheet.steps]


def sla_due_times(steps: Sequence[sla.StepClock]) -> list[tuple[datetime | None, datetime | None]]:
    return [(step.started_at, step.due_at) for step in steps]


@pytest.mark.parametrize("due_at", [TIGHT_DUE, ROOMY_DUE, None])
async def test_the_sheet_dates_every_step_as_sla_does(
    process: RoutingProcess, due_at: datetime | None
) -> None:
    await publish(process, received("C", due_at))
    at_reception = await routing_sheet(process, "C")
    assert due_times(at_reception) == sla_due_times(sla_steps(process, due_at, CHAIN, []))

    await publish(process, transfer("C", 1, TO_POLICE, POLICE))
    after_one = await routing_sheet(process, "C")
    assert due_times(after_one) == sla_due_times(sla_steps(process, due_at, CHAIN, TRANSFERS[:1]))

    await publish(process, transfer("C", 2, TO_BHXH, BHXH))
    sheet = await routing_sheet(process, "C")
    expected = sla_steps(process, due_at, CHAIN, TRANSFERS)
    assert due_times(sheet) == sla_due_times(expected)
    assert sheet.dossier_due_at == due_at
    assert [step.office for step in sheet.steps] == [UNIT, POLICE, BHXH]


async def test_steps_after_a_transfer_are_fitted_into_the_dossiers_due_time(
    process: RoutingProcess,
) -> None:
    """The case routing once got wrong: a later step that does not fit the time left gets
    its share of it, and is never due after the dossier."""
    await publish(
        process,
        received("T", TIGHT_DUE),
        *(transfer("T", n, at, office) for n, (at, office) in enumerate(TRANSFERS, start=1)),
    )
    sheet = await routing_sheet(process, "T")
    calendar = process.routing.calendar
    own_hours_due = calendar.add_working_time(TO_POLICE, working_hours(Decimal(8)))
    assert sheet.steps[1].due_at is not None
    assert sheet.steps[1].due_at < own_hours_due
    assert sheet.steps[2].due_at is not None
    assert sheet.steps[2].due_at <= TIGHT_DUE
    assert due_times(sheet) == sla_due_times(sla_steps(process, TIGHT_DUE, CHAIN, TRANSFERS))


async def test_fractional_hours_are_kept_exactly_and_dated_as_sla_dates_them(
    process: RoutingProcess,
) -> None:
    """Hours that are no whole number of minutes (2.555 h = 153.3 min) are not rounded:
    the step is due to the microsecond where sla's clock says, before and after a
    manual assignment and a transfer."""
    chain = [(UNIT, Decimal("2.555")), (POLICE, Decimal("5.0005"))]
    await publish(process, received("F", ROOMY_DUE))
    await process.routing.assign(
        "F", UNIT, steps=[Step(office=office, hours=hours) for office, hours in chain], by="t"
    )
    sheet = await routing_sheet(process, "F")
    assert [(step.office, step.hours) for step in sheet.steps] == chain
    # 10:00-11:30, then 13:00 + 1 h 3 min 18 s (rounded to minutes it was 14:03:00)
    assert sheet.steps[0].due_at == datetime(2026, 3, 2, 14, 3, 18, tzinfo=VN_TZ)
    assert due_times(sheet) == sla_due_times(sla_steps(process, ROOMY_DUE, chain, []))

    await publish(process, transfer("F", 1, TO_POLICE, POLICE))
    sheet = await routing_sheet(process, "F")
    expected = sla_steps(process, ROOMY_DUE, chain, [(TO_POLICE, POLICE)])
    assert due_times(sheet) == sla_due_times(expected)


async def test_the_sheet_says_which_due_time_its_steps_were_fitted_into(
    process: RoutingProcess,
) -> None:
    await publish(process, received("S", TIGHT_DUE))
    sheet = await routing_sheet(process, "S")
    assert sheet.dossier_due_at == TIGHT_DUE
    assert "GET /api/v1/sla/{code}" in sheet.due_times
    assert sheet.model_dump(mode="json")["dossier_due_at"] is not None


SUPPLEMENT_ASKED = datetime(2026, 3, 2, 16, 0, tzinfo=VN_TZ)
"""In the middle of step 2 (the police's, from 15:00)."""
SUPPLEMENT_GIVEN = datetime(2026, 3, 3, 8, 30, tzinfo=VN_TZ)
"""The next morning: the clock waited the working time in between."""


class SteppedClock:
    """The clock both services read; the test sets it to each event's instant."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Pair:
    """Routing and sla on their own databases, one clock, and what each outbox already
    handed on."""

    routing: RoutingProcess
    sla: SlaProcess
    clock: SteppedClock
    handed: dict[str, int] = field(default_factory=lambda: {"routing": 0, "sla": 0})


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    settings = Settings(var_dir=tmp_path, retry_backoff_seconds=0.0)
    clock = SteppedClock(RECEIVED)
    routing = routing_process.build(settings, clock=clock)
    tracker = sla_process.build(settings, clock=clock, calendar=routing.routing.calendar)
    for runtime in (routing.runtime, tracker.runtime):
        await runtime.db.create_tables(runtime.tables)
    yield Pair(routing, tracker, clock)
    for runtime in (routing.runtime, tracker.runtime):
        await runtime.db.dispose()


async def new_outbox(pair: Pair, name: str, db: Database) -> list[Envelope]:
    """The outbox rows of ``name`` written since the last call."""
    outbox = table(OutboxRow)
    async with db.sessions() as session:
        conn = await session.connection()
        rows = (
            await conn.execute(
                select(outbox.c.id, outbox.c.value)
                .where(outbox.c.id > pair.handed[name])
                .order_by(outbox.c.id)
            )
        ).all()
    if rows:
        pair.handed[name] = rows[-1][0]
    return [decode(value) for _, value in rows]


async def to_routing(pair: Pair, events: Sequence[Envelope]) -> list[Envelope]:
    """Apply ``events`` to routing; what it published meanwhile."""
    async with pair.routing.runtime.db.transaction() as session:
        await pair.routing.routing.apply(session, events)
    return await new_outbox(pair, "routing", pair.routing.runtime.db)


async def to_sla(pair: Pair, events: Sequence[Envelope]) -> list[Envelope]:
    """Apply ``events`` to sla; the ``sla.due_times`` it published meanwhile."""
    async with pair.sla.runtime.db.transaction() as session:
        await pair.sla.tracker.apply(session, events)
    published = await new_outbox(pair, "sla", pair.sla.runtime.db)
    return [e for e in published if e.type == SlaDueTimes.event_type]


async def both(pair: Pair, *events: Envelope) -> list[Envelope]:
    """Each lifecycle event at its instant: routing, then sla (with routing's decision),
    then sla's due times back to routing. The due times sla published."""
    published: list[Envelope] = []
    for event in events:
        pair.clock.at = event.occurred_at
        routed = await to_routing(pair, [event])
        due_times = await to_sla(pair, [event, *routed])
        await to_routing(pair, due_times)
        published += due_times
    return published


def action(
    code: str, sequence: int, what: DossierAction, at: datetime, **extra: object
) -> Envelope:
    return Envelope.wrap(
        DossierActionRecorded.model_validate(
            {
                "action": what,
                "sequence": sequence,
                "at": at,
                "status": what.value,
                "national_status": 4,
                **extra,
            }
        ),
        occurred_at=at,
        source="test",
        dossier_code=code,
    )


def paused_lifecycle(code: str, due_at: datetime | None) -> list[Envelope]:
    """Received, at the police from 15:00, a supplement asked at 16:00 and given the next
    morning, then at BHXH."""
    return [
        received(code, due_at),
        transfer(code, 1, TO_POLICE, POLICE),
        action(code, 2, DossierAction.REQUEST_SUPPLEMENT, SUPPLEMENT_ASKED, reason="thiếu"),
        action(code, 3, DossierAction.SUBMIT_SUPPLEMENT, SUPPLEMENT_GIVEN),
        transfer(code, 4, datetime(2026, 3, 3, 10, 0, tzinfo=VN_TZ), BHXH),
    ]


async def sla_answer(pair: Pair, code: str) -> ClockOut:
    """What ``GET /api/v1/sla/{code}`` answers (sla's clock, for a key reading everything)."""
    tracker = pair.sla.tracker
    found = await tracker.get(code)
    assert found is not None
    clock = tracker.replay(*found)
    assert clock is not None
    return clock_out(
        found[0],
        clock,
        emitted=await tracker.emitted(code),
        now=pair.clock(),
        policy=tracker.policy,
    )


async def assert_same_due_times(pair: Pair, code: str) -> tuple[SheetOut, ClockOut]:
    sheet = await routing_sheet(pair.routing, code)
    answer = await sla_answer(pair, code)
    assert sheet.dossier_due_at == answer.due_at
    assert [(s.office, s.started_at, s.due_at) for s in sheet.steps] == [
        (s.office, s.started_at, s.due_at) for s in answer.steps
    ]
    return sheet, answer


@pytest.mark.parametrize("due_at", [TIGHT_DUE, ROOMY_DUE])
async def test_after_a_supplement_in_step_2_the_sheet_shows_the_clocks_due_times(
    pair: Pair, due_at: datetime
) -> None:
    code = "P"
    received_, to_police, asked, given, to_bhxh = paused_lifecycle(code, due_at)
    await both(pair, received_, to_police)
    await assert_same_due_times(pair, code)

    await both(pair, asked)
    await assert_same_due_times(pair, code)

    published = await both(pair, given)
    assert len(published) == 1  # the pause's end moved the due times
    sheet, answer = await assert_same_due_times(pair, code)
    waited = pair.routing.routing.calendar.working_time_between(SUPPLEMENT_ASKED, SUPPLEMENT_GIVEN)
    assert answer.due_at == pair.routing.routing.calendar.add_working_time(due_at, waited)
    assert sheet.steps[1].due_from == "clock"
    _, chain = await found_sheet(pair.routing, code)
    assert chain[1].due_at != sheet.steps[1].due_at  # routing's own: as if never paused
    assert "sla.due_times" in sheet.due_times

    await both(pair, to_bhxh)
    sheet, answer = await assert_same_due_times(pair, code)
    assert [s.due_from for s in sheet.steps] == ["clock", "clock", "clock"]
    assert sheet.steps[2].due_at is not None
    assert answer.due_at is not None
    assert sheet.steps[2].due_at <= answer.due_at


async def test_sla_publishes_due_times_only_when_they_move(pair: Pair) -> None:
    code = "Q"
    events = paused_lifecycle(code, ROOMY_DUE)
    published = await both(pair, *events)
    # the chain's first dating, the police's step, the pause's end, BHXH's step; the
    # request itself moves nothing
    assert len(published) == 4
    last = published[-1].body(SlaDueTimes)
    assert [step.office for step in last.steps] == [UNIT, POLICE, BHXH]

    pair.clock.at = datetime(2026, 3, 3, 11, 0, tzinfo=VN_TZ)
    assert await to_sla(pair, events) == []  # redelivered: nothing again
    await to_routing(pair, published[:1])  # an old one again, then the latest
    await to_routing(pair, published[-1:])
    await assert_same_due_times(pair, code)


async def test_the_sheet_shows_the_clock_whichever_topic_routing_reads_first(
    pair: Pair,
) -> None:
    """Sla's due times of the transfer and the pause reach routing before the transfer
    itself does: routing's own computation does not overwrite them."""
    code = "R"
    received_, to_police, asked, given, _ = paused_lifecycle(code, TIGHT_DUE)
    await both(pair, received_)
    pair.clock.at = SUPPLEMENT_GIVEN
    due_times = await to_sla(pair, [to_police, asked, given])
    await to_routing(pair, due_times)
    await to_routing(pair, [to_police, asked, given])
    sheet, _ = await assert_same_due_times(pair, code)
    assert sheet.current_step == 1
    assert sheet.steps[1].due_from == "clock"


async def found_sheet(process: RoutingProcess, code: str) -> tuple[Assignment, list[ChainStepRow]]:
    found = await process.routing.sheet(code)
    assert found is not None
    return found
