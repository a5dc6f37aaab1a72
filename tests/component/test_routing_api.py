"""Routing's admin HTTP API and ``motcua rules`` on a real SQLite file (no broker)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from typer.testing import CliRunner

from motcua import routing_cli
from services.routing.api import create_app, queue_unit
from services.routing.store import ManualQueueEntry
from shared.auth import (
    ALL_UNITS,
    API_KEY_HEADER,
    ROLE_ACCESS,
    Access,
    DossierUnits,
    Principal,
    Role,
    hash_secret,
    may_reach,
    parse_key,
)
from shared.db import Database
from shared.events import ApiKeyChanged, Envelope
from shared.keys_sync import keep_keys
from shared.settings import Settings, get_settings
from shared.topics import DOSSIER_LIFECYCLE
from tests.factories import grant_key, received_envelope, revoke_granted

UNIT = "000.00.00.H56"
POLICE = "000.00.61.H56"
NEW_PROCEDURE: dict[str, Any] = {
    "code": "1.999001",
    "name": "Thủ tục thử nghiệm",
    "field": "Hộ tịch",
    "levels": ["xa"],
    "duration": {"value": 1, "unit": "working_days"},
    "online_duration": None,
    "supplement_rule": "pause",
    "fee_vnd": 0,
    "steps": [{"office": None, "hours": 8}],
}


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    app = create_app(Settings(var_dir=tmp_path))
    runtime = app.state.runtime
    await runtime.db.create_tables(runtime.tables)
    yield app
    await runtime.db.dispose()


@pytest.fixture
def db(app: FastAPI) -> Database:
    """Routing's database: its copy of the keys is where ``grant_key`` delivers."""
    database: Database = app.state.runtime.db
    return database


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as http:
        yield http


@pytest.fixture
async def admin(db: Database) -> dict[str, str]:
    """The headers of a live admin key."""
    return await grant_key(db)


def key_id(headers: dict[str, str]) -> str:
    parsed = parse_key(headers[API_KEY_HEADER])
    assert parsed is not None
    return parsed[0]


async def test_rules_can_be_added_tested_listed_and_removed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    added = await client.post(
        "/api/v1/rules",
        json={"rule": {"priority": 3, "office": POLICE, "channel": "online"}, "by": "ops"},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    assert added.json()["version"] == 1

    online = await client.post(
        "/api/v1/rules/test",
        json={"procedure": "2.000635", "receiving_unit": UNIT, "channel": "online"},
        headers=admin,
    )
    assert online.json()["office"] == POLICE
    assert online.json()["explanation"].startswith("rule 3 matched: channel=online")
    counter = await client.post(
        "/api/v1/rules/test", json={"procedure": "2.000635", "receiving_unit": UNIT}, headers=admin
    )
    assert counter.json()["office"] == UNIT
    assert "rule 3: channel counter is not online" in counter.json()["explanation"]
    assert (await client.get("/api/v1/rules/manual-queue", headers=admin)).json() == []

    removed = await client.delete("/api/v1/rules/3", headers=admin)  # no ``by``: the key alone
    assert removed.json() == {"version": 2, "rules": []}
    history = (await client.get("/api/v1/rules/history", headers=admin)).json()
    kid = key_id(admin)
    assert [(v["version"], v["changed_by"]) for v in history] == [
        (2, f"key {kid}"),
        (1, f"ops (key {kid})"),
    ]


async def test_bad_rules_are_refused_and_change_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await client.post(
        "/api/v1/rules", json={"rule": {"priority": 1, "office": POLICE}, "by": "a"}, headers=admin
    )
    for bad, message in [
        ({"priority": 2, "office": "POLICE"}, "is not an agency code"),
        ({"priority": 2, "office": POLICE, "steps": []}, "the chain (steps) is empty"),
        ({"priority": 1, "office": UNIT}, "priority 1 is already taken"),
    ]:
        refused = await client.post("/api/v1/rules", json={"rule": bad, "by": "a"}, headers=admin)
        assert refused.status_code == 422
        assert message in refused.json()["detail"]
    too_long = await client.post(
        "/api/v1/rules",
        json={"rule": {"priority": 2, "office": POLICE}, "by": "x" * 81},
        headers=admin,
    )
    assert too_long.status_code == 422  # the author with its key id must fit its column
    for bad, named in [
        ({"rule": {"priority": 2, "office": POLICE}, "author": "a"}, "author"),
        ({"rule": {"priority": 2, "office": POLICE, "field": "f" * 201}}, "field"),
        ({"rule": {"priority": 2, "office": POLICE, "colour": "red"}}, "colour"),
    ]:
        refused = await client.post("/api/v1/rules", json=bad, headers=admin)
        assert refused.status_code == 422
        assert named in str(refused.json()["detail"])
    for bad, named in [
        ({"procedure": "2.000635", "receiving_unit": UNIT, "extra": 1}, "extra"),
        ({"procedure": "2.000635", "receiving_unit": UNIT, "field": "f" * 201}, "field"),
        ({"procedure": "x" * 500, "receiving_unit": UNIT}, "procedure"),
    ]:
        refused = await client.post("/api/v1/rules/test", json=bad, headers=admin)
        assert refused.status_code == 422
        assert named in [e["loc"][-1] for e in refused.json()["detail"]]
    refused = await client.post(
        "/api/v1/rules/manual-queue/X/assign", json={"office": POLICE, "why": "x"}, headers=admin
    )
    assert refused.status_code == 422
    assert "why" in [e["loc"][-1] for e in refused.json()["detail"]]
    current = (await client.get("/api/v1/rules", headers=admin)).json()
    assert current["version"] == 1
    assert [r["office"] for r in current["rules"]] == [POLICE]


async def test_unknown_dossiers_answer_404_or_409(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert (await client.get("/api/v1/rules/sheet/NOPE", headers=admin)).status_code == 404
    assign = await client.post(
        "/api/v1/rules/manual-queue/NOPE/assign",
        json={"office": POLICE, "by": "a"},
        headers=admin,
    )
    assert assign.status_code == 409
    assert "no dossier NOPE" in assign.json()["detail"]
    deleted = await client.delete("/api/v1/rules/5", params={"by": "a"}, headers=admin)
    assert deleted.status_code == 404


async def test_the_catalogue_is_public_its_history_is_not(client: httpx.AsyncClient) -> None:
    listed = await client.get("/api/v1/catalogue")
    assert listed.status_code == 200
    assert "2.000635" in {p["code"] for p in listed.json()}
    one = await client.get("/api/v1/catalogue/2.000635")
    assert one.status_code == 200
    assert one.json()["field"] == "Hộ tịch"
    assert (await client.get("/api/v1/catalogue/9.999999")).status_code == 404
    assert (await client.get("/api/v1/catalogue/history")).status_code == 401


async def test_without_a_live_key_reads_and_writes_are_401(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    rule = {"rule": {"priority": 1, "office": POLICE}, "by": "ops"}
    for headers in [{}, {API_KEY_HEADER: "not-a-key"}, {API_KEY_HEADER: "mc_" + "0" * 12 + "_x"}]:
        write = await client.post("/api/v1/rules", json=rule, headers=headers)
        assert write.status_code == 401
        assert write.headers["WWW-Authenticate"] == API_KEY_HEADER
        assert (await client.get("/api/v1/rules", headers=headers)).status_code == 401
        assert (await client.get("/api/v1/rules/history", headers=headers)).status_code == 401
        catalogue = await client.post("/api/v1/catalogue", json=NEW_PROCEDURE, headers=headers)
        assert catalogue.status_code == 401
    assert (await client.get("/api/v1/rules", headers=admin)).json()["version"] == 0


async def test_a_revoked_key_is_401(
    client: httpx.AsyncClient, db: Database, admin: dict[str, str]
) -> None:
    assert (await client.get("/api/v1/rules", headers=admin)).status_code == 200
    await revoke_granted(db, admin)
    assert (await client.get("/api/v1/rules", headers=admin)).status_code == 401
    write = await client.post(
        "/api/v1/rules", json={"rule": {"priority": 1, "office": POLICE}}, headers=admin
    )
    assert write.status_code == 401
    # an older "issued" state arriving late does not bring the key back
    await keep_keys_again_issued(db, admin)
    assert (await client.get("/api/v1/rules", headers=admin)).status_code == 401


async def keep_keys_again_issued(db: Database, headers: dict[str, str]) -> None:
    parsed = parse_key(headers[API_KEY_HEADER])
    assert parsed is not None
    event = Envelope.wrap(
        ApiKeyChanged(key_id=parsed[0], secret_hash=hash_secret(parsed[1]), role="admin", unit="*"),
        occurred_at=datetime.now(UTC),
        source="intake",
        dossier_code=None,
    )
    async with db.transaction() as session:
        await keep_keys(session, [event])


async def test_a_non_admin_key_reads_but_every_write_is_403_and_changes_nothing(
    client: httpx.AsyncClient, db: Database, app: FastAPI, admin: dict[str, str]
) -> None:
    office = await grant_key(db, Role.OFFICE, UNIT)
    await client.post(
        "/api/v1/rules", json={"rule": {"priority": 1, "office": POLICE}}, headers=admin
    )
    created = await client.post("/api/v1/catalogue", json=NEW_PROCEDURE, headers=admin)
    assert created.status_code == 201, created.text
    async with TestKafkaBroker(app.state.runtime.broker) as broker:
        queued = received_envelope("Q", procedure="9.999999")
        await broker.publish(queued.encode(), DOSSIER_LIFECYCLE.name, key=queued.key)
    rules_before = (await client.get("/api/v1/rules", headers=office)).json()
    catalogue_before = (await client.get("/api/v1/catalogue/history", headers=office)).json()
    assert (rules_before["version"], catalogue_before[0]["version"]) == (1, 2)

    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/rules", {"json": {"rule": {"priority": 2, "office": UNIT}}}),
        ("DELETE", "/api/v1/rules/1", {}),
        ("POST", "/api/v1/rules/reroute", {}),
        ("POST", "/api/v1/rules/manual-queue/Q/assign", {"json": {"office": POLICE}}),
        ("POST", "/api/v1/catalogue", {"json": {**NEW_PROCEDURE, "code": "1.999002"}}),
        ("POST", "/api/v1/catalogue", {"params": {"replace": "true"}, "json": NEW_PROCEDURE}),
        ("DELETE", "/api/v1/catalogue/1.999001", {}),
    ]
    for method, path, extra in writes:
        refused = await client.request(method, path, headers=office, **extra)
        assert refused.status_code == 403, (method, path, refused.text)
        assert "role office may not do this; needs admin" in refused.json()["detail"]

    assert (await client.get("/api/v1/rules", headers=office)).json() == rules_before
    assert (await client.get("/api/v1/catalogue/history", headers=office)).json() == (
        catalogue_before
    )
    reads: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/api/v1/rules", {}),
        ("GET", "/api/v1/rules/history", {}),
        ("GET", "/api/v1/rules/manual-queue", {}),
        ("POST", "/api/v1/rules/test", {"json": {"procedure": "2.000635", "receiving_unit": UNIT}}),
        ("GET", "/api/v1/catalogue/history", {}),
    ]
    for method, path, extra in reads:
        answer = await client.request(method, path, headers=office, **extra)
        assert answer.status_code == 200, (method, path, answer.text)
    [entry] = (await client.get("/api/v1/rules/manual-queue", headers=office)).json()
    assert entry["dossier_code"] == "Q"  # the refused assignment left it queued

    assigned = await client.post(
        "/api/v1/rules/manual-queue/Q/assign",
        json={"office": POLICE, "steps": [{"office": POLICE, "hours": 8}], "by": "ops"},
        headers=admin,
    )
    assert assigned.status_code == 200, assigned.text
    sheet = await client.get("/api/v1/rules/sheet/Q", headers=office)
    assert sheet.status_code == 200
    assert sheet.json()["rule"] == f"manual assignment by ops (key {key_id(admin)})"


async def test_the_manual_queue_and_sheets_keep_to_the_units_with_a_part(
    client: httpx.AsyncClient, db: Database, app: FastAPI, admin: dict[str, str]
) -> None:
    async with TestKafkaBroker(app.state.runtime.broker) as broker:
        queued = received_envelope("Q", procedure="9.999999")  # unroutable, received by UNIT
        await broker.publish(queued.encode(), DOSSIER_LIFECYCLE.name, key=queued.key)
    stranger = await grant_key(db, Role.VIEWER, "000.00.99.H56")
    police = await grant_key(db, Role.OFFICE, POLICE)
    kiosk = await grant_key(db, Role.KIOSK, UNIT)
    assert (await client.get("/api/v1/rules/manual-queue", headers=stranger)).json() == []
    assert (await client.get("/api/v1/rules/manual-queue", headers=kiosk)).status_code == 403
    [entry] = (await client.get("/api/v1/rules/manual-queue", headers=admin)).json()
    assert entry["dossier_code"] == "Q"
    assigned = await client.post(
        "/api/v1/rules/manual-queue/Q/assign",
        json={"office": POLICE, "steps": [{"office": POLICE, "hours": 8}]},
        headers=admin,
    )
    assert assigned.status_code == 200, assigned.text
    assert (await client.get("/api/v1/rules/sheet/Q", headers=police)).status_code == 200
    assert (await client.get("/api/v1/rules/sheet/Q", headers=kiosk)).status_code == 403
    foreign = await client.get("/api/v1/rules/sheet/Q", headers=stranger)
    unknown = await client.get("/api/v1/rules/sheet/NOPE", headers=stranger)
    assert (foreign.status_code, foreign.json()) == (404, {"detail": "no dossier Q"})
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "no dossier NOPE"})


async def test_catalogue_changes_record_the_key_that_made_them(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    added = await client.post(
        "/api/v1/catalogue", params={"by": "ops"}, json=NEW_PROCEDURE, headers=admin
    )
    assert added.status_code == 201, added.text
    removed = await client.delete("/api/v1/catalogue/1.999001", headers=admin)
    assert removed.status_code == 200, removed.text
    history = (await client.get("/api/v1/catalogue/history", headers=admin)).json()
    kid = key_id(admin)
    assert [v["changed_by"] for v in history[:2]] == [f"key {kid}", f"ops (key {kid})"]


async def test_the_schema_documents_keys_not_a_principal_parameter(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    add_rule = paths["/api/v1/rules"]["post"]
    assert {"401", "403"} <= set(add_rule["responses"])
    assert add_rule["security"] == [{"APIKeyHeader": []}]
    for path, methods in paths.items():
        for method, operation in methods.items():
            names = {p["name"] for p in operation.get("parameters", [])}
            assert "principal" not in names, (method, path)
    assert "security" not in paths["/api/v1/catalogue/{code}"]["get"]


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


# -- paging ------------------------------------------------------------------------------

OTHER = "000.00.01.H22"
T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def links(answer: httpx.Response) -> dict[str, str]:
    """The ``Link`` header's targets by relation (empty without the header)."""
    return dict(
        (rel, target)
        for target, rel in re.findall(r'<([^>]*)>; rel="(\w+)"', answer.headers.get("link", ""))
    )


async def walk(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[list[Any]]:
    """Every page from ``url`` on, following ``rel="next"``; each page's total must agree."""
    pages: list[list[Any]] = []
    totals: set[str] = set()
    next_url: str | None = url
    while next_url is not None:
        answer = await client.get(next_url, headers=headers)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        totals.add(answer.headers["x-total-count"])
        next_url = links(answer).get("next")
        assert len(pages) < 100, "the next links never end"
    assert len(totals) == 1
    return pages


async def test_the_catalogue_is_paged_by_procedure_code(client: httpx.AsyncClient) -> None:
    everything = await client.get("/api/v1/catalogue", params={"limit": 500})
    codes = [p["code"] for p in everything.json()]
    assert codes == sorted(codes)
    assert len(codes) > 4
    assert everything.headers["x-total-count"] == str(len(codes))
    assert "link" not in everything.headers  # one page holds them all

    first = await client.get("/api/v1/catalogue", params={"limit": 2})
    assert [p["code"] for p in first.json()] == codes[:2]
    assert first.headers["x-total-count"] == str(len(codes))
    assert links(first) == {"next": "/api/v1/catalogue?limit=2&offset=2"}

    second = await client.get(links(first)["next"])
    assert [p["code"] for p in second.json()] == codes[2:4]
    assert links(second)["prev"] == "/api/v1/catalogue?limit=2&offset=0"

    pages = await walk(client, "/api/v1/catalogue?limit=2", {})
    assert [p["code"] for page in pages for p in page] == codes
    assert [len(page) for page in pages[:-1]] == [2] * (len(pages) - 1)
    last = await client.get("/api/v1/catalogue", params={"limit": 2, "offset": len(codes) - 1})
    assert [p["code"] for p in last.json()] == codes[-1:]
    assert set(links(last)) == {"prev"}

    default = await client.get("/api/v1/catalogue")
    assert [p["code"] for p in default.json()] == codes  # fewer than 100: one page


async def test_a_page_out_of_range_is_422_naming_the_parameter(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    out_of_range: list[tuple[dict[str, int | str], str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**31}, "offset"),
    ]
    for path in ["/api/v1/catalogue", "/api/v1/catalogue/history", "/api/v1/rules/manual-queue"]:
        for params, named in out_of_range:
            refused = await client.get(path, params=params, headers=admin)
            assert refused.status_code == 422, (path, params, refused.text)
            assert [e["loc"] for e in refused.json()["detail"]] == [["query", named]]
        assert (await client.get(path, params={"limit": 500}, headers=admin)).status_code == 200


async def queue(db: Database, *entries: tuple[str, str, datetime]) -> None:
    """Put dossiers in the manual queue: (code, receiving unit, queued at)."""
    async with db.transaction() as session:
        for code, unit, queued_at in entries:
            session.add(
                ManualQueueEntry(
                    dossier_code=code,
                    procedure_code="9.999999",
                    reason="no procedure 9.999999 in catalogue v1",
                    field="Hộ tịch",
                    receiving_unit=unit,
                    channel="counter",
                    catalogue_version=1,
                    rule_version=0,
                    received_at=queued_at,
                    queued_at=queued_at,
                )
            )


async def test_the_manual_queue_is_paged_oldest_first_within_the_keys_unit(
    client: httpx.AsyncClient, db: Database
) -> None:
    # the other unit's dossiers are the oldest: filtering after paging would empty the
    # unit's first page; two dossiers queued at the same time are ordered by code
    await queue(
        db,
        ("O-1", OTHER, T0),
        ("O-2", OTHER, T0 + timedelta(minutes=1)),
        ("U-3", UNIT, T0 + timedelta(minutes=5)),
        ("U-1", UNIT, T0 + timedelta(minutes=2)),
        ("U-2", UNIT, T0 + timedelta(minutes=2)),
        ("O-3", OTHER, T0 + timedelta(minutes=6)),
    )
    everyone = ["O-1", "O-2", "U-1", "U-2", "U-3", "O-3"]
    path = "/api/v1/rules/manual-queue"
    for headers in [await grant_key(db), await grant_key(db, Role.VIEWER, ALL_UNITS)]:
        pages = await walk(client, f"{path}?limit=4", headers)
        assert [[e["dossier_code"] for e in page] for page in pages] == [everyone[:4], everyone[4:]]
        first = await client.get(path, params={"limit": 4}, headers=headers)
        assert first.headers["x-total-count"] == "6"
        assert links(first) == {"next": f"{path}?limit=4&offset=4"}

    counter = await grant_key(db, Role.COUNTER, UNIT)
    first = await client.get(path, params={"limit": 2}, headers=counter)
    assert [e["dossier_code"] for e in first.json()] == ["U-1", "U-2"]
    assert first.headers["x-total-count"] == "3"  # the other unit's are not counted
    assert links(first) == {"next": f"{path}?limit=2&offset=2"}
    last = await client.get(links(first)["next"], headers=counter)
    assert [e["dossier_code"] for e in last.json()] == ["U-3"]
    assert links(last) == {"prev": f"{path}?limit=2&offset=0"}
    assert {e["receiving_unit"] for e in first.json() + last.json()} == {UNIT}

    stranger = await client.get(path, headers=await grant_key(db, Role.VIEWER, "000.00.99.H56"))
    assert (stranger.json(), stranger.headers["x-total-count"]) == ([], "0")
    assert "link" not in stranger.headers


def test_the_queue_filter_is_the_access_rule() -> None:
    """The unit the database filters the manual queue on lets through exactly the entries
    ``may_reach`` lets a key read, for every role that reads and every kind of key."""
    received = [UNIT, POLICE, OTHER]
    for role in (role for role, granted in ROLE_ACCESS.items() if Access.READ in granted):
        for unit in [ALL_UNITS, UNIT, POLICE]:
            principal = Principal("0123456789ab", role, unit)
            filtered = queue_unit(principal)
            assert [r for r in received if filtered in {None, r}] == [
                r for r in received if may_reach(principal, Access.READ, DossierUnits.of(r))
            ], (role, unit)


async def test_the_catalogue_history_is_paged_newest_first(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for params in [{}, {"replace": "true"}, {"replace": "true"}]:
        changed = await client.post(
            "/api/v1/catalogue", params=params, json=NEW_PROCEDURE, headers=admin
        )
        assert changed.status_code == 201, changed.text
    assert (await client.delete("/api/v1/catalogue/1.999001", headers=admin)).status_code == 200

    path = "/api/v1/catalogue/history"
    pages = await walk(client, f"{path}?limit=2", admin)
    assert [[v["version"] for v in page] for page in pages] == [[5, 4], [3, 2], [1]]
    middle = await client.get(path, params={"limit": 2, "offset": 2}, headers=admin)
    assert middle.headers["x-total-count"] == "5"
    assert links(middle) == {
        "next": f"{path}?limit=2&offset=4",
        "prev": f"{path}?limit=2&offset=0",
    }
    assert [v["version"] for v in (await client.get(path, headers=admin)).json()] == [5, 4, 3, 2, 1]


async def test_the_schema_documents_the_paging(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ["/api/v1/catalogue", "/api/v1/catalogue/history", "/api/v1/rules/manual-queue"]:
        operation = paths[path]["get"]
        params = {p["name"]: p["schema"] for p in operation["parameters"]}
        assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 500), path
        assert params["limit"]["default"] == 100
        assert (params["offset"]["minimum"], params["offset"]["default"]) == (0, 0), path
        assert {"X-Total-Count", "Link"} <= set(operation["responses"]["200"]["headers"]), path
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["type"] == (
            "array"
        )
