"""What the citizen's look-up adds while a supplement is awaited (the officer's note of
what is missing), and the services' clock that the screens show "today" by."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.component.test_intake_api import FakeClock, Keys, intake_client
from tests.factories import dossier_body

PHONE = "0912345678"
MISSING = "Bản sao giấy chứng nhận kết hôn của cha mẹ"


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


def act(client: TestClient, keys: Keys, code: str, action: str, **fields: Any) -> None:
    answer = client.post(
        f"/api/v1/dossiers/{code}/actions", json={"action": action, **fields}, headers=keys.counter
    )
    assert answer.status_code == 200, answer.text


def look_up(client: TestClient, code: str) -> dict[str, Any]:
    answer = client.post("/api/v1/public/lookup", json={"code": code, "phone": PHONE})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_look_up_says_what_is_missing_only_while_a_supplement_is_awaited(
    env: tuple[TestClient, Keys],
) -> None:
    client, keys = env
    code = receive(client, keys)
    assert "supplement" not in look_up(client, code)
    act(client, keys, code, "request_supplement", reason="Giấy cũ: " + MISSING)
    act(client, keys, code, "submit_supplement")
    act(client, keys, code, "request_supplement", reason=MISSING)
    shown = look_up(client, code)
    assert shown["status"] == "supplement_requested"
    assert shown["supplement"] == MISSING  # the last request's note
    assert set(shown) == {  # nothing else of the history: no key, no office
        "code", "status", "national_status", "due_at", "status_text", "due_text", "supplement"
    }  # fmt: skip
    act(client, keys, code, "submit_supplement")
    assert "supplement" not in look_up(client, code)


def test_a_supplement_asked_without_a_note_shows_none(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    code = receive(client, keys)
    act(client, keys, code, "request_supplement")
    shown = look_up(client, code)
    assert (shown["status"], shown["supplement"]) == ("supplement_requested", None)


def test_the_public_time_is_the_services_clock_in_vietnam(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, _keys = env
    clock.advance(hours=15)  # 00:00 on Wednesday in Vietnam, still Tuesday in UTC
    answer = client.get("/api/v1/public/time")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"now": "2026-06-03T00:00:00+07:00", "today": "2026-06-03"}
