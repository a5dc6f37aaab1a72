"""The catalogue as events: routing versions and publishes each change; intake follows the
topic, validates and computes due times with the newest version, and keeps it across a
restart. Routing's and intake's real code on SQLite files, the broker in memory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from faststream.kafka import TestKafkaBroker
from sqlalchemy import select
from typer.testing import CliRunner

from motcua import catalogue_cli
from services.intake import process as intake_process
from services.intake.app import Answer, CatalogueError, Intake, NewDossier
from services.routing import app as routing_app
from services.routing import process as routing_process
from services.routing.api import create_app as routing_http
from services.routing.process import RoutingProcess
from shared.auth import API_KEY_HEADER, Principal, Role, parse_key
from shared.calendar import VN_TZ
from shared.catalogue import ProcedureError, parse_procedure, seed_catalogue
from shared.db import Database, table
from shared.events import CataloguePublished, Channel, Contact, DossierReceived, Envelope, decode
from shared.localbroker import free_port
from shared.outbox import OutboxRow
from shared.settings import Settings, get_settings
from shared.topics import CATALOGUE
from tests.factories import grant_key

UNIT = "000.00.00.H56"
TUESDAY = datetime(2026, 6, 2, 9, 0, tzinfo=VN_TZ)
NEW_CODE = "1.999001"
COUNTER = Principal(key_id="k1", role=Role.COUNTER, unit=UNIT)


def new_procedure(**overrides: Any) -> dict[str, Any]:
    """A procedure routing's seed does not have: 2 working days over two offices."""
    raw: dict[str, Any] = {
        "code": NEW_CODE,
        "name": "Thủ tục thử nghiệm",
        "field": "Hộ tịch",
        "levels": ["xa"],
        "duration": {"value": 2, "unit": "working_days"},
        "online_duration": None,
        "supplement_rule": "pause",
        "fee_vnd": 0,
        "steps": [{"office": None, "hours": 8}, {"office": "000.00.61.H56", "hours": 8}],
    }
    raw.update(overrides)
    return raw


def settings_in(var_dir: Path) -> Settings:
    return Settings(
        var_dir=var_dir,
        retry_backoff_seconds=0.0,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
    )


async def outbox_of(db: Database) -> list[Envelope]:
    async with db.sessions() as session:
        conn = await session.connection()
        rows = await conn.execute(select(table(OutboxRow).c.value).order_by(table(OutboxRow).c.id))
        return [decode(value) for value in rows.scalars().all()]


def published(events: list[Envelope]) -> list[CataloguePublished]:
    return [e.body(CataloguePublished) for e in events if e.type == CataloguePublished.event_type]


@pytest.fixture
async def routing(tmp_path: Path) -> AsyncIterator[RoutingProcess]:
    built = routing_process.build(settings_in(tmp_path / "routing"))
    await built.runtime.db.create_tables(built.runtime.tables)
    yield built
    await built.runtime.db.dispose()


async def start_intake(var_dir: Path) -> Intake:
    intake = intake_process.build(settings_in(var_dir), clock=lambda: TUESDAY).intake
    await intake.runtime.db.create_tables(intake.runtime.tables)
    return intake


def dossier(procedure: str) -> NewDossier:
    return NewDossier(
        procedure_code=procedure,
        channel=Channel.COUNTER,
        receiving_unit=UNIT,
        applicant=Contact(name="Phạm Thị D"),
        applicant_id_number=None,
        documents=["Tờ khai"],
    )


async def deliver(intake: Intake, events: list[Envelope]) -> None:
    """Routing's outbox as its relay would publish it, into intake's consumer."""
    async with TestKafkaBroker(intake.runtime.broker) as broker:
        for event in events:
            if event.type == CataloguePublished.event_type:
                await broker.publish(event.encode(), CATALOGUE.name)


def event_code(answer: Answer) -> str:
    """The dossier code an answer of ``receive`` gives."""
    code: str = answer.body["code"]
    return code


async def received_events(intake: Intake) -> list[DossierReceived]:
    return [
        e.body(DossierReceived)
        for e in await outbox_of(intake.runtime.db)
        if e.type == DossierReceived.event_type
    ]


async def test_first_start_stores_and_publishes_the_seed_once(routing: RoutingProcess) -> None:
    assert await routing.routing.catalogues.publish() is True
    assert await routing.routing.catalogues.publish() is False
    [seed] = published(await outbox_of(routing.runtime.db))
    assert seed.version == 1
    assert seed.changed_by == routing_app.SEEDED_BY
    assert {p["code"] for p in seed.procedures} == set(seed_catalogue().procedures)


async def test_each_change_is_a_new_version_in_the_outbox(routing: RoutingProcess) -> None:
    use = routing.routing
    two = await use.catalogues.add_procedure(
        parse_procedure(new_procedure()), replace=False, by="ops"
    )
    three = await use.catalogues.remove_procedure("2.000635", by="ops")
    assert (two.version, three.version) == (2, 3)
    events = published(await outbox_of(routing.runtime.db))
    assert [(e.version, e.changed_by) for e in events] == [(2, "ops"), (3, "ops")]
    assert NEW_CODE in {p["code"] for p in events[0].procedures}
    assert "2.000635" not in {p["code"] for p in events[1].procedures}
    history = await use.catalogues.history()
    assert [(row.version, row.change) for row in history] == [
        (3, "remove 2.000635"),
        (2, f"add {NEW_CODE} Thủ tục thử nghiệm"),
        (1, "the catalogue shipped with motcua"),
    ]
    # versions published with their change are not published again at start
    assert await use.catalogues.publish() is False


async def test_a_refused_change_writes_nothing(routing: RoutingProcess) -> None:
    use = routing.routing
    with pytest.raises(ProcedureError, match="already in catalogue v1"):
        await use.catalogues.add_procedure(
            seed_catalogue().procedures["2.000635"], replace=False, by="ops"
        )
    with pytest.raises(ProcedureError, match=r"no procedure 9\.999999"):
        await use.catalogues.remove_procedure("9.999999", by="ops")
    assert published(await outbox_of(routing.runtime.db)) == []
    assert (await use.catalogues.current()).version == 1


async def test_a_change_from_another_process_reaches_the_running_one(
    routing: RoutingProcess,
) -> None:
    """The command line writes through its own ``Routing``; the process re-reads it."""
    other = routing_app.Routing(routing.runtime.db, seed_catalogue(), routing.routing.calendar)
    await other.catalogues.add_procedure(parse_procedure(new_procedure()), replace=False, by="cli")
    assert routing.routing.catalogue.version == 1
    assert (await routing.routing.catalogues.current()).get(NEW_CODE) is not None


async def test_intake_validates_with_the_newest_version_and_keeps_it(
    routing: RoutingProcess, tmp_path: Path
) -> None:
    use = routing.routing
    intake = await start_intake(tmp_path / "intake")
    with pytest.raises(CatalogueError) as unknown:
        await intake.receive(dossier(NEW_CODE), actor=COUNTER)
    assert unknown.value.errors[0][0] == "procedure_code"

    await use.catalogues.add_procedure(parse_procedure(new_procedure()), replace=False, by="ops")
    await deliver(intake, await outbox_of(routing.runtime.db))
    answer = await intake.receive(dossier(NEW_CODE), actor=COUNTER)
    assert answer.status_code == 201
    [event] = await received_events(intake)
    assert event.procedure_code == NEW_CODE
    assert event.catalogue_version == 2
    assert event.due_at == datetime(2026, 6, 4, 9, 0, tzinfo=VN_TZ)  # 2 working days
    assert (await intake.slip(event_code(answer), actor=COUNTER)).procedure_name == (
        "Thủ tục thử nghiệm"
    )

    await use.catalogues.remove_procedure(NEW_CODE, by="ops")
    await deliver(intake, await outbox_of(routing.runtime.db))  # v2 again, then v3
    with pytest.raises(CatalogueError) as removed:
        await intake.receive(dossier(NEW_CODE), actor=COUNTER)
    assert removed.value.errors == [("procedure_code", f"unknown procedure {NEW_CODE!r}")]
    # the dossier received under v2 still prints its slip
    assert (await intake.slip(event_code(answer), actor=COUNTER)).procedure_name == (
        "Thủ tục thử nghiệm"
    )
    await intake.runtime.db.dispose()

    restarted = await start_intake(tmp_path / "intake")
    with pytest.raises(CatalogueError):
        await restarted.receive(dossier(NEW_CODE), actor=COUNTER)
    assert restarted.catalogue.version == 3
    assert (await restarted.slip(event_code(answer), actor=COUNTER)).procedure_name == (
        "Thủ tục thử nghiệm"
    )
    await restarted.runtime.db.dispose()


async def test_a_dossier_records_the_version_it_was_received_under(
    routing: RoutingProcess, tmp_path: Path
) -> None:
    intake = await start_intake(tmp_path / "intake")
    await intake.receive(dossier("2.000635"), actor=COUNTER)
    cheaper = new_procedure(
        code="2.000635", duration={"value": 1, "unit": "same_day"}, fee_vnd=5000
    )
    cheaper["steps"] = [{"office": None, "hours": 8}]
    await routing.routing.catalogues.add_procedure(parse_procedure(cheaper), replace=True, by="ops")
    await deliver(intake, await outbox_of(routing.runtime.db))
    await intake.receive(dossier("2.000635"), actor=COUNTER)
    versions = [e.catalogue_version for e in await received_events(intake)]
    assert versions == [1, 2]
    await intake.runtime.db.dispose()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Routing's HTTP API, every request with an admin key (delivered to routing's copy)."""
    app = routing_http(settings_in(tmp_path))
    runtime = app.state.runtime
    await runtime.db.create_tables(runtime.tables)
    admin = await grant_key(runtime.db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://routing", headers=admin
    ) as http:
        yield http
    await runtime.db.dispose()


def key_id_of(client: httpx.AsyncClient) -> str:
    """The id of the key the client sends."""
    parsed = parse_key(client.headers[API_KEY_HEADER])
    assert parsed is not None
    return parsed[0]


async def test_the_api_adds_replaces_and_removes_procedures(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/catalogue", params={"by": "ops"}, json=new_procedure())
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 2
    assert (await client.get(f"/api/v1/catalogue/{NEW_CODE}")).json()["name"] == (
        "Thủ tục thử nghiệm"
    )
    again = await client.post("/api/v1/catalogue", params={"by": "ops"}, json=new_procedure())
    assert again.status_code == 422
    assert again.json()["detail"][0]["loc"] == ["body", "code"]
    renamed = new_procedure(name="Tên mới")
    replaced = await client.post(
        "/api/v1/catalogue", params={"by": "ops", "replace": "true"}, json=renamed
    )
    assert replaced.status_code == 201, replaced.text
    assert (await client.get(f"/api/v1/catalogue/{NEW_CODE}")).json()["name"] == "Tên mới"
    gone = await client.delete(f"/api/v1/catalogue/{NEW_CODE}", params={"by": "ops"})
    assert gone.json()["version"] == 4
    assert (await client.get(f"/api/v1/catalogue/{NEW_CODE}")).status_code == 404
    assert (
        await client.delete(f"/api/v1/catalogue/{NEW_CODE}", params={"by": "ops"})
    ).status_code == 404
    history = (await client.get("/api/v1/catalogue/history")).json()
    by = f"ops (key {key_id_of(client)})"
    assert [(v["version"], v["changed_by"]) for v in history] == [
        (4, by),
        (3, by),
        (2, by),
        (1, "seed"),
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration": {"value": 2, "unit": "fortnights"}}, ["body", "duration", "unit"]),
        ({"code": "2.635"}, ["body", "code"]),
        ({"steps": [{"office": None, "hours": 8}]}, ["body", "steps"]),
    ],
)
async def test_the_api_refuses_bad_input_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: list[str]
) -> None:
    before = (await client.get("/api/v1/catalogue")).json()
    refused = await client.post(
        "/api/v1/catalogue", params={"by": "ops"}, json=new_procedure(**change)
    )
    assert refused.status_code == 422
    assert [error["loc"] for error in refused.json()["detail"]] == [field]
    assert (await client.get("/api/v1/catalogue")).json() == before
    assert (await client.get("/api/v1/catalogue/history")).json() == []  # not even the seed


def test_the_command_line_changes_and_lists_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTCUA_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    app = typer.Typer()
    catalogue_cli.register(app)
    runner = CliRunner()
    good, bad = tmp_path / "new.json", tmp_path / "bad.json"
    good.write_text(json.dumps(new_procedure()), "utf-8")
    bad.write_text(json.dumps(new_procedure(steps=[{"office": None, "hours": 3}])), "utf-8")
    try:
        added = runner.invoke(app, ["catalogue", "add", str(good), "--by", "ops"])
        assert added.exit_code == 0, added.output
        assert "catalogue v2: added 1.999001" in added.output
        refused = runner.invoke(app, ["catalogue", "add", str(bad)])
        assert refused.exit_code == 2
        assert "steps: the steps add up to 3 working hours" in refused.output
        listed = runner.invoke(app, ["catalogue", "list"])
        assert f"catalogue v2: {len(seed_catalogue().procedures) + 1} procedures" in listed.output
        assert NEW_CODE in listed.output
        removed = runner.invoke(app, ["catalogue", "remove", NEW_CODE, "--by", "ops"])
        assert "catalogue v3: removed 1.999001" in removed.output
        seed_file = Path(__file__).parents[2] / "shared" / "data" / "procedures.json"
        imported = runner.invoke(app, ["catalogue", "import", str(seed_file), "--by", "ops"])
        seeded = len(seed_catalogue().procedures)
        assert f"catalogue v4: imported procedures.json ({seeded} procedures)" in imported.output
        history = runner.invoke(app, ["catalogue", "history"])
        assert history.output.splitlines()[-1].endswith("not yet published")
    finally:
        get_settings.cache_clear()
