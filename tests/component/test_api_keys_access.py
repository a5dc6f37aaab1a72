"""Who may call sla's and notify's HTTP APIs, with the keys intake issues as each service's
copy of them holds them (delivered as ``api_key.changed`` events, revoked the same way).

Each service is its own ``create_app`` on a SQLite file; its runtime is not started (no
broker): keys reach its copy through ``shared.keys_sync`` as the consumer would write them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from pydantic import SecretStr
from sqlmodel import select

from services.notify import store as notify_store
from services.notify.api import create_app as notify_app
from services.notify.settings import NotifySettings
from services.sla.api import create_app as sla_app
from shared.auth import ALL_UNITS, API_KEY_HEADER, Role
from shared.db import Database
from shared.events import ChainStep, DossierRouted, Envelope
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING
from tests.factories import grant_key, received_envelope, revoke_granted

RECEIVING = "000.00.00.H56"  # received_envelope's receiving unit
ROUTED = "000.00.61.H56"  # the routed office, first step of the chain
SECOND_STEP = "000.00.62.H56"
OTHER = "000.00.99.H56"
NO_KEY: dict[str, str] = {}
MALFORMED = {API_KEY_HEADER: "mc_not-a-key"}
STORED_AT = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam; nothing reads it


@dataclass
class Service:
    client: httpx.AsyncClient
    runtime: ServiceRuntime

    @property
    def db(self) -> Database:
        return self.runtime.db


async def serve(app: FastAPI) -> Service:
    """A client of the service's app, and the app's runtime (its tables created)."""
    runtime: ServiceRuntime = app.state.runtime
    await runtime.db.create_tables(runtime.tables)
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url=f"http://{runtime.name}")
    return Service(client, runtime)


# --- sla ----------------------------------------------------------------------------------


@pytest.fixture
async def sla(tmp_path: Path) -> AsyncIterator[Service]:
    service = await serve(sla_app(Settings(var_dir=tmp_path)))
    async with service.client:
        yield service
    await service.db.dispose()


async def track(runtime: ServiceRuntime, code: str, *, routed: bool) -> None:
    """Feed sla's consumer a reception of ``code`` (at ``RECEIVING``), and its routing
    (office ``ROUTED``, chain ``ROUTED`` then ``SECOND_STEP``)."""
    async with TestKafkaBroker(runtime.broker) as broker:
        event = received_envelope(code)
        await broker.publish(event.encode(), DOSSIER_LIFECYCLE.name, key=event.key)
        if routed:
            route = Envelope.wrap(
                DossierRouted(
                    procedure_code="2.000635",
                    office=ROUTED,
                    field="Hộ tịch",
                    rule="test",
                    catalogue_version=1,
                    steps=[
                        ChainStep(office=ROUTED, hours=Decimal(4)),
                        ChainStep(office=SECOND_STEP, hours=Decimal(8)),
                    ],
                ),
                occurred_at=datetime.now(UTC),
                source="routing",
                dossier_code=code,
            )
            await broker.publish(route.encode(), DOSSIER_ROUTING.name, key=route.key)


CHAINED = "000.00.00.H56-260602-0101"
UNROUTED = "000.00.00.H56-260602-0102"
UNKNOWN = "000.00.00.H56-260602-9999"


async def test_sla_needs_a_live_key_before_anything_else(sla: Service) -> None:
    await track(sla.runtime, CHAINED, routed=True)
    admin = await grant_key(sla.db)
    url = f"/api/v1/sla/{CHAINED}"
    for headers in (NO_KEY, MALFORMED):
        answer = await sla.client.get(url, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == API_KEY_HEADER
        # an unknown code tells a caller without a key nothing: 401, not 404
        assert (await sla.client.get(f"/api/v1/sla/{UNKNOWN}", headers=headers)).status_code == 401
    assert (await sla.client.get(url, headers=admin)).status_code == 200
    assert (await sla.client.get(f"/api/v1/sla/{UNKNOWN}", headers=admin)).status_code == 404

    await revoke_granted(sla.db, admin)
    assert (await sla.client.get(url, headers=admin)).status_code == 401
    assert (await sla.client.get(f"/api/v1/sla/{UNKNOWN}", headers=admin)).status_code == 401


async def test_sla_reading_roles_read_but_a_units_key_only_its_dossiers(sla: Service) -> None:
    await track(sla.runtime, CHAINED, routed=True)
    await track(sla.runtime, UNROUTED, routed=False)
    chained, unrouted = f"/api/v1/sla/{CHAINED}", f"/api/v1/sla/{UNROUTED}"

    for role in Role:  # a key of every unit reads every clock, but a kiosk's reads none
        key = await grant_key(sla.db, role, ALL_UNITS)
        expected = 403 if role is Role.KIOSK else 200
        assert (await sla.client.get(chained, headers=key)).status_code == expected, role
    admin_of_a_unit = await grant_key(sla.db, Role.ADMIN, OTHER)
    assert (await sla.client.get(chained, headers=admin_of_a_unit)).status_code == 200

    receiving = await grant_key(sla.db, Role.COUNTER, RECEIVING)
    routed = await grant_key(sla.db, Role.OFFICE, ROUTED)
    second = await grant_key(sla.db, Role.OFFICE, SECOND_STEP)
    other = await grant_key(sla.db, Role.VIEWER, OTHER)
    for key in (receiving, routed, second):
        answer = await sla.client.get(chained, headers=key)
        assert answer.status_code == 200, answer.text
        assert answer.json()["code"] == CHAINED
    # another unit's dossier answers exactly as an unknown code
    refused = await sla.client.get(chained, headers=other)
    assert (refused.status_code, refused.json()) == (404, {"detail": f"no dossier {CHAINED}"})
    unknown = await sla.client.get(f"/api/v1/sla/{UNKNOWN}", headers=other)
    assert (unknown.status_code, unknown.json()) == (404, {"detail": f"no dossier {UNKNOWN}"})

    # not routed yet: only the receiving unit has a part in it
    assert (await sla.client.get(unrouted, headers=receiving)).status_code == 200
    for key in (routed, second, other):
        assert (await sla.client.get(unrouted, headers=key)).status_code == 404


# --- notify -------------------------------------------------------------------------------


@pytest.fixture
async def notify(tmp_path: Path) -> AsyncIterator[Service]:
    service = await serve(notify_app(Settings(var_dir=tmp_path)))
    async with service.client:
        yield service
    await service.db.dispose()


async def keys(db: Database) -> dict[Role, dict[str, str]]:
    """A live key of every role (all units)."""
    return {role: await grant_key(db, role) for role in Role}


MESSAGES = ("/api/v1/notifications", {"dossier": "000.00.00.H56-260602-0001"})
TOGGLE = {"trigger": "overdue", "enabled": False, "receiving_unit": RECEIVING}


async def test_messages_are_for_viewers_and_counters(notify: Service) -> None:
    by_role = await keys(notify.db)
    path, params = MESSAGES
    for headers in (NO_KEY, MALFORMED):
        assert (await notify.client.get(path, params=params, headers=headers)).status_code == 401
    for role, key in by_role.items():
        answer = await notify.client.get(path, params=params, headers=key)
        allowed = role in {Role.VIEWER, Role.COUNTER, Role.ADMIN}
        assert answer.status_code == (200 if allowed else 403), role
    await revoke_granted(notify.db, by_role[Role.VIEWER])
    revoked = await notify.client.get(path, params=params, headers=by_role[Role.VIEWER])
    assert revoked.status_code == 401


async def test_messages_and_opt_outs_keep_to_the_receiving_unit(notify: Service) -> None:
    code, unknown = MESSAGES[1]["dossier"], "000.00.00.H56-260602-0099"
    async with notify.db.transaction() as session:
        session.add(
            notify_store.AddresseeRow(
                dossier_code=code,
                name="Trần Thị B",
                phone="0912345678",
                procedure_code="2.000635",
                receiving_unit=RECEIVING,
                updated_at=STORED_AT,
            )
        )
    own = await grant_key(notify.db, Role.COUNTER, RECEIVING)
    other = await grant_key(notify.db, Role.COUNTER, OTHER)
    viewer_of_other = await grant_key(notify.db, Role.VIEWER, OTHER)
    path, params = MESSAGES
    assert (await notify.client.get(path, params=params, headers=own)).status_code == 200
    for key in (other, viewer_of_other):  # another unit's dossier: as an unknown one
        answer = await notify.client.get(path, params=params, headers=key)
        assert (answer.status_code, answer.json()) == (404, {"detail": f"no dossier {code}"})
    answer = await notify.client.get(path, params={"dossier": unknown}, headers=own)
    assert (answer.status_code, answer.json()) == (404, {"detail": f"no dossier {unknown}"})

    opt_out = "/api/v1/notifications/opt-outs"
    for body in ({"dossier": code}, {"dossier": code, "contact": "0912345678"}):
        assert (await notify.client.post(opt_out, json=body, headers=other)).status_code == 404
        undo = await notify.client.post(f"{opt_out}/undo", json=body, headers=other)
        assert undo.status_code == 404
    for body in ({"contact": "0912345678"}, {"dossier": code, "contact": "0987654321"}):
        # a contact alone (nationwide), or not the applicant's: admin only
        assert (await notify.client.post(opt_out, json=body, headers=own)).status_code == 403
    assert await opt_outs(notify.db) == []
    mine = {"dossier": code, "contact": "+84912345678"}  # the applicant's own phone
    assert (await notify.client.post(opt_out, json=mine, headers=own)).status_code == 200
    assert len(await opt_outs(notify.db)) == 2
    admin = await grant_key(notify.db, Role.ADMIN, ALL_UNITS)
    bare = {"contact": "0987654321"}
    assert (await notify.client.post(opt_out, json=bare, headers=admin)).status_code == 200


REPORTS = "/api/v1/notifications/delivery-reports"
REPORT = {"reference": "nope", "status": "delivered"}


async def test_delivery_reports_take_the_gateway_token_not_a_key(tmp_path: Path) -> None:
    service = await serve(
        notify_app(Settings(var_dir=tmp_path), NotifySettings(sms_report_token=SecretStr("s3")))
    )
    admin = await grant_key(service.db, Role.ADMIN)
    async with service.client as client:
        for headers in (NO_KEY, admin, {**admin, "X-Report-Token": "s4"}):
            refused = await client.post(REPORTS, json=REPORT, headers=headers)
            assert refused.status_code == 401
        in_url = await client.post(REPORTS, json=REPORT, params={"token": "s3"})
        assert in_url.status_code == 400  # URLs are logged: the secret goes in a header
        assert "X-Report-Token" in in_url.json()["detail"]
        heard = await client.post(REPORTS, json=REPORT, headers={"X-Report-Token": "s3"})
        assert heard.status_code == 404  # heard (no such message), not refused
    await service.db.dispose()


async def test_delivery_reports_are_off_until_a_token_is_set(notify: Service) -> None:
    answer = await notify.client.post(REPORTS, json=REPORT, headers={"X-Report-Token": ""})
    assert answer.status_code == 503
    assert "MOTCUA_NOTIFY_SMS_REPORT_TOKEN" in answer.json()["detail"]


async def opt_outs(db: Database) -> list[str]:
    async with db.sessions() as session:
        return list((await session.exec(select(notify_store.OptOut.target))).all())


async def test_opt_outs_are_recorded_by_counters(notify: Service) -> None:
    by_role = await keys(notify.db)
    path = "/api/v1/notifications/opt-outs"
    body = {"dossier": "000.00.00.H56-260602-0001"}
    assert (await notify.client.post(path, json=body)).status_code == 401
    for role in (Role.VIEWER, Role.KIOSK, Role.OFFICE, Role.IMPORTER):
        answer = await notify.client.post(path, json=body, headers=by_role[role])
        assert answer.status_code == 403, role
    assert await opt_outs(notify.db) == []
    answer = await notify.client.post(path, json=body, headers=by_role[Role.COUNTER])
    assert answer.status_code == 200
    assert answer.json() == {"suppressed": 0}
    other = {"dossier": "000.00.00.H56-260602-0002"}
    assert (await notify.client.post(path, json=other, headers=by_role[Role.ADMIN])).is_success
    assert len(await opt_outs(notify.db)) == 2
    await revoke_granted(notify.db, by_role[Role.COUNTER])
    assert (
        await notify.client.post(path, json=body, headers=by_role[Role.COUNTER])
    ).status_code == 401


async def test_toggles_are_read_with_any_key_and_set_by_admins(notify: Service) -> None:
    by_role = await keys(notify.db)
    path = "/api/v1/notifications/toggles"
    assert (await notify.client.get(path)).status_code == 401
    for role, key in by_role.items():
        answer = await notify.client.get(path, headers=key)
        assert (answer.status_code, answer.json()) == (200, []), role

    assert (await notify.client.put(path, json=TOGGLE)).status_code == 401
    for role, key in by_role.items():
        if role is not Role.ADMIN:
            assert (await notify.client.put(path, json=TOGGLE, headers=key)).status_code == 403
    assert (await notify.client.get(path, headers=by_role[Role.VIEWER])).json() == []

    admin = by_role[Role.ADMIN]
    assert (await notify.client.put(path, json=TOGGLE, headers=admin)).status_code == 204
    [toggle] = (await notify.client.get(path, headers=by_role[Role.KIOSK])).json()
    assert (toggle["trigger"], toggle["enabled"]) == ("overdue", False)

    await revoke_granted(notify.db, admin)
    again = {**TOGGLE, "enabled": True}
    assert (await notify.client.put(path, json=again, headers=admin)).status_code == 401
    [unchanged] = (await notify.client.get(path, headers=by_role[Role.KIOSK])).json()
    assert unchanged["enabled"] is False


HEAD = {"unit": RECEIVING, "name": "Lê Văn Trưởng", "email": "truong.phong@example.vn"}


async def test_heads_and_digests_are_for_admins(notify: Service) -> None:
    by_role = await keys(notify.db)
    heads = "/api/v1/notifications/heads"
    admin = by_role[Role.ADMIN]
    client = notify.client
    calls: dict[str, Callable[[dict[str, str]], Awaitable[httpx.Response]]] = {
        "list heads": lambda key: client.get(heads, headers=key),
        "put a head": lambda key: client.put(heads, json=HEAD, headers=key),
        "delete a head": lambda key: client.delete(heads, params={"unit": RECEIVING}, headers=key),
        "queue a digest": lambda key: client.post(
            "/api/v1/notifications/digests", json={"period": "2026-03"}, headers=key
        ),
    }
    for what, call in calls.items():
        assert (await call(NO_KEY)).status_code == 401, what
        for role, key in by_role.items():
            if role is not Role.ADMIN:
                assert (await call(key)).status_code == 403, (what, role)
    assert (await calls["list heads"](admin)).json() == []  # the refused PUTs changed nothing

    assert (await notify.client.put(heads, json=HEAD, headers=admin)).status_code == 204
    assert (await notify.client.get(heads, headers=admin)).json() == [HEAD]
    queued = await notify.client.post(
        "/api/v1/notifications/digests", json={"period": "2026-03"}, headers=admin
    )
    assert queued.status_code == 200
    removed = await notify.client.delete(heads, params={"unit": RECEIVING}, headers=admin)
    assert removed.status_code == 204


async def test_reports_and_dashboard_are_public_but_recompute_is_for_admins(
    notify: Service,
) -> None:
    period = {"from": "2026-03-01", "to": "2026-03-31"}
    report = await notify.client.get("/api/v1/reports/sla", params=period)
    assert report.status_code == 200
    assert report.json()["rows"] == []
    as_csv = await notify.client.get("/api/v1/reports/sla", params={**period, "format": "csv"})
    assert as_csv.status_code == 200
    assert (await notify.client.get("/api/v1/reports/dashboard")).status_code == 200
    assert (await notify.client.get("/dashboard")).status_code == 200
    assert (await notify.client.get("/dashboard/dashboard.js")).status_code == 200

    by_role = await keys(notify.db)
    recompute = "/api/v1/reports/recompute"
    assert (await notify.client.post(recompute)).status_code == 401
    for role, key in by_role.items():
        answer = await notify.client.post(recompute, headers=key)
        if role is Role.ADMIN:
            assert (answer.status_code, answer.json()) == (200, {"facts": 0})
        else:
            assert answer.status_code == 403, role
