"""Intake's HTTP API in-process, on a real SQLite file, with no broker reachable.

The broker address points at a closed port: the counter must keep working, with
every event kept in the outbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.intake.api import create_app
from services.intake.store import Dossier
from shared.db import table
from shared.events import DossierReceived, decode
from shared.localbroker import free_port
from shared.outbox import OutboxRow
from shared.settings import Settings
from tests.factories import dossier_body


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def stored(client: TestClient) -> tuple[int, list[bytes]]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]

    async def read() -> tuple[int, list[bytes]]:
        async with runtime.db.sessions() as session:
            conn = await session.connection()
            dossiers = await conn.scalar(select(func.count()).select_from(table(Dossier)))
            values = (await conn.execute(select(table(OutboxRow).c.value))).scalars().all()
        return int(dossiers or 0), list(values)

    return client.portal.call(read)  # type: ignore[attr-defined, no-any-return]


def test_receive_answers_code_and_due_time_and_stores_the_event(client: TestClient) -> None:
    response = client.post("/api/v1/dossiers", json=dossier_body())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["code"].startswith("000.00.00.H56-")
    assert body["status"] == "received"
    assert body["national_status"] == 2
    assert body["due_at"].endswith("+07:00")
    count, events = stored(client)
    assert count == 1
    [event] = [decode(v) for v in events]
    assert event.dossier_code == body["code"]
    assert event.body(DossierReceived).applicant.phone == "0912345678"
    assert "applicant" not in body  # no personal data in the answer


def test_codes_follow_each_other_per_unit(client: TestClient) -> None:
    codes = [client.post("/api/v1/dossiers", json=dossier_body()).json()["code"] for _ in range(3)]
    assert [c[-4:] for c in codes] == ["0001", "0002", "0003"]
    other = client.post("/api/v1/dossiers", json=dossier_body(receiving_unit="000.00.01.H22"))
    assert other.json()["code"].endswith("-0001")


def test_get_returns_the_dossier(client: TestClient) -> None:
    code = client.post("/api/v1/dossiers", json=dossier_body()).json()["code"]
    response = client.get(f"/api/v1/dossiers/{code}")
    assert response.status_code == 200
    assert response.json()["code"] == code
    assert client.get("/api/v1/dossiers/000.00.00.H56-260101-9999").status_code == 404


def test_online_dossier_waits_without_clock(client: TestClient) -> None:
    response = client.post("/api/v1/dossiers", json=dossier_body(channel="online"))
    assert response.status_code == 201
    assert response.json()["status"] == "submitted"
    assert response.json()["national_status"] == 1
    assert response.json()["due_at"] is None
    count, events = stored(client)
    assert count == 1
    [event] = [decode(v) for v in events]
    assert event.type == "dossier.submitted"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"procedure_code": "9.999999"}, "procedure_code"),
        ({"procedure_code": "abc"}, "procedure_code"),
        ({"channel": "fax"}, "channel"),
        ({"receiving_unit": "H56"}, "receiving_unit"),
        ({"applicant": {"name": "A", "phone": "12345"}}, "phone"),
        ({"applicant": {"name": "A", "email": "not-an-email"}}, "email"),
        ({"applicant": {"name": ""}}, "name"),
        ({"applicant": {"name": "A", "id_number": "12"}}, "id_number"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    client: TestClient, override: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/dossiers", json=dossier_body(**override))
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"]), response.text
    assert stored(client) == (0, [])


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503  # no broker: not ready, but serving
    assert ready.json()["database"] == "ok"
    client.post("/api/v1/dossiers", json=dossier_body())
    metrics = client.get("/metrics").text
    assert 'motcua_dossiers_received_total{channel="counter"}' in metrics
    assert "0912345678" not in metrics
