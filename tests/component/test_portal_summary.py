"""The portal's public summary, ``GET /api/v1/portal/summary``, over a real database
(SQLite) and the real router: counts per receiving unit from the ledger, the oldest
pending age from the injected clock, no key needed, and nothing in the body that names a
dossier or a person; the admin routes beside it still want an admin key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.portal import store
from services.portal.api import router
from services.portal.app import Operations
from services.portal.settings import PortalSettings
from shared.auth import Authenticator
from shared.db import Database
from shared.keys_sync import key_lookup
from shared.migrations import upgrade
from shared.settings import Settings

NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
UNIT_A = "000.00.00.H56"
UNIT_B = "000.00.01.H56"
NAME = "Phạm Thị Dung"
PHONE = "0912000333"


def dossier(
    code: str, unit: str, *, created: bool = True, failed: bool = False
) -> store.PortalDossier:
    applicant = json.dumps({"name": NAME, "phone": PHONE})
    return store.PortalDossier(
        code=code,
        receiving_unit=unit,
        applicant=applicant,
        created=created,
        failed=failed,
        last_error="HTTP 400" if failed else None,
    )


def state(code: str, step: int, status: str, created_at: datetime) -> store.PortalState:
    return store.PortalState(
        code=code, step=step, national_status=2, at=created_at, status=status, created_at=created_at
    )


async def seed(db: Database) -> None:
    """Unit A: two synced, one pending for 90 minutes, one pending for 30; unit B: one failed."""
    rows = [
        (dossier(f"{UNIT_A}-261202-0001", UNIT_A), store.SENT, NOW - timedelta(hours=3)),
        (dossier(f"{UNIT_A}-261202-0002", UNIT_A), store.SENT, NOW - timedelta(hours=2)),
        (dossier(f"{UNIT_A}-261202-0003", UNIT_A), store.PENDING, NOW - timedelta(minutes=90)),
        (
            dossier(f"{UNIT_A}-261202-0004", UNIT_A, created=False),
            store.PENDING,
            NOW - timedelta(minutes=30),
        ),
        (
            dossier(f"{UNIT_B}-261202-0001", UNIT_B, failed=True),
            store.PENDING,
            NOW - timedelta(hours=5),
        ),
    ]
    async with db.transaction() as session:
        for row, status, at in rows:
            session.add(row)
            await session.flush()
            session.add(state(row.code, 0, status, at))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    settings = Settings(var_dir=tmp_path)
    database = Database(settings.database_url_for("portal"))
    await upgrade(database, "portal")
    await seed(database)
    yield database
    await database.dispose()


def client_for(db: Database, portal: PortalSettings) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(
        router(Operations(db, portal, clock=lambda: NOW), Authenticator(key_lookup(db)))
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal")


async def test_the_summary_counts_per_unit_without_a_key_and_names_no_one(db: Database) -> None:
    async with client_for(db, PortalSettings(url="http://127.0.0.1:9")) as client:
        answer = await client.get("/api/v1/portal/summary")
        admin = await client.get("/api/v1/portal/status")
    assert answer.status_code == 200
    assert admin.status_code == 401  # the admin routes beside it are as they were
    body = answer.json()
    assert body["configured"] is True
    units = {u["unit"]: u for u in body["units"]}
    assert set(units) == {UNIT_A, UNIT_B}
    a, b = units[UNIT_A], units[UNIT_B]
    assert (a["synced"], a["pending"], a["failed"]) == (2, 2, 0)
    assert a["oldest_pending_minutes"] == 90
    assert datetime.fromisoformat(a["oldest_pending_at"]) == NOW - timedelta(minutes=90)
    assert (b["synced"], b["pending"], b["failed"]) == (0, 0, 1)
    assert b["oldest_pending_minutes"] == 300  # a failed dossier's state is still unacknowledged
    total = body["total"]
    assert (total["synced"], total["pending"], total["failed"]) == (2, 2, 1)
    assert total["oldest_pending_minutes"] == 300
    text = answer.text
    for personal in ("261202-000", NAME, PHONE, "HTTP 400", "applicant"):
        assert personal not in text


async def test_the_summary_says_when_the_portal_is_not_configured(db: Database) -> None:
    async with client_for(db, PortalSettings(url=None)) as client:
        body = (await client.get("/api/v1/portal/summary")).json()
    assert body["configured"] is False
    assert body["total"]["pending"] == 2  # the ledger fills all the same
