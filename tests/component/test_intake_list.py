"""``GET /api/v1/dossiers``: intake's dossier list, in-process on a real SQLite file and
on PostgreSQL (where ``MOTCUA_TEST_POSTGRES_URL`` names one), with no broker reachable.

Each filter narrows the list to exactly the dossiers it should; keyset pages meet every
dossier present at the start exactly once while others are received meanwhile; a key
sees its unit's dossiers only; the applicant's name only for keys allowed personal data.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from services.intake.api import create_app
from shared.db import Database
from shared.localbroker import free_port
from shared.settings import Settings
from tests.component.test_intake_api import (
    H22,
    H56,
    OFFICE,
    START,
    FakeClock,
    Keys,
    _make_keys,
    route,
)
from tests.factories import dossier_body

LIST = "/api/v1/dossiers"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Intake's settings on a SQLite file, or in a schema of this test's own on PostgreSQL
    (dropped afterwards)."""
    port = f"127.0.0.1:{free_port()}"
    if request.param == "sqlite":
        yield Settings(var_dir=tmp_path, kafka_bootstrap_servers=port)
        return
    url = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL: set MOTCUA_TEST_POSTGRES_URL to run this backend")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    yield Settings(
        var_dir=tmp_path, database_url=url, db_schema_prefix=prefix, kafka_bootstrap_servers=port
    )

    async def drop() -> None:
        db = Database(url)
        async with db.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}intake" CASCADE'))
        await db.dispose()

    asyncio.run(drop())


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TestClient, Keys, FakeClock]]:
    clock = FakeClock()
    keys = _make_keys(settings)
    with TestClient(create_app(settings, clock=clock)) as client:
        yield client, keys, clock


def receive(client: TestClient, keys: Keys, **body: Any) -> str:
    """Receive a dossier as admin (``received_at`` may be given as a datetime)."""
    if isinstance(body.get("received_at"), datetime):
        body["received_at"] = body["received_at"].isoformat()
    answer = client.post(LIST, json=dossier_body(**body), headers=keys.admin)
    assert answer.status_code == 201, answer.text
    code: str = answer.json()["code"]
    return code


def codes(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    answer = client.get(LIST, params={"limit": 200, **params}, headers=headers)
    assert answer.status_code == 200, answer.text
    return [item["code"] for item in answer.json()["items"]]


def walk(
    client: TestClient, headers: dict[str, str], between: Any = None, **params: Any
) -> list[str]:
    """Every page's codes, following ``next_cursor``; ``between()`` runs after each page."""
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = client.get(LIST, params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            assert "link" not in answer.headers
            return seen
        assert 'rel="next"' in answer.headers["link"]
        if between is not None:
            between()


def test_each_filter_narrows_the_list(world: tuple[TestClient, Keys, FakeClock]) -> None:
    client, keys, clock = world
    early = receive(client, keys, received_at=START - timedelta(days=7))
    h22 = receive(client, keys, receiving_unit=H22)
    birth = receive(client, keys, procedure_code="1.001193")
    online = receive(client, keys, channel="online")  # submitted: no due time yet
    routed = receive(client, keys, procedure_code="1.004873")
    route(client, routed)
    admin = keys.admin
    everything = {early, h22, birth, online, routed}
    assert set(codes(client, admin)) == everything
    assert set(codes(client, admin, receiving_unit=H22)) == {h22}
    assert codes(client, admin, office=OFFICE) == [routed]
    assert codes(client, admin, status="submitted") == [online]
    assert set(codes(client, admin, status=["submitted", "received"])) == everything
    assert codes(client, admin, channel="online") == [online]
    assert codes(client, admin, procedure="1.001193") == [birth]
    start = START - timedelta(days=7, hours=1)
    week_ago = {
        "received_from": start.isoformat(),
        "received_to": (start + timedelta(days=1)).isoformat(),
    }
    assert codes(client, admin, **week_ago) == [early]
    assert codes(client, admin, due_before=START.isoformat()) == [early]
    assert codes(client, admin, overdue="true") == [early]
    assert set(codes(client, admin, overdue="false")) == everything - {early}
    assert set(codes(client, admin, code_prefix=H22)) == {h22}
    clock.advance(days=30)  # the injected clock: every received dossier is late now
    assert set(codes(client, admin, overdue="true")) == everything - {online}


def test_sorted_by_due_then_received_newest_first(
    world: tuple[TestClient, Keys, FakeClock],
) -> None:
    client, keys, _clock = world
    old = receive(client, keys, received_at=START - timedelta(days=7))
    long = receive(client, keys, procedure_code="1.004873")  # 3 working days
    short = receive(client, keys)  # same day
    online = receive(client, keys, channel="online")
    assert codes(client, keys.admin) == [old, short, long, online]
    # newest first; received at the same instant: the later code first
    assert codes(client, keys.admin, sort="received") == [short, long, old, online]


def test_pages_meet_every_dossier_once_while_others_arrive(
    world: tuple[TestClient, Keys, FakeClock],
) -> None:
    client, keys, clock = world
    present = [
        receive(client, keys, received_at=START - timedelta(hours=n), procedure_code=code)
        for n in range(12)
        for code in ("2.000635", "1.004873")
    ]
    arrived: list[str] = []

    def arrive() -> None:  # before and after the cursor, in both orders
        clock.advance(minutes=1)
        arrived.append(receive(client, keys))
        arrived.append(receive(client, keys, received_at=clock.now - timedelta(days=3)))

    for sort in ("due", "received"):
        seen = walk(client, keys.admin, arrive, sort=sort, limit=5)
        assert len(seen) == len(set(seen)), f"a dossier repeated ({sort})"
        assert set(present) <= set(seen), f"a dossier missing ({sort})"

    stop = threading.Event()

    def keep_arriving() -> None:
        while not stop.is_set():
            receive(client, keys)

    inserter = threading.Thread(target=keep_arriving)
    inserter.start()
    try:
        seen = walk(client, keys.admin, sort="due", limit=3)
    finally:
        stop.set()
        inserter.join()
    assert len(seen) == len(set(seen))
    assert set(present) <= set(seen)


def test_a_key_sees_its_units_dossiers_only(world: tuple[TestClient, Keys, FakeClock]) -> None:
    client, keys, _clock = world
    mine = receive(client, keys)
    routed = receive(client, keys)
    route(client, routed)
    foreign = receive(client, keys, receiving_unit=H22)
    assert codes(client, keys.counter) == sorted([mine, routed])
    assert codes(client, keys.viewer) == sorted([mine, routed])
    assert codes(client, keys.counter_h22) == [foreign]
    assert codes(client, keys.office) == [routed]  # what routing sent to its office
    assert codes(client, keys.counter_h22, receiving_unit=H56) == []  # no filter widens it
    assert set(codes(client, keys.admin)) == {mine, routed, foreign}
    assert client.get(LIST, headers=keys.kiosk).status_code == 403
    assert client.get(LIST).status_code == 401


def test_the_applicants_name_only_for_keys_allowed_personal_data(
    world: tuple[TestClient, Keys, FakeClock],
) -> None:
    client, keys, _clock = world
    code = receive(client, keys)
    route(client, code)

    def item(headers: dict[str, str]) -> dict[str, Any]:
        [only] = client.get(LIST, headers=headers).json()["items"]
        assert only["code"] == code
        return only  # type: ignore[no-any-return]

    for allowed in (keys.counter, keys.importer, keys.admin):
        assert item(allowed)["applicant_name"] == "Nguyễn Văn A"
    for denied in (keys.viewer, keys.office):
        shown = item(denied)
        assert shown["applicant_name"] is None
        assert "Nguyễn" not in str(shown)
    shown = item(keys.office)
    assert shown["office"] == OFFICE
    assert shown["procedure_name"] == "Cấp bản sao trích lục hộ tịch"
    assert shown["status_text"] == "Đã tiếp nhận"


@pytest.mark.parametrize("limit", ["0", "201", "many"])
def test_a_bad_limit_is_422_naming_it(
    world: tuple[TestClient, Keys, FakeClock], limit: str
) -> None:
    client, keys, _clock = world
    answer = client.get(LIST, params={"limit": limit}, headers=keys.admin)
    assert answer.status_code == 422
    assert [e["loc"] for e in answer.json()["detail"]] == [["query", "limit"]]


def test_a_bad_cursor_is_422_naming_it(world: tuple[TestClient, Keys, FakeClock]) -> None:
    client, keys, _clock = world
    for n in range(3):
        receive(client, keys, received_at=START - timedelta(hours=n))
    by_due = client.get(LIST, params={"limit": 1}, headers=keys.admin).json()["next_cursor"]
    assert by_due is not None
    for cursor, sort in (("nonsense!", "due"), ("W10", "due"), (by_due, "received")):
        answer = client.get(LIST, params={"cursor": cursor, "sort": sort}, headers=keys.admin)
        assert answer.status_code == 422, cursor
        assert [e["loc"] for e in answer.json()["detail"]] == [["query", "cursor"]]
