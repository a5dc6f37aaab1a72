"""Routing's sheet (Mẫu 06) and sla's clock give a chain step the same due time.

Routing's use cases on a SQLite file fed through the in-memory broker; sla's due times
from its pure fold (``services.sla.domain.replay``) over the same reception, chain and
transfers, with the same calendar.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from faststream.kafka import TestKafkaBroker

from services.routing import process as routing_process
from services.routing.process import RoutingProcess
from services.routing.views import SheetOut
from services.sla import domain as sla
from shared.calendar import VN_TZ, Duration, DurationUnit
from shared.catalogue import Step
from shared.chain import working_hours
from shared.events import (
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    Envelope,
    TimeLimit,
)
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
    assert "GET /api/v1/clock/{code}" in sheet.due_times
    assert sheet.model_dump(mode="json")["dossier_due_at"] is not None
