"""Routing's admin HTTP API and ``motcua rules`` on a real SQLite file (no broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from motcua import routing_cli
from services.routing.api import create_app
from shared.settings import Settings, get_settings

UNIT = "000.00.00.H56"
POLICE = "000.00.61.H56"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(var_dir=tmp_path))
    runtime = app.state.runtime
    await runtime.db.create_tables(runtime.tables)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as http:
        yield http
    await runtime.db.dispose()


async def test_rules_can_be_added_tested_listed_and_removed(client: httpx.AsyncClient) -> None:
    added = await client.post(
        "/api/v1/rules",
        json={"rule": {"priority": 3, "office": POLICE, "channel": "online"}, "by": "ops"},
    )
    assert added.status_code == 201, added.text
    assert added.json()["version"] == 1

    online = await client.post(
        "/api/v1/rules/test",
        json={"procedure": "2.000635", "receiving_unit": UNIT, "channel": "online"},
    )
    assert online.json()["office"] == POLICE
    assert online.json()["explanation"].startswith("rule 3 matched: channel=online")
    counter = await client.post(
        "/api/v1/rules/test", json={"procedure": "2.000635", "receiving_unit": UNIT}
    )
    assert counter.json()["office"] == UNIT
    assert "rule 3: channel counter is not online" in counter.json()["explanation"]
    assert (await client.get("/api/v1/rules/manual-queue")).json() == []

    removed = await client.delete("/api/v1/rules/3", params={"by": "ops"})
    assert removed.json() == {"version": 2, "rules": []}
    history = (await client.get("/api/v1/rules/history")).json()
    assert [(v["version"], v["changed_by"]) for v in history] == [(2, "ops"), (1, "ops")]


async def test_bad_rules_are_refused_and_change_nothing(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/rules", json={"rule": {"priority": 1, "office": POLICE}, "by": "a"})
    for bad, message in [
        ({"priority": 2, "office": "POLICE"}, "is not an agency code"),
        ({"priority": 2, "office": POLICE, "steps": []}, "the chain (steps) is empty"),
        ({"priority": 1, "office": UNIT}, "priority 1 is already taken"),
    ]:
        refused = await client.post("/api/v1/rules", json={"rule": bad, "by": "a"})
        assert refused.status_code == 422
        assert message in refused.json()["detail"]
    current = (await client.get("/api/v1/rules")).json()
    assert current["version"] == 1
    assert [r["office"] for r in current["rules"]] == [POLICE]


async def test_unknown_dossiers_answer_404_or_409(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/rules/sheet/NOPE")).status_code == 404
    assign = await client.post(
        "/api/v1/rules/manual-queue/NOPE/assign", json={"office": POLICE, "by": "a"}
    )
    assert assign.status_code == 409
    assert "no dossier NOPE" in assign.json()["detail"]
    assert (await client.delete("/api/v1/rules/5", params={"by": "a"})).status_code == 404


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("MOTCUA_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    app = typer.Typer()
    routing_cli.register(app)
    yield app
    get_settings.cache_clear()


def test_cli_rules_add_test_list_remove(cli: typer.Typer) -> None:
    runner = CliRunner()
    add = ["rules", "add", "--priority", "1", "--office", POLICE, "--procedure", "2.000635"]
    added = runner.invoke(cli, [*add, "--step", f"{POLICE}:4", "--step", "-:4", "--by", "ops"])
    assert added.exit_code == 0, added.output
    assert "rules v1: added rule 1" in added.output

    tested = runner.invoke(cli, ["rules", "test", "--procedure", "2.000635", "--unit", UNIT])
    assert tested.exit_code == 0, tested.output
    assert f"office {POLICE} (rules v1: rule 1)" in tested.output
    assert "why: rule 1 matched: procedure=2.000635" in tested.output
    assert f"step 2: {UNIT}, 4 working hours" in tested.output

    clash = runner.invoke(cli, [*add, "--by", "ops"])
    assert clash.exit_code == 2
    assert "priority 1 is already taken" in clash.output
    bad_step = runner.invoke(cli, [*add, "--step", "nothing", "--by", "ops"])
    assert bad_step.exit_code == 2

    listed = runner.invoke(cli, ["rules", "list"])
    assert "rules v1: 1 rule(s)" in listed.output
    assert f"1\tprocedure=2.000635\t{POLICE}" in listed.output

    removed = runner.invoke(cli, ["rules", "remove", "1", "--by", "ops"])
    assert removed.exit_code == 0, removed.output
    unrouted = runner.invoke(cli, ["rules", "test", "--procedure", "9.999999", "--unit", UNIT])
    assert "manual queue (rules v2)" in unrouted.output
