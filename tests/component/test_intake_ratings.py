"""The citizen's satisfaction rating at intake: once per dossier, only after a result, on a
kiosk of the dossier's unit or online with the code and phone (no oracle), and nothing
half-written when refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.intake.keys import create_key
from services.intake.store import Rating
from shared.auth import Role
from shared.db import table
from shared.events import RatingGiven, decode
from tests.component.test_intake_api import H22, FakeClock, Keys, intake_client, stored
from tests.factories import api_key_header, dossier_body

PHONE = "0912345678"
WRONG_PHONE = "0987654321"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[TestClient, Keys]]:
    with intake_client(tmp_path, clock) as pair:
        yield pair


def receive(client: TestClient, keys: Keys) -> str:
    body = dossier_body(applicant={"name": "Nguyễn Văn A", "phone": PHONE})
    response = client.post("/api/v1/dossiers", json=body, headers=keys.counter)
    assert response.status_code == 201, response.text
    return str(response.json()["code"])


def finish(client: TestClient, keys: Keys, clock: FakeClock, code: str, *actions: str) -> None:
    for action in actions:
        clock.advance(minutes=5)
        answer = client.post(
            f"/api/v1/dossiers/{code}/actions", json={"action": action}, headers=keys.admin
        )
        assert answer.status_code == 200, answer.text


def rate(client: TestClient, headers: dict[str, str], code: str, **fields: Any) -> Any:
    body = {"code": code, "level": "hai_long", **fields}
    return client.post("/api/v1/ratings", json=body, headers=headers)


def rate_online(client: TestClient, code: str, phone: str = PHONE, **fields: Any) -> Any:
    body = {"code": code, "phone": phone, "level": "khong_hai_long", **fields}
    return client.post("/api/v1/public/ratings", json=body)


def ratings_stored(client: TestClient) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]

    async def count() -> int:
        async with runtime.db.sessions() as session:
            conn = await session.connection()
            return int(await conn.scalar(select(func.count()).select_from(table(Rating))) or 0)

    return client.portal.call(count)  # type: ignore[attr-defined, no-any-return]


def rating_events(client: TestClient) -> list[RatingGiven]:
    return [
        envelope.body(RatingGiven)
        for envelope in map(decode, stored(client)[1])
        if envelope.type == RatingGiven.event_type
    ]


def test_a_returned_dossier_is_rated_once_at_the_kiosk(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = env
    code = receive(client, keys)
    finish(client, keys, clock, code, "resolve", "return_result")
    answer = rate(client, keys.kiosk, code, level="rat_hai_long", comment="Cán bộ tận tình")
    assert answer.status_code == 201, answer.text
    assert answer.json()["level"] == "rat_hai_long"
    assert answer.json()["channel"] == "kiosk"
    [event] = rating_events(client)
    assert (event.level.value, event.channel.value) == ("rat_hai_long", "kiosk")
    assert event.receiving_unit == "000.00.00.H56"
    assert event.dossier_channel.value == "counter"
    raw = b"".join(stored(client)[1])
    assert "tận tình".encode() not in raw  # the comment never leaves intake

    again = rate(client, keys.kiosk, code, level="khong_hai_long")
    assert again.status_code == 409
    online = rate_online(client, code)
    assert online.status_code == 409  # the phone is right, the dossier is rated already
    assert ratings_stored(client) == 1
    assert len(rating_events(client)) == 1


def test_a_resolved_dossier_may_be_rated_online_with_its_phone(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = env
    code = receive(client, keys)
    finish(client, keys, clock, code, "resolve")
    answer = rate_online(client, code, phone="+84912345678")
    assert answer.status_code == 201, answer.text
    assert answer.json()["channel"] == "online"
    [event] = rating_events(client)
    assert event.level.value == "khong_hai_long"


@pytest.mark.parametrize("actions", [(), ("request_supplement",), ("stop",)])
def test_no_rating_before_a_result_and_nothing_written(
    env: tuple[TestClient, Keys], clock: FakeClock, actions: tuple[str, ...]
) -> None:
    client, keys = env
    code = receive(client, keys)
    if "stop" in actions:
        clock.advance(minutes=5)
        client.post(
            f"/api/v1/dossiers/{code}/actions",
            json={"action": "stop", "reason": "chờ xác minh"},
            headers=keys.admin,
        )
    else:
        finish(client, keys, clock, code, *actions)
    before = stored(client)[1]
    answer = rate(client, keys.kiosk, code)
    assert answer.status_code == 409
    assert answer.json()["national_status"] not in (9, 10)
    assert rate_online(client, code).status_code == 409
    assert ratings_stored(client) == 0
    assert stored(client)[1] == before  # no event either


def test_unknown_code_and_wrong_phone_answer_alike(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = env
    code = receive(client, keys)
    finish(client, keys, clock, code, "resolve", "return_result")
    unknown = code[:-4] + "9999"
    assert rate(client, keys.kiosk, unknown).status_code == 404
    wrong = rate_online(client, code, phone=WRONG_PHONE)
    nobody = rate_online(client, unknown)
    look_up = client.post("/api/v1/public/lookup", json={"code": code, "phone": WRONG_PHONE})
    assert wrong.status_code == nobody.status_code == look_up.status_code == 404
    assert wrong.json() == nobody.json() == look_up.json()
    assert ratings_stored(client) == 0


def test_wrong_phones_spend_the_look_ups_bucket_of_the_code(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = env
    code = receive(client, keys)
    finish(client, keys, clock, code, "resolve")
    statuses = [rate_online(client, code, phone=WRONG_PHONE).status_code for _ in range(12)]
    assert statuses[0] == 404
    assert 429 in statuses  # the same per-code limit as the look-up's wrong guesses
    look_up = client.post("/api/v1/public/lookup", json={"code": code, "phone": PHONE})
    assert look_up.status_code == 429  # one bucket for both
    assert ratings_stored(client) == 0


def test_a_kiosk_of_another_unit_cannot_rate_and_other_roles_may_not(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = env
    code = receive(client, keys)
    finish(client, keys, clock, code, "resolve", "return_result")
    settings = client.app.state.runtime.settings  # type: ignore[attr-defined]
    other = api_key_header(client.portal.call(create_key, settings, Role.KIOSK, H22))  # type: ignore[attr-defined]
    foreign = rate(client, other, code)
    unknown = rate(client, other, code[:-4] + "9999")
    assert foreign.status_code == unknown.status_code == 404  # as unknown: no oracle
    assert foreign.json()["detail"].replace(code, "") == unknown.json()["detail"].replace(
        code[:-4] + "9999", ""
    )
    for headers in (keys.counter, keys.office, keys.viewer, keys.importer):
        assert rate(client, headers, code).status_code == 403
    assert rate(client, {}, code).status_code == 401
    assert ratings_stored(client) == 0


def test_the_comment_and_level_are_checked(env: tuple[TestClient, Keys], clock: FakeClock) -> None:
    client, keys = env
    code = receive(client, keys)
    finish(client, keys, clock, code, "resolve")
    assert rate(client, keys.kiosk, code, comment="x" * 501).status_code == 422
    assert rate(client, keys.kiosk, code, level="binh_thuong").status_code == 422
    assert ratings_stored(client) == 0
    assert rate(client, keys.kiosk, code, comment="x" * 500).status_code == 201
