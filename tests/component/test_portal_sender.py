"""The portal service's ledger and sender over a real database (SQLite) and the stand-in
portal over real HTTP on loopback, without a broker: events applied as the consumer
applies them, rounds run by hand with a fixed clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from services.portal import process
from services.portal.app import Ledger, Operations, PortalClient, Sender
from services.portal.settings import PortalSettings
from shared.catalogue_sync import CatalogueInUse
from shared.db import Database
from shared.events import (
    Contact,
    DossierAction,
    DossierActionRecorded,
    DossierContact,
    Envelope,
    Payload,
)
from shared.migrations import upgrade
from shared.settings import Settings
from tests.factories import received_envelope
from tests.portal_standin import DSTCODE, PASSWORD, USERNAME, PortalStandIn

POSTGRES_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def event(code: str, payload: Payload) -> Envelope:
    return Envelope.wrap(payload, occurred_at=NOW, source="test", dossier_code=code)


def contact(code: str) -> Envelope:
    applicant = Contact(name="Phạm Thị Dung", phone="0912000333")
    payload = DossierContact(applicant=applicant, procedure_code="2.000635", receiving_unit=DSTCODE)
    return event(code, payload)


def action(code: str, sequence: int, what: DossierAction, status: int) -> Envelope:
    return event(
        code,
        DossierActionRecorded(
            action=what,
            sequence=sequence,
            at=NOW + timedelta(minutes=sequence),
            status="x",
            national_status=status,
        ),
    )


class Rig:
    def __init__(self, db: Database, standin: PortalStandIn, settings: PortalSettings) -> None:
        self.db = db
        self.standin = standin
        self.clock = Clock()
        self.ledger = Ledger(clock=self.clock)
        self.sender = Sender(db, settings, CatalogueInUse(), clock=self.clock)
        self.operations = Operations(db, settings, clock=self.clock)

    async def apply(self, *events: Envelope) -> None:
        async with self.db.transaction() as session:
            await self.ledger.apply(session, list(events))

    async def life(self, code: str) -> None:
        await self.apply(received_envelope(code), contact(code))
        await self.apply(action(code, 1, DossierAction.REQUEST_SUPPLEMENT, 5))

    async def rounds(self, n: int) -> None:
        for _ in range(n):
            await self.sender.send_round()
            self.clock.now += timedelta(seconds=5)


def portal_settings(url: str | None) -> PortalSettings:
    return PortalSettings(
        url=url,
        username=USERNAME,
        password=PASSWORD,  # type: ignore[arg-type]
        dstcode=DSTCODE,
        retry_first_seconds=1,
        retry_max_seconds=4,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Rig]:
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("PostgreSQL: set MOTCUA_TEST_POSTGRES_URL to run this backend")
    url = POSTGRES_URL if request.param == "postgresql" else None
    settings = Settings(
        var_dir=tmp_path, database_url=url, db_schema_prefix=f"p{uuid.uuid4().hex[:8]}_"
    )
    schema = settings.schema_for("portal")
    db = Database(settings.database_url_for("portal"), schema=schema)
    await upgrade(db, "portal")
    with PortalStandIn() as standin:
        built = Rig(db, standin, portal_settings(standin.url))
        yield built
        await built.sender.client.close()
    if schema:
        async with db.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await db.dispose()


async def test_states_go_in_order_once_and_a_redelivery_changes_nothing(rig: Rig) -> None:
    code = f"{DSTCODE}-261202-0001"
    received = received_envelope(code)
    await rig.apply(received, contact(code), received)  # the same state twice
    await rig.apply(action(code, 1, DossierAction.REQUEST_SUPPLEMENT, 5))
    await rig.rounds(2)
    assert rig.standin.states(code) == ["2", "5"]
    assert [c.body["isUpdating"] for c in rig.standin.accepted("DongBoHoSoMC", code)] == [
        "False",
        "True",
    ]
    await rig.apply(action(code, 1, DossierAction.REQUEST_SUPPLEMENT, 5))  # again, later
    await rig.rounds(2)
    assert rig.standin.states(code) == ["2", "5"]
    status = await rig.operations.status()
    assert (status.synced, status.pending, status.failed) == (1, 0, 0)


async def test_a_dossier_waits_for_its_applicant(rig: Rig) -> None:
    code = f"{DSTCODE}-261202-0002"
    await rig.apply(received_envelope(code))
    await rig.rounds(1)
    assert rig.standin.calls == []
    assert (await rig.operations.dossier(code)).waiting_for == ["applicant"]
    status = await rig.operations.status()
    assert (status.synced, status.pending) == (0, 1)
    await rig.apply(contact(code))
    await rig.rounds(1)
    assert rig.standin.states(code) == ["2"]


async def test_down_then_back_drains_in_order(rig: Rig) -> None:
    codes = [f"{DSTCODE}-261202-{n:04d}" for n in range(3, 6)]
    rig.standin.down = True
    for code in codes:
        await rig.life(code)
    await rig.rounds(3)
    assert rig.standin.count(503) >= 1
    status = await rig.operations.status()
    assert status.pending == 3
    assert status.oldest_pending is not None
    row = await rig.operations.dossier(codes[0])
    assert row.last_error == "login refused: HTTP 503, error_code UNAVAILABLE"
    assert row.attempts >= 1
    rig.standin.down = False
    await rig.rounds(6)
    assert {code: rig.standin.states(code) for code in codes} == {c: ["2", "5"] for c in codes}
    assert (await rig.operations.status()).pending == 0


@pytest.mark.parametrize("expired", ["SESSION_EXPIRED", "401"])
async def test_an_expired_session_is_renewed_once(rig: Rig, expired: str) -> None:
    code = f"{DSTCODE}-261202-0006"
    await rig.apply(received_envelope(code), contact(code))
    await rig.rounds(1)
    assert rig.standin.logins() == 1
    rig.standin.expire_sessions(expired)  # type: ignore[arg-type]
    await rig.apply(action(code, 1, DossierAction.REQUEST_SUPPLEMENT, 5))
    await rig.rounds(1)
    assert rig.standin.logins() == 2
    assert rig.standin.states(code) == ["2", "5"]
    assert (await rig.operations.dossier(code)).attempts == 0


async def test_a_refused_dossier_is_failed_until_resynced_and_holds_up_no_other(rig: Rig) -> None:
    refused, other = f"{DSTCODE}-261202-0007", f"{DSTCODE}-261202-0008"
    rig.standin.rejected.add(refused)
    await rig.life(refused)
    await rig.life(other)
    await rig.rounds(3)
    assert rig.standin.states(other) == ["2", "5"]
    row = await rig.operations.dossier(refused)
    assert row.failed
    assert row.last_error == "HTTP 400, error_code INVALID_MATTHC"
    assert (await rig.operations.status()).failed == 1
    rig.standin.rejected.clear()
    assert await rig.operations.resync_failed() == 1
    await rig.rounds(1)
    assert rig.standin.states(refused) == ["2", "5"]


async def test_resync_of_a_synced_dossier_sends_its_latest_state_again(rig: Rig) -> None:
    code = f"{DSTCODE}-261202-0009"
    await rig.life(code)
    await rig.rounds(1)
    await rig.operations.resync(code)
    await rig.rounds(1)
    assert rig.standin.states(code) == ["2", "5", "5"]


async def test_without_a_portal_the_ledger_fills_and_nothing_is_sent(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    db = Database(settings.database_url_for("portal"))
    await upgrade(db, "portal")
    unset = portal_settings(None)
    sender = Sender(db, unset, CatalogueInUse())
    code = f"{DSTCODE}-261202-0010"
    async with db.transaction() as session:
        await Ledger().apply(session, [received_envelope(code), contact(code)])
    assert await sender.send_round() == 0
    assert (await Operations(db, unset).status()).pending == 1
    await sender.client.close()
    await db.dispose()


async def test_readiness_says_when_no_portal_is_configured(tmp_path: Path) -> None:
    built = process.build(Settings(var_dir=tmp_path), portal=portal_settings(None))
    report = await built.runtime.readiness()
    assert report["portal"] == "portal not configured"
    configured = process.build(Settings(var_dir=tmp_path), portal=portal_settings("http://x"))
    assert (await configured.runtime.readiness())["portal"] == "configured"
    await built.runtime.db.dispose()
    await configured.runtime.db.dispose()


async def test_the_client_reports_no_answer_as_a_retry() -> None:
    settings = portal_settings("http://127.0.0.1:9")  # nothing listens on the discard port
    client = PortalClient(settings, httpx.AsyncClient(timeout=2))
    reply = await client.call("DongBoHoSoMC", updating=False, data=[])
    await client.close()
    assert reply.reason == "login refused: no answer"
    assert not reply.reached
