"""Intake's HTTP API in-process, on a real SQLite file, with no broker reachable.

The broker address points at a closed port: the counter must keep working, with
every event kept in the outbox. ``intake_client`` and ``Keys`` are shared by the other
``test_intake_*`` component tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from services.intake.api import create_app
from services.intake.keys import create_key
from services.intake.settings import IntakeSettings
from services.intake.store import Dossier
from shared.auth import Role
from shared.calendar import VN_TZ
from shared.db import table
from shared.events import (
    ChainStep,
    DossierContact,
    DossierReceived,
    DossierRouted,
    Envelope,
    decode,
)
from shared.localbroker import free_port
from shared.outbox import OutboxRow
from shared.settings import Settings
from shared.topics import API_KEYS
from tests.factories import api_key_header, dossier_body

H56 = "000.00.00.H56"
H22 = "000.00.01.H22"
OFFICE = "000.00.02.H56"
START = datetime(2026, 6, 2, 9, 0, tzinfo=VN_TZ)  # a Tuesday, working hours


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Keys:
    """Headers of one key per role (counter, importer and viewer of H56; office; admin)."""

    admin: dict[str, str]
    counter: dict[str, str]
    counter_h22: dict[str, str]
    office: dict[str, str]
    importer: dict[str, str]
    viewer: dict[str, str]
    kiosk: dict[str, str]


def _make_keys(settings: Settings) -> Keys:
    async def make() -> Keys:
        async def header(role: Role, unit: str) -> dict[str, str]:
            return api_key_header(await create_key(settings, role, unit))

        return Keys(
            admin=await header(Role.ADMIN, "*"),
            counter=await header(Role.COUNTER, H56),
            counter_h22=await header(Role.COUNTER, H22),
            office=await header(Role.OFFICE, OFFICE),
            importer=await header(Role.IMPORTER, H56),
            viewer=await header(Role.VIEWER, H56),
            kiosk=await header(Role.KIOSK, H56),
        )

    return asyncio.run(make())


@contextmanager
def intake_client(
    tmp_path: Path, clock: FakeClock, options: IntakeSettings | None = None
) -> Iterator[tuple[TestClient, Keys]]:
    """Intake on a SQLite file in ``tmp_path``, no broker, and a key of every role."""
    settings = Settings(var_dir=tmp_path, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    keys = _make_keys(settings)
    with TestClient(create_app(settings, clock=clock, options=options)) as test_client:
        yield test_client, keys


def stored(client: TestClient) -> tuple[int, list[bytes]]:
    """How many dossiers are stored, and the outbox's events in order (the keys' events
    left out: the fixture's keys put theirs there before any dossier)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]

    async def read() -> tuple[int, list[bytes]]:
        async with runtime.db.sessions() as session:
            conn = await session.connection()
            dossiers = await conn.scalar(select(func.count()).select_from(table(Dossier)))
            outbox = table(OutboxRow)
            values = (
                await conn.execute(
                    select(outbox.c.value)
                    .where(outbox.c.topic != API_KEYS.name)
                    .order_by(outbox.c.id)
                )
            ).scalars()
        return int(dossiers or 0), list(values.all())

    return client.portal.call(read)  # type: ignore[attr-defined, no-any-return]


def route(client: TestClient, code: str, *offices: str) -> None:
    """Deliver routing's ``dossier.routed`` for ``code`` to intake, naming ``offices`` (the
    chain; default: ``OFFICE`` alone), as the routing topic would."""
    route_batch(client, [(code, offices or (OFFICE,))])


def route_batch(client: TestClient, routes: list[tuple[str, tuple[str, ...]]]) -> None:
    """Deliver one ``dossier.routed`` per (code, chain) to intake in one batch, in order."""
    batch = [
        Envelope.wrap(
            DossierRouted(
                procedure_code="2.000635",
                office=chain[0],
                field="Hộ tịch",
                rule="test",
                catalogue_version=1,
                steps=[ChainStep(office=office, hours=Decimal(8)) for office in chain],
            ),
            occurred_at=START,
            source="routing",
            dossier_code=code,
        )
        for code, chain in routes
    ]
    intake = client.app.state.intake  # type: ignore[attr-defined]

    async def deliver() -> None:
        async with intake.runtime.db.transaction() as session:
            await intake.apply_routing(session, batch)

    portal = client.portal
    assert portal is not None
    portal.call(deliver)


def events(client: TestClient) -> list[Envelope]:
    """The outbox's events, decoded, in order."""
    return [decode(v) for v in stored(client)[1]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client_keys(tmp_path: Path, clock: FakeClock) -> Iterator[tuple[TestClient, Keys]]:
    with intake_client(tmp_path, clock) as pair:
        yield pair


@pytest.fixture
def client(client_keys: tuple[TestClient, Keys]) -> TestClient:
    """A client that sends the admin key unless a test passes other headers."""
    test_client, keys = client_keys
    test_client.headers.update(keys.admin)
    return test_client


def test_receive_answers_code_and_due_time_and_stores_the_event(client: TestClient) -> None:
    response = client.post("/api/v1/dossiers", json=dossier_body())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["code"] == f"{H56}-260602-0001"
    assert body["status"] == "received"
    assert body["national_status"] == 2
    assert body["due_at"] == "2026-06-02T17:00:00+07:00"  # same day, before 15:00
    assert body["slip"] == f"/api/v1/dossiers/{body['code']}/slip"
    count, _ = stored(client)
    assert count == 1
    contact, event = events(client)
    assert event.dossier_code == contact.dossier_code == body["code"]
    assert event.type == DossierReceived.event_type
    assert "applicant" not in event.payload  # the lifecycle carries no contact
    assert contact.body(DossierContact).applicant.phone == "0912345678"
    assert "applicant" not in body  # no personal data in the answer


def test_codes_follow_each_other_per_unit(client: TestClient) -> None:
    codes = [client.post("/api/v1/dossiers", json=dossier_body()).json()["code"] for _ in range(3)]
    assert [c[-4:] for c in codes] == ["0001", "0002", "0003"]
    other = client.post("/api/v1/dossiers", json=dossier_body(receiving_unit=H22))
    assert other.json()["code"].endswith("-0001")


def test_get_returns_the_dossier_and_its_history(client: TestClient) -> None:
    code = client.post("/api/v1/dossiers", json=dossier_body()).json()["code"]
    response = client.get(f"/api/v1/dossiers/{code}")
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == code
    assert [(h["action"], h["status"], h["national_status"]) for h in body["history"]] == [
        ("receive", "received", 2)
    ]
    assert client.get(f"/api/v1/dossiers/{H56}-260101-9999").status_code == 404


def test_online_dossier_waits_without_clock(client: TestClient) -> None:
    response = client.post("/api/v1/dossiers", json=dossier_body(channel="online"))
    assert response.status_code == 201
    assert response.json()["status"] == "submitted"
    assert response.json()["national_status"] == 1
    assert response.json()["due_at"] is None
    count, _ = stored(client)
    assert count == 1
    contact, event = events(client)
    assert (contact.type, event.type) == ("dossier.contact", "dossier.submitted")


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
        ({"received_at": "2026-06-01T08:00:00"}, "received_at"),  # naive
        ({"received_at": "2027-01-01T08:00:00+07:00"}, "received_at"),  # future
        ({"received_at": "2001-01-01T08:00:00+07:00"}, "received_at"),  # outside the calendar
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    client: TestClient, override: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/dossiers", json=dossier_body(**override))
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"]), response.text
    assert stored(client) == (0, [])


def test_import_keeps_the_original_reception_time(client: TestClient) -> None:
    body = dossier_body(received_at="2026-06-01T08:00:00+07:00")
    response = client.post("/api/v1/dossiers", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["code"] == f"{H56}-260601-0001"
    assert response.json()["received_at"] == "2026-06-01T08:00:00+07:00"
    assert response.json()["due_at"] == "2026-06-01T17:00:00+07:00"


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503  # no broker: not ready, but serving
    assert ready.json()["database"] == "ok"
    client.post("/api/v1/dossiers", json=dossier_body())
    metrics = client.get("/metrics", headers={"X-API-Key": ""}).text
    assert 'motcua_dossiers_received_total{channel="counter"}' in metrics
    assert "0912345678" not in metrics
