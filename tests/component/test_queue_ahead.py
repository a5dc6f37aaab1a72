"""The people ahead of a new ticket, as the kiosk shows them: the waiting tickets of its
own queue that are called before it (elderly, then priority, then normal; first come
first within a class), on intake's HTTP API in-process on a real SQLite file.

Counters are the seeded ones of unit H56: group A serves Hộ tịch (H56-01, H56-02), group
B serves Đất đai (H56-03).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.component.test_intake_api import FakeClock, Keys
from tests.component.test_queue_api import Q, app, clock, issue, step

__all__ = ["app", "clock"]  # the fixtures, used by name


def ahead(client: TestClient, keys: Keys, priority: str = "normal", **body: str) -> int:
    return int(issue(client, keys, priority, **body)["ahead"])


def test_a_new_ticket_counts_what_is_called_before_it(app: tuple[TestClient, Keys]) -> None:
    client, keys = app
    assert ahead(client, keys) == 0
    assert ahead(client, keys) == 1
    assert ahead(client, keys, "elderly") == 0  # called before every other class
    assert ahead(client, keys, "priority") == 1  # only the elderly one is before it
    assert ahead(client, keys, "elderly") == 1  # the first elderly one is before it
    assert ahead(client, keys) == 5  # everyone waiting in group A
    assert ahead(client, keys, field="Đất đai") == 0  # another group's queue


def test_called_tickets_are_no_longer_ahead(app: tuple[TestClient, Keys], clock: FakeClock) -> None:
    client, keys = app
    for _ in range(3):
        issue(client, keys)
    called = step(client, keys, "H56-01", "call-next")
    assert called.status_code == 200, called.text
    assert ahead(client, keys) == 2  # A-001 is at the counter: wait
    clock.advance(hours=15)  # the next day in Vietnam: a new queue
    assert ahead(client, keys) == 0


def test_a_read_ticket_has_no_count_of_people_ahead(app: tuple[TestClient, Keys]) -> None:
    client, keys = app
    issued = issue(client, keys)
    read = client.get(f"{Q}/tickets/{issued['id']}", headers=keys.kiosk)
    assert read.status_code == 200, read.text
    assert "ahead" not in read.json()  # a count at issue only: it would go stale
