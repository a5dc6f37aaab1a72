"""Routing's use cases on a real SQLite file, fed through FastStream's in-memory broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from faststream.kafka import TestKafkaBroker
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.routing import domain
from services.routing import process as routing_process
from services.routing.app import AssignError, Move
from services.routing.process import RoutingProcess
from shared.calendar import VN_TZ
from shared.catalogue import Step
from shared.db import table
from shared.events import (
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    DossierRouted,
    Envelope,
    TimeLimit,
    decode,
)
from shared.outbox import OutboxRow
from shared.settings import Settings
from shared.topics import DOSSIER_LIFECYCLE

UNIT = "000.00.00.H56"
POLICE = "000.00.61.H56"
BHXH = "000.00.62.H56"
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)


@pytest.fixture
async def process(tmp_path: Path) -> AsyncIterator[RoutingProcess]:
    built = routing_process.build(Settings(var_dir=tmp_path, retry_backoff_seconds=0.0))
    await built.runtime.db.create_tables(built.runtime.tables)
    yield built
    await built.runtime.db.dispose()


def received(
    code: str,
    procedure: str = "2.000635",
    *,
    at: datetime = MONDAY,
    field: str = "Hộ tịch",
    due_at: datetime | None = None,
) -> Envelope:
    return Envelope.wrap(
        DossierReceived(
            procedure_code=procedure,
            channel=Channel.COUNTER,
            receiving_unit=UNIT,
            received_at=at,
            due_at=due_at,
            field=field,
            time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        occurred_at=at,
        source="test",
        dossier_code=code,
    )


def action(
    code: str, kind: DossierAction, sequence: int, at: datetime, office: str | None = None
) -> Envelope:
    return Envelope.wrap(
        DossierActionRecorded(
            action=kind,
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


async def publish(process: RoutingProcess, *events: Envelope) -> None:
    async with TestKafkaBroker(process.runtime.broker) as broker:
        for event in events:
            await broker.publish(event.encode(), DOSSIER_LIFECYCLE.name, key=event.key)


async def outbox(process: RoutingProcess) -> list[Envelope]:
    async with process.runtime.db.sessions() as session:
        conn = await session.connection()
        rows = await conn.execute(select(table(OutboxRow).c.value).order_by(table(OutboxRow).c.id))
        return [decode(value) for value in rows.scalars().all()]


def police_rule() -> domain.Rule:
    return domain.parse_rule({"priority": 1, "office": POLICE, "procedure": "2.000635"})


async def test_a_rule_change_affects_only_new_dossiers_until_rerouted(
    process: RoutingProcess,
) -> None:
    routing = process.routing
    await publish(process, received("A"))
    await routing.add_rule(police_rule(), by="admin")
    await publish(process, received("B"))
    sheet_a, sheet_b = await routing.sheet("A"), await routing.sheet("B")
    assert sheet_a is not None
    assert sheet_b is not None
    assert (sheet_a[0].office, sheet_a[0].rule_version) == (UNIT, 0)
    assert (sheet_b[0].office, sheet_b[0].rule_version) == (POLICE, 1)

    report = await routing.reroute()

    assert report.moved == [Move("A", UNIT, POLICE, "rules v1: rule 1")]
    assert report.unchanged == 0
    moved = await routing.sheet("A")
    assert moved is not None
    assert (moved[0].office, moved[0].rule_version) == (POLICE, 1)
    assert [step.office for step in moved[1]] == [POLICE]
    events = [e for e in await outbox(process) if e.type == DossierRouted.event_type]
    assert [e.dossier_code for e in events] == ["A", "B", "A"]
    again = events[-1].body(DossierRouted)
    assert (again.office, again.rule) == (POLICE, "rules v1: rule 1")
    assert (await routing.reroute()).moved == []


async def test_reroute_keeps_a_dossier_already_past_its_first_step(
    process: RoutingProcess,
) -> None:
    routing = process.routing
    await publish(
        process,
        received("L", "1.010801"),
        action("L", DossierAction.TRANSFER, 1, MONDAY.replace(hour=15), POLICE),
    )
    await routing.add_rule(
        domain.parse_rule({"priority": 1, "office": BHXH, "procedure": "1.010801"}), by="admin"
    )
    report = await routing.reroute()
    assert report.moved == []
    assert report.kept == [("L", "already at step 2 of its chain")]


async def test_unroutable_dossier_waits_in_the_queue_until_assigned(
    process: RoutingProcess,
) -> None:
    routing = process.routing
    await publish(process, received("Q", "9.999999"))
    [entry] = await routing.manual_queue()
    assert entry.dossier_code == "Q"
    assert "9.999999 is not in catalogue v1" in entry.reason
    await routing.refresh_gauges()
    assert REGISTRY.get_sample_value("motcua_routing_manual_queue") == 1

    with pytest.raises(AssignError, match="give the chain"):
        await routing.assign("Q", POLICE, steps=None, by="admin")
    assert len(await routing.manual_queue()) == 1

    row = await routing.assign(
        "Q", POLICE, steps=[Step(office=POLICE, hours=Decimal(16))], by="admin"
    )

    assert (row.office, row.manual) == (POLICE, True)
    assert await routing.manual_queue() == []
    assert REGISTRY.get_sample_value("motcua_routing_manual_queue") == 0
    types = [e.type for e in await outbox(process)]
    assert types == ["dossier.unroutable", "dossier.routed"]
    routed = (await outbox(process))[-1].body(DossierRouted)
    assert routed.rule == "manual assignment by admin"
    assert [(s.office, s.hours) for s in routed.steps] == [(POLICE, Decimal(16))]
    assert (await routing.reroute()).moved == []


async def test_reroute_routes_queued_dossiers_a_new_rule_matches(process: RoutingProcess) -> None:
    routing = process.routing
    await publish(process, received("Q", "9.999999"))
    await routing.add_rule(
        domain.parse_rule(
            {
                "priority": 1,
                "office": POLICE,
                "procedure": "9.999999",
                "steps": [{"office": POLICE, "hours": 8}],
            }
        ),
        by="admin",
    )
    report = await routing.reroute()
    assert report.moved == [Move("Q", "manual queue", POLICE, "rules v1: rule 1")]
    assert await routing.manual_queue() == []


async def test_duplicate_received_events_route_once(process: RoutingProcess) -> None:
    event = received("D")
    await publish(process, event, event, received("D"))
    assert [e.type for e in await outbox(process)] == ["dossier.routed"]


async def test_transfers_walk_the_chain_with_per_step_due_times(process: RoutingProcess) -> None:
    first_transfer = datetime(2026, 3, 2, 15, 0, tzinfo=VN_TZ)
    second_transfer = datetime(2026, 3, 3, 9, 0, tzinfo=VN_TZ)
    resolved = datetime(2026, 3, 4, 10, 0, tzinfo=VN_TZ)
    await publish(
        process,
        received("K", "1.010801"),
        action("K", DossierAction.TRANSFER, 1, first_transfer, POLICE),
        action("K", DossierAction.TRANSFER, 2, second_transfer, BHXH),
        action("K", DossierAction.TRANSFER, 2, second_transfer, BHXH),  # replayed by intake
        action("K", DossierAction.RESOLVE, 3, resolved),
    )
    found = await process.routing.sheet("K")
    assert found is not None
    row, steps = found
    assert row.current_step == 2
    assert row.office == BHXH
    assert row.closed_at == resolved
    assert [(s.office, s.started_at, s.due_at, s.ended_at) for s in steps] == [
        (UNIT, MONDAY, datetime(2026, 3, 3, 10, 0, tzinfo=VN_TZ), first_transfer),
        (POLICE, first_transfer, datetime(2026, 3, 3, 15, 0, tzinfo=VN_TZ), second_transfer),
        (BHXH, second_transfer, datetime(2026, 3, 4, 9, 0, tzinfo=VN_TZ), resolved),
    ]
    [routed] = await outbox(process)
    assert [s.office for s in routed.body(DossierRouted).steps] == [UNIT, POLICE, BHXH]


async def test_a_first_step_that_does_not_fit_the_dossier_is_due_with_it(
    process: RoutingProcess,
) -> None:
    """A same-day dossier received at 14:11 is due at 17:00: its one 8-hour step too."""
    at = datetime(2026, 12, 1, 14, 11, tzinfo=VN_TZ)
    five_pm = datetime(2026, 12, 1, 17, 0, tzinfo=VN_TZ)
    await publish(process, received("S", "2.000635", at=at, due_at=five_pm))
    found = await process.routing.sheet("S")
    assert found is not None
    [step] = found[1]
    assert step.due_at == five_pm


async def test_refused_rule_changes_leave_the_rule_set_unchanged(
    process: RoutingProcess,
) -> None:
    routing = process.routing
    await routing.add_rule(police_rule(), by="admin")
    clash = domain.parse_rule({"priority": 1, "office": BHXH})
    with pytest.raises(domain.RuleError, match="priority 1 is already taken"):
        await routing.add_rule(clash, by="admin")
    with pytest.raises(domain.RuleError, match="no rule of priority 9"):
        await routing.remove_rule(9, by="admin")
    current = await routing.rules()
    assert current.version == 1
    assert current.rules == (police_rule(),)
    [version] = await routing.history()
    assert (version.changed_by, version.change) == (
        "admin",
        f"add rule 1: procedure=2.000635 -> {POLICE}",
    )


async def test_every_time_routing_records_comes_from_the_injected_clock(tmp_path: Path) -> None:
    """Decisions, rule and catalogue versions, and events are dated by ``build(clock=...)``,
    not by the wall clock."""
    instant = datetime(2026, 3, 2, 11, 30, tzinfo=VN_TZ)
    built = routing_process.build(
        Settings(var_dir=tmp_path, retry_backoff_seconds=0.0), clock=lambda: instant
    )
    await built.runtime.db.create_tables(built.runtime.tables)
    try:
        routing = built.routing
        await routing.catalogues.load()
        await publish(built, received("A"), received("U", "9.999999"))
        await routing.add_rule(police_rule(), by="admin")
        [queued] = await routing.manual_queue()
        assert queued.queued_at == instant
        await routing.assign("U", BHXH, steps=[Step(office=BHXH, hours=Decimal(8))], by="admin")
        routed = await routing.sheet("A")
        assigned = await routing.sheet("U")
        assert routed is not None
        assert assigned is not None
        assert routed[0].routed_at == instant
        assert assigned[0].routed_at == instant
        assert [version.changed_at for version in await routing.history()] == [instant]
        assert [version.changed_at for version in await routing.catalogues.history()] == [instant]
        events = await outbox(built)
        assert [e.type for e in events] == [
            "dossier.routed",
            "dossier.unroutable",
            "dossier.routed",
        ]
        assert {e.occurred_at for e in events} == {instant}
    finally:
        await built.runtime.db.dispose()
