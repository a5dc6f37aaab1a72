"""The queue's HTTP API in-process, on a real SQLite file, with no broker reachable.

Counters are the seeded ones of unit H56: H56-01 and H56-02 (group A: Hộ tịch,
Chứng thực), H56-03 (group B: Đất đai, …), H56-04 (group C).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.component.test_intake_api import H22, FakeClock, Keys, intake_client
from tests.factories import dossier_body

Q = "/api/v1/queue"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(tmp_path: Any, clock: FakeClock) -> Iterator[tuple[TestClient, Keys]]:
    with intake_client(tmp_path, clock) as pair:
        yield pair


def issue(client: TestClient, keys: Keys, priority: str = "normal", **body: Any) -> dict[str, Any]:
    if "procedure_code" not in body:
        body.setdefault("field", "Hộ tịch")
    response = client.post(f"{Q}/tickets", json={"priority": priority, **body}, headers=keys.kiosk)
    assert response.status_code == 201, response.text
    return dict(response.json())


def step(client: TestClient, keys: Keys, counter: str, action: str) -> Any:
    return client.post(f"{Q}/counters/{counter}/{action}", headers=keys.counter)


def call_and_finish(client: TestClient, keys: Keys, counter: str = "H56-01") -> str:
    """Call the next ticket at ``counter``, serve it to the end; its number."""
    called = step(client, keys, counter, "call-next")
    assert called.status_code == 200, called.text
    assert step(client, keys, counter, "serve").status_code == 200
    assert step(client, keys, counter, "done").status_code == 200
    return str(called.json()["number"])


def test_a_ticket_gets_the_groups_next_number_and_its_counters(
    app: tuple[TestClient, Keys],
) -> None:
    client, keys = app
    first = issue(client, keys)
    assert first["number"] == "A-001"
    assert first["state"] == "waiting"
    assert first["counters"] == ["H56-01", "H56-02"]
    assert first["issued_at"] == "2026-06-02T09:00:00+07:00"
    assert issue(client, keys, procedure_code="2.000635")["number"] == "A-002"  # Hộ tịch
    land = issue(client, keys, field="Đất đai")
    assert (land["number"], land["counters"]) == ("B-001", ["H56-03"])
    assert issue(client, keys)["number"] == "A-003"


def test_numbering_restarts_the_next_day(app: tuple[TestClient, Keys], clock: FakeClock) -> None:
    client, keys = app
    issue(client, keys)
    issue(client, keys)
    clock.advance(hours=15)  # 00:00 Vietnam time, Wednesday
    assert issue(client, keys)["number"] == "A-001"


def test_unknown_field_procedure_or_group_is_422(app: tuple[TestClient, Keys]) -> None:
    client, keys = app
    for body, field in [
        ({"field": "Ngoại giao"}, "field"),
        ({"field": "Hộ tịch", "group": "B"}, "group"),
        ({"field": None, "procedure_code": "9.999999"}, "procedure_code"),
        ({"field": "Hộ tịch", "procedure_code": "2.000635"}, "field"),
    ]:
        response = client.post(f"{Q}/tickets", json=body, headers=keys.kiosk)
        assert response.status_code == 422, body
        assert any(field in e["loc"] for e in response.json()["detail"]), response.text


def test_elderly_then_priority_then_normal_first_come_first_within(
    app: tuple[TestClient, Keys],
) -> None:
    client, keys = app
    for priority in ["normal", "priority", "normal", "elderly", "priority", "elderly"]:
        issue(client, keys, priority)
    order = [call_and_finish(client, keys) for _ in range(6)]
    assert order == ["A-004", "A-006", "A-002", "A-005", "A-001", "A-003"]
    empty = step(client, keys, "H56-01", "call-next")
    assert empty.status_code == 404


def test_a_counter_calls_only_its_own_queue(app: tuple[TestClient, Keys]) -> None:
    client, keys = app
    issue(client, keys, field="Đất đai")  # group B
    assert step(client, keys, "H56-01", "call-next").status_code == 404  # group A: empty
    called = step(client, keys, "H56-03", "call-next")
    assert (called.json()["number"], called.json()["counter"]) == ("B-001", "H56-03")
    assert step(client, keys, "H56-02", "call-next").status_code == 404


def test_a_counter_key_of_another_unit_is_403(app: tuple[TestClient, Keys]) -> None:
    client, keys = app
    issue(client, keys)
    response = client.post(f"{Q}/counters/H56-01/call-next", headers=keys.counter_h22)
    assert response.status_code == 403
    foreign = client.post(
        f"{Q}/tickets", json={"field": "Hộ tịch", "unit": H22}, headers=keys.kiosk
    )
    assert foreign.status_code == 403


def test_pause_blocks_calling_until_resume(app: tuple[TestClient, Keys]) -> None:
    client, keys = app
    issue(client, keys)
    paused = client.post(
        f"{Q}/counters/H56-01/pause", json={"reason": "họp giao ban"}, headers=keys.counter
    )
    assert paused.status_code == 200
    assert (paused.json()["state"], paused.json()["paused_reason"]) == ("paused", "họp giao ban")
    blocked = step(client, keys, "H56-01", "call-next")
    assert blocked.status_code == 409
    assert blocked.json()["state"] == "paused"
    again = client.post(f"{Q}/counters/H56-01/pause", json={"reason": "x"}, headers=keys.counter)
    assert (again.status_code, again.json()["state"]) == (409, "paused")
    assert step(client, keys, "H56-01", "resume").json()["state"] == "open"
    assert step(client, keys, "H56-01", "resume").status_code == 409
    assert step(client, keys, "H56-01", "call-next").json()["number"] == "A-001"


def test_no_show_cancels_the_called_ticket_as_absent(
    app: tuple[TestClient, Keys], clock: FakeClock
) -> None:
    client, keys = app
    ticket = issue(client, keys)
    step(client, keys, "H56-01", "call-next")
    clock.advance(minutes=5)
    cancelled = step(client, keys, "H56-01", "no-show")
    assert cancelled.status_code == 200
    assert (cancelled.json()["state"], cancelled.json()["cancel_reason"]) == (
        "cancelled",
        "absent",
    )
    stored = client.get(f"{Q}/tickets/{ticket['id']}", headers=keys.viewer).json()
    assert stored["state"] == "cancelled"
    assert step(client, keys, "H56-01", "serve").status_code == 409  # nothing in hand


def test_illegal_transitions_are_409_with_the_current_state(
    app: tuple[TestClient, Keys],
) -> None:
    client, keys = app
    issue(client, keys)
    issue(client, keys)
    nothing = step(client, keys, "H56-01", "done")
    assert (nothing.status_code, nothing.json()["state"]) == (409, None)
    step(client, keys, "H56-01", "call-next")
    for action in ["done", "call-next"]:
        response = step(client, keys, "H56-01", action)
        assert (response.status_code, response.json()["state"]) == (409, "called"), action
    step(client, keys, "H56-01", "serve")
    for action in ["serve", "no-show", "call-next"]:
        response = step(client, keys, "H56-01", action)
        assert (response.status_code, response.json()["state"]) == (409, "serving"), action


def test_times_and_dossier_make_one_record(app: tuple[TestClient, Keys], clock: FakeClock) -> None:
    client, keys = app
    ticket = issue(client, keys, "elderly")
    clock.advance(minutes=12)
    step(client, keys, "H56-02", "call-next")
    early = client.post(
        f"{Q}/tickets/{ticket['id']}/dossier", json={"code": "x"}, headers=keys.counter
    )
    assert early.status_code == 404  # no such dossier
    clock.advance(minutes=1)
    step(client, keys, "H56-02", "serve")
    clock.advance(minutes=7)
    code = client.post("/api/v1/dossiers", json=dossier_body(), headers=keys.counter).json()["code"]
    linked = client.post(
        f"{Q}/tickets/{ticket['id']}/dossier", json={"code": code}, headers=keys.counter
    )
    assert linked.status_code == 200, linked.text
    step(client, keys, "H56-02", "done")
    record = client.get(f"{Q}/tickets/{ticket['id']}", headers=keys.viewer).json()
    assert record["dossier"] == code
    assert (record["waiting_seconds"], record["service_seconds"]) == (720.0, 420.0)
    assert record["counter"] == "H56-02"
    other = client.post("/api/v1/dossiers", json=dossier_body(), headers=keys.counter).json()
    relink = client.post(
        f"{Q}/tickets/{ticket['id']}/dossier", json={"code": other["code"]}, headers=keys.counter
    )
    assert relink.status_code == 409


def test_a_waiting_ticket_cannot_be_linked(app: tuple[TestClient, Keys]) -> None:
    client, keys = app
    ticket = issue(client, keys)
    code = client.post("/api/v1/dossiers", json=dossier_body(), headers=keys.counter).json()["code"]
    response = client.post(
        f"{Q}/tickets/{ticket['id']}/dossier", json={"code": code}, headers=keys.counter
    )
    assert (response.status_code, response.json()["state"]) == (409, "waiting")


@pytest.mark.parametrize(
    ("route", "body", "allowed", "refused"),
    [
        ("post /tickets", {"field": "Hộ tịch"}, "kiosk", "counter"),
        ("post /counters/H56-01/call-next", None, "counter", "kiosk"),
        ("post /counters/H56-01/pause", {"reason": "nghỉ"}, "counter", "viewer"),
        (
            "put /counters/H56-09",
            {"unit": "000.00.00.H56", "group": "D", "fields": ["Chứng thực"]},
            "admin",
            "counter",
        ),
    ],
)
def test_roles_401_and_403(
    app: tuple[TestClient, Keys],
    route: str,
    body: dict[str, Any] | None,
    allowed: str,
    refused: str,
) -> None:
    client, keys = app
    method, path = route.split()
    send = getattr(client, method)
    assert send(f"{Q}{path}", json=body).status_code == 401
    assert send(f"{Q}{path}", json=body, headers={"X-API-Key": "mc_bad"}).status_code == 401
    assert send(f"{Q}{path}", json=body, headers=getattr(keys, refused)).status_code == 403
    assert send(f"{Q}{path}", json=body, headers=getattr(keys, allowed)).status_code != 403


def test_admin_configures_counters_and_the_kiosk_follows(app: tuple[TestClient, Keys]) -> None:
    client, keys = app
    bad = client.put(
        f"{Q}/counters/H56-09",
        json={"unit": "000.00.00.H56", "group": "D", "fields": ["Ngoại giao"]},
        headers=keys.admin,
    )
    assert bad.status_code == 422
    put = client.put(
        f"{Q}/counters/H56-09",
        json={"unit": "000.00.00.H56", "group": "D", "fields": [], "procedures": ["2.000635"]},
        headers=keys.admin,
    )
    assert put.status_code == 200, put.text
    ticket = issue(client, keys, procedure_code="2.000635", group="D")
    assert (ticket["number"], ticket["counters"]) == ("D-001", ["H56-09"])
    listed = client.get(f"{Q}/counters", headers=keys.kiosk).json()
    assert [c["id"] for c in listed] == ["H56-01", "H56-02", "H56-03", "H56-04", "H56-09"]


def test_metrics_count_by_counter(app: tuple[TestClient, Keys], clock: FakeClock) -> None:
    client, keys = app
    issue(client, keys)
    issue(client, keys)
    step(client, keys, "H56-02", "call-next")
    step(client, keys, "H56-02", "no-show")
    call_and_finish(client, keys, "H56-02")
    metrics = client.get("/metrics").text
    assert 'motcua_queue_tickets_issued_total{group="A",unit="000.00.00.H56"}' in metrics
    assert 'motcua_queue_tickets_served_total{counter="H56-02"}' in metrics
    assert 'motcua_queue_no_shows_total{counter="H56-02"}' in metrics
    assert 'motcua_queue_waiting_seconds_count{counter="H56-02"}' in metrics
    assert 'motcua_queue_service_seconds_count{counter="H56-02"}' in metrics
