"""Lifecycle actions over HTTP: every action, illegal transitions, roles, idempotency.

Each test drives intake with an injected clock and reads its outbox: an action is a
state change plus exactly one event, or nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.intake.settings import IntakeSettings
from shared.events import DossierActionRecorded, DossierContact, DossierReceived, Envelope
from tests.component.test_intake_api import (
    H22,
    H56,
    OFFICE,
    FakeClock,
    Keys,
    intake_client,
    route,
    route_batch,
    stored,
)
from tests.component.test_intake_api import events as outbox_events
from tests.factories import api_key_header, dossier_body


def events(client: TestClient) -> list[Envelope]:
    """The outbox's lifecycle events in order (each dossier's contact left out)."""
    return [e for e in outbox_events(client) if e.type != DossierContact.event_type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def env(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[TestClient, Keys]]:
    with intake_client(tmp_path, clock) as pair:
        yield pair


def receive(client: TestClient, keys: Keys, **overrides: Any) -> str:
    """Receive a dossier at H56's counter; routing sends it to ``OFFICE``."""
    response = client.post("/api/v1/dossiers", json=dossier_body(**overrides), headers=keys.counter)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    route(client, code)
    return code


def act(client: TestClient, code: str, headers: dict[str, str], action: str, **fields: Any) -> Any:
    return client.post(
        f"/api/v1/dossiers/{code}/actions", json={"action": action, **fields}, headers=headers
    )


def test_online_accept_starts_the_clock_at_acceptance(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = env
    code = receive(client, keys, channel="online")
    clock.advance(hours=7)  # accepted at 16:00, after the same-day cut-off
    response = act(client, code, keys.counter, "accept")
    assert response.status_code == 200, response.text
    dossier = response.json()["dossier"]
    assert dossier["status"] == "received"
    assert dossier["received_at"] == "2026-06-02T16:00:00+07:00"
    assert dossier["due_at"] == "2026-06-03T17:00:00+07:00"
    submitted, received = events(client)
    assert submitted.type == "dossier.submitted"
    body = received.body(DossierReceived)
    assert body.received_at == clock.now
    assert body.channel.value == "online"
    assert response.json()["sequence"] is None  # accept is not a dossier.action


def test_a_whole_lifecycle_emits_one_event_per_action_in_gap_free_sequence(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = env
    code = receive(client, keys)
    steps: list[tuple[dict[str, str], str, dict[str, Any], str, int]] = [
        (keys.office, "request_supplement", {}, "supplement_requested", 5),
        (keys.counter, "submit_supplement", {}, "processing", 4),
        (keys.office, "transfer", {"office": "000.00.03.H56"}, "processing", 4),
        (keys.office, "request_payment", {}, "payment_requested", 6),
        (keys.counter, "payment_received", {}, "processing", 4),
        (keys.office, "stop", {"reason": "chờ xác minh"}, "stopped", 8),
        (keys.office, "resume", {}, "processing", 4),
        (
            keys.office,
            "extend",
            {"reason": "cần xác minh thêm", "new_due_at": "2026-06-05T17:00:00+07:00"},
            "processing",
            4,
        ),
        (keys.office, "resolve", {}, "resolved", 9),
        (keys.counter, "return_result", {}, "returned", 10),
    ]
    for headers, action, fields, status, national in steps:
        clock.advance(minutes=5)
        response = act(client, code, headers, action, **fields)
        assert response.status_code == 200, (action, response.text)
        assert response.json()["dossier"]["status"] == status
        assert response.json()["dossier"]["national_status"] == national
    recorded = [e.body(DossierActionRecorded) for e in events(client)[1:]]
    assert [r.sequence for r in recorded] == list(range(1, len(steps) + 1))
    assert [r.action.value for r in recorded] == [s[1] for s in steps]
    assert [r.national_status for r in recorded] == [s[4] for s in steps]
    assert recorded[2].office == "000.00.03.H56"
    assert recorded[0].office == OFFICE  # the acting office's unit is recorded
    detail = client.get(f"/api/v1/dossiers/{code}", headers=keys.viewer).json()
    assert detail["office"] == "000.00.03.H56"
    assert detail["due_at"] == "2026-06-02T17:00:00+07:00"  # an apology keeps the due time
    assert detail["extended_due_at"] == "2026-06-05T17:00:00+07:00"
    assert [h["action"] for h in detail["history"]] == ["receive", *(s[1] for s in steps)]
    assert [h["sequence"] for h in detail["history"]] == [None, *range(1, len(steps) + 1)]


def test_withdrawal_is_asked_then_confirmed(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    code = receive(client, keys)
    assert (
        act(client, code, keys.counter, "withdraw_request").json()["dossier"]["national_status"]
        == 7
    )
    confirmed = act(client, code, keys.counter, "withdraw", reason="công dân rút")
    assert confirmed.json()["dossier"]["status"] == "withdrawn"
    assert confirmed.json()["dossier"]["national_status"] == 8


def test_refuse_at_reception_needs_a_reason_and_starts_no_clock(
    env: tuple[TestClient, Keys],
) -> None:
    client, keys = env
    code = receive(client, keys, channel="online")
    missing = act(client, code, keys.counter, "refuse")
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "reason"]
    refused = act(client, code, keys.counter, "refuse", reason="sai thủ tục")
    assert refused.status_code == 200
    assert refused.json()["dossier"]["national_status"] == 3
    assert refused.json()["dossier"]["due_at"] is None


ILLEGAL = [
    (["withdraw_request", ("withdraw", {"reason": "r"})], "resolve", "withdrawn"),
    (["resolve"], "withdraw_request", "resolved"),
    (["resolve"], "request_supplement", "resolved"),
    (["resolve", "return_result"], "resolve", "returned"),
    ([], "accept", "received"),
    ([], "return_result", "received"),
    ([], "submit_supplement", "received"),
    ([], "resume", "received"),
    (["request_supplement"], "resolve", "supplement_requested"),
    ([("stop", {"reason": "r"})], "transfer", "stopped"),
]


@pytest.mark.parametrize(("before", "action", "current"), ILLEGAL)
def test_illegal_transition_is_409_with_the_current_state_and_writes_nothing(
    env: tuple[TestClient, Keys], before: list[Any], action: str, current: str
) -> None:
    client, keys = env
    code = receive(client, keys)
    for step in before:
        name, fields = step if isinstance(step, tuple) else (step, {})
        assert act(client, code, keys.admin, name, **fields).status_code == 200
    outbox_before = stored(client)
    history_before = client.get(f"/api/v1/dossiers/{code}", headers=keys.admin).json()["history"]
    response = act(client, code, keys.admin, action, office="000.00.03.H56")
    assert response.status_code == 409, response.text
    assert response.json()["status"] == current
    assert current in response.json()["detail"]
    assert stored(client) == outbox_before
    after = client.get(f"/api/v1/dossiers/{code}", headers=keys.admin).json()["history"]
    assert after == history_before


LATEST = "2026-06-10T17:00:00+07:00"


def test_extend_is_limited_by_the_setting(tmp_path: Path, clock: FakeClock) -> None:
    extend = {"reason": "r", "new_due_at": "2026-06-05T17:00:00+07:00"}
    later = {"reason": "r", "new_due_at": "2026-06-08T17:00:00+07:00"}
    with intake_client(tmp_path / "a", clock) as (client, keys):
        code = receive(client, keys)
        assert act(client, code, keys.office, "extend", **extend).status_code == 200
        again = act(client, code, keys.office, "extend", **later)
        assert again.status_code == 409
        assert "limit of 1" in again.json()["detail"]
    with intake_client(tmp_path / "b", clock, IntakeSettings(extension_limit=2)) as (client, keys):
        code = receive(client, keys)
        assert act(client, code, keys.office, "extend", **extend).status_code == 200
        assert act(client, code, keys.office, "extend", **later).status_code == 200
        third = act(client, code, keys.office, "extend", reason="r", new_due_at=LATEST)
        assert third.status_code == 409
        assert "limit of 2" in third.json()["detail"]
    with intake_client(tmp_path / "c", clock, IntakeSettings(extension_max_days=30)) as (
        client,
        keys,
    ):
        code = receive(client, keys)
        far = act(client, code, keys.office, "extend", reason="r", new_due_at="9999-12-31T00:00Z")
        assert far.status_code == 422
        [error] = far.json()["detail"]
        assert error["loc"][-1] == "new_due_at"
        assert "at most 30 days" in error["msg"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"new_due_at": "2026-06-01T17:00:00+07:00", "reason": "r"}, "new_due_at"),  # earlier
        ({"reason": "r"}, "new_due_at"),
        ({"new_due_at": "2026-06-05T17:00:00"}, "new_due_at"),  # naive
    ],
)
def test_extend_fields_are_checked(
    env: tuple[TestClient, Keys], fields: dict[str, Any], field: str
) -> None:
    client, keys = env
    code = receive(client, keys)
    before = stored(client)
    response = act(client, code, keys.office, "extend", **fields)
    assert response.status_code == 422
    assert field in response.json()["detail"][0]["loc"]
    assert stored(client) == before


def test_only_importers_and_admins_set_the_time(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = env
    code = receive(client, keys)
    at = "2026-06-02T10:00:00+07:00"
    clock.advance(hours=3)
    assert act(client, code, keys.office, "resolve", at=at).status_code == 403
    response = act(client, code, keys.importer, "resolve", at=at)
    assert response.status_code == 200
    assert events(client)[-1].body(DossierActionRecorded).at.isoformat() == at
    future = act(client, code, keys.importer, "return_result", at="2026-07-01T10:00:00+07:00")
    assert future.status_code == 422
    before_last = act(client, code, keys.importer, "return_result", at="2026-06-02T09:30:00+07:00")
    assert before_last.status_code == 422
    assert before_last.json()["detail"][0]["loc"] == ["body", "at"]


def test_keys_roles_and_units(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    url = "/api/v1/dossiers"
    assert client.post(url, json=dossier_body()).status_code == 401
    assert client.post(url, json=dossier_body(), headers=api_key_header("nope")).status_code == 401
    forged = keys.counter["X-API-Key"][:-4] + "AAAA"
    assert client.post(url, json=dossier_body(), headers=api_key_header(forged)).status_code == 401
    assert client.post(url, json=dossier_body(), headers=keys.viewer).status_code == 403
    assert client.post(url, json=dossier_body(), headers=keys.counter_h22).status_code == 403
    code = receive(client, keys)
    assert client.get(f"{url}/{code}").status_code == 401
    unknown = client.get(f"{url}/{code[:-4]}9999", headers=keys.counter)
    foreign = client.get(f"{url}/{code}", headers=keys.counter_h22)  # as an unknown code
    assert (foreign.status_code, foreign.json()) == (404, {"detail": f"no dossier {code}"})
    assert unknown.status_code == 404
    assert client.get(f"{url}/{code}", headers=keys.office).status_code == 200
    assert act(client, code, keys.counter_h22, "request_supplement").status_code == 404
    assert act(client, code, keys.kiosk, "resolve").status_code == 403
    assert act(client, code, keys.viewer, "resolve").status_code == 403
    assert act(client, code, keys.counter, "resolve").status_code == 403  # an office's act
    assert stored(client)[0] == 1
    other = client.post(url, json=dossier_body(receiving_unit=H22), headers=keys.counter_h22)
    assert other.status_code == 201
    assert H56 not in other.json()["code"]


def test_one_batch_of_routings_keeps_each_dossiers_latest_offices(
    env: tuple[TestClient, Keys],
) -> None:
    client, keys = env
    codes = []
    for _ in range(3):
        response = client.post("/api/v1/dossiers", json=dossier_body(), headers=keys.counter)
        codes.append(response.json()["code"])
    rerouted, elsewhere, chained = codes
    elsewhere_office = "000.00.03.H56"
    route_batch(
        client,
        [
            (rerouted, (elsewhere_office,)),
            (elsewhere, (elsewhere_office,)),
            (chained, (elsewhere_office, OFFICE)),
            (rerouted, (OFFICE,)),  # the later decision of the batch replaces the first
        ],
    )
    office = keys.office  # OFFICE's key
    assert act(client, rerouted, office, "request_supplement").status_code == 200
    assert act(client, elsewhere, office, "request_supplement").status_code == 404
    assert act(client, chained, office, "request_supplement").status_code == 200


def test_a_retried_post_returns_the_first_answer(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    headers = {**keys.counter, "Idempotency-Key": "abc-1"}
    first = client.post("/api/v1/dossiers", json=dossier_body(), headers=headers)
    second = client.post("/api/v1/dossiers", json=dossier_body(), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert stored(client)[0] == 1
    assert len(events(client)) == 1
    changed = client.post(
        "/api/v1/dossiers", json=dossier_body(documents=["Khác"]), headers=headers
    )
    assert changed.status_code == 422
    assert "different request" in changed.json()["detail"]
    assert stored(client)[0] == 1
    # another caller's key of the same name is its own
    mine = client.post(
        "/api/v1/dossiers", json=dossier_body(), headers={**keys.admin, "Idempotency-Key": "abc-1"}
    )
    assert mine.status_code == 201
    assert mine.json()["code"] != first.json()["code"]


def test_answers_are_forgotten_after_the_kept_window(
    env: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = env
    headers = {**keys.counter, "Idempotency-Key": "abc-2"}
    first = client.post("/api/v1/dossiers", json=dossier_body(), headers=headers)
    intake = client.app.state.intake  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None
    clock.advance(hours=167)
    portal.call(intake.purge_answers)
    kept = client.post("/api/v1/dossiers", json=dossier_body(), headers=headers)
    assert kept.json() == first.json()  # still inside the 168 h window
    clock.advance(hours=2)
    portal.call(intake.purge_answers)
    fresh = client.post("/api/v1/dossiers", json=dossier_body(), headers=headers)
    assert fresh.status_code == 201
    assert fresh.json()["code"] != first.json()["code"]  # a new request after the window
    assert stored(client)[0] == 2


def test_a_retried_action_is_recorded_once(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    code = receive(client, keys)
    headers = {**keys.office, "Idempotency-Key": "act-7"}
    url = f"/api/v1/dossiers/{code}/actions"
    first = client.post(url, json={"action": "request_supplement"}, headers=headers)
    second = client.post(url, json={"action": "request_supplement"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert [e.type for e in events(client)] == ["dossier.received", "dossier.action"]
    other = client.post(url, json={"action": "resolve"}, headers=headers)
    assert other.status_code == 422
