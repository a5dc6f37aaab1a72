"""Reception's fast path (issue 14): sequence numbers from blocks, unique under concurrency
and across instances, on SQLite and PostgreSQL; the key cache's time is a setting of at
most a second, and with none a revoked key is refused at once."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from services.intake import store
from services.intake.keys import create_key, revoke_key
from services.intake.sequences import Sequences
from services.intake.settings import IntakeSettings
from shared.auth import Role, parse_key
from shared.db import Database
from tests.component.test_intake_api import H56, FakeClock, intake_client
from tests.factories import api_key_header, dossier_body

DAY = date(2026, 6, 2)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """Intake's tables on a SQLite file, or in a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    else:
        url = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("PostgreSQL: set MOTCUA_TEST_POSTGRES_URL to run this backend")
        database = Database(url, schema=f"q{uuid.uuid4().hex[:8]}_intake")
    await database.create_tables(store.TABLES)
    yield database
    if database.schema:
        async with database.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{database.schema}" CASCADE'))
    await database.dispose()


@pytest.fixture
def reservations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every block reserved in the database."""
    sizes: list[int] = []
    reserve = store.reserve_sequences

    async def counting(session: object, unit: str, day: date, count: int) -> int:
        sizes.append(count)
        return await reserve(session, unit, day, count)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "reserve_sequences", counting)
    return sizes


async def test_concurrent_receptions_share_blocks_and_numbers_follow(
    db: Database, reservations: list[int]
) -> None:
    sequences = Sequences(db)
    numbers = await asyncio.gather(*(sequences.take(H56, DAY) for _ in range(40)))
    assert numbers == list(range(1, 41))  # in the order asked, none twice, no gap
    assert sum(reservations) == 40
    assert len(reservations) <= 3  # not a round trip per dossier
    assert await sequences.take("000.00.01.H22", DAY) == 1  # per unit
    assert await sequences.take(H56, date(2026, 6, 3)) == 1  # per day


async def test_one_at_a_time_each_reception_reserves_only_its_own_number(
    db: Database, reservations: list[int]
) -> None:
    first, restarted = Sequences(db), Sequences(db)
    assert [await first.take(H56, DAY) for _ in range(3)] == [1, 2, 3]
    assert await restarted.take(H56, DAY) == 4  # a restart loses no number when idle
    assert reservations == [1, 1, 1, 1]


async def test_two_instances_never_hand_out_one_number(db: Database) -> None:
    one, other = Sequences(db), Sequences(db)
    taken = await asyncio.gather(
        *(instance.take(H56, DAY) for _ in range(25) for instance in (one, other))
    )
    assert sorted(taken) == list(range(1, 51))


def test_the_key_cache_lasts_at_most_a_second() -> None:
    assert IntakeSettings().key_cache_seconds == 1.0
    with pytest.raises(ValidationError):
        IntakeSettings(key_cache_seconds=1.5)


def test_without_the_key_cache_a_revoked_key_is_refused_at_once(tmp_path: Path) -> None:
    clock = FakeClock()
    options = IntakeSettings(key_cache_seconds=0)
    with intake_client(tmp_path, clock, options) as (client, _keys):
        settings = client.app.state.runtime.settings  # type: ignore[attr-defined]
        token = asyncio.run(create_key(settings, Role.COUNTER, H56))
        parsed = parse_key(token)
        assert parsed is not None
        headers = api_key_header(token)
        assert (
            client.post("/api/v1/dossiers", json=dossier_body(), headers=headers).status_code == 201
        )
        asyncio.run(revoke_key(settings, parsed[0]))
        refused = client.post("/api/v1/dossiers", json=dossier_body(), headers=headers)
        assert refused.status_code == 401
