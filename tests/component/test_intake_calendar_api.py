"""The calendar's administration over HTTP: reads for any key, edits for admins, and an
edit is a ``calendar.changed`` event in the outbox, not a local change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shared.calendar_sync import overrides_of
from shared.events import CalendarChanged
from tests.component.test_intake_api import FakeClock, Keys, events, intake_client


@pytest.fixture
def client_keys(tmp_path: Path) -> Iterator[tuple[TestClient, Keys]]:
    with intake_client(tmp_path, FakeClock()) as pair:
        yield pair


def test_any_key_reads_the_table(client_keys: tuple[TestClient, Keys]) -> None:
    client, keys = client_keys
    assert client.get("/api/v1/calendar").status_code == 401
    response = client.get("/api/v1/calendar", params={"year": 2026}, headers=keys.viewer)
    assert response.status_code == 200
    body = response.json()
    assert body["first_year"] <= 2026 <= body["last_year"]
    days = {d["day"]: d for d in body["days"]}
    assert days["2026-01-02"]["kind"] == "off"
    assert days["2026-01-10"]["kind"] == "makeup_workday"
    assert all(d["day"].startswith("2026-") for d in body["days"])


def test_an_admin_edit_becomes_one_event_and_nothing_changes_locally_before_it(
    client_keys: tuple[TestClient, Keys], tmp_path: Path
) -> None:
    client, keys = client_keys
    body = {"kind": "off", "description": "Nghỉ theo quyết định của tỉnh", "source": "QĐ test"}
    assert (
        client.put("/api/v1/calendar/days/2026-06-02", json=body, headers=keys.counter).status_code
        == 403
    )
    response = client.put("/api/v1/calendar/days/2026-06-02", json=body, headers=keys.admin)
    assert response.status_code == 202, response.text
    assert {
        "day": "2026-06-02",
        "kind": "off",
        "description": body["description"],
        "source": "QĐ test",
    } in response.json()["days"]
    [event] = events(client)
    change = event.body(CalendarChanged)
    assert change.province == "default"
    assert [r.day.isoformat() for r in overrides_of(change).rows] == ["2026-06-02"]
    assert not (tmp_path / "calendar-default.json").exists()  # applied when it arrives


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/api/v1/calendar/days/2031-01-02",
            {"kind": "off", "description": "x", "source": "y"},
            "only the next year",
        ),
        (
            "/api/v1/calendar/days/2026-06-02",
            {"kind": "holiday", "description": "x", "source": "y"},
            "kind",
        ),
        (
            "/api/v1/calendar/days/2026-06-02",
            {"kind": "off", "description": "x", "source": ""},
            "source",
        ),
    ],
)
def test_bad_edits_name_what_is_wrong_and_publish_nothing(
    client_keys: tuple[TestClient, Keys], path: str, body: dict[str, str], message: str
) -> None:
    client, keys = client_keys
    response = client.put(path, json=body, headers=keys.admin)
    assert response.status_code == 422
    assert message in response.text
    assert events(client) == []


def test_removing_a_day_that_is_not_special_is_refused(
    client_keys: tuple[TestClient, Keys],
) -> None:
    client, keys = client_keys
    response = client.delete("/api/v1/calendar/days/2026-06-03", headers=keys.admin)
    assert response.status_code == 422
    assert "not a special day" in response.text
    removed = client.delete("/api/v1/calendar/days/2026-04-27", headers=keys.admin)
    assert removed.status_code == 202
    assert "2026-04-27" not in {d["day"] for d in removed.json()["days"]}
    assert len(events(client)) == 1
