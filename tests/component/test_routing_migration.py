"""routing_0002: chain steps written in whole minutes stay readable, as the hours routing
used for them, and their dossier goes on along its chain (SQLite, and PostgreSQL when
``MOTCUA_TEST_POSTGRES_URL`` is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from services.routing.process import standalone
from shared.db import Database
from shared.events import DossierAction, DossierActionRecorded, Envelope
from shared.migrations import baseline, head, upgrade
from shared.settings import Settings

POSTGRES_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
CODE = "000.00.00.H56-260302-0001"
NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    if request.param == "sqlite":
        yield Settings(var_dir=tmp_path, database_url=None)
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL: set MOTCUA_TEST_POSTGRES_URL to run this backend")
    prefix = f"r{uuid.uuid4().hex[:8]}_"
    yield Settings(var_dir=tmp_path, database_url=POSTGRES_URL, db_schema_prefix=prefix)
    db = Database(POSTGRES_URL)
    async with db.engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}routing" CASCADE'))
    await db.dispose()


async def test_steps_in_minutes_read_as_their_hours_after_the_upgrade(settings: Settings) -> None:
    routing = standalone(settings)
    db = routing.db
    try:
        await upgrade(db, "routing", to=baseline("routing"))
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO assignment (dossier_code, procedure_code, office, field, rule, "
                    "explanation, rule_version, catalogue_version, receiving_unit, channel, "
                    "level, received_at, routed_at, current_step, action_sequence, manual, "
                    "closed_at) VALUES (:code, '1.010801', '000.00.00.H56', 'Hộ tịch', 'r', "
                    "'e', 0, 1, '000.00.00.H56', 'counter', NULL, :now, :now, 0, 0, FALSE, "
                    "NULL)"
                ),
                {"code": CODE, "now": NOW},
            )
            for position, office, minutes in [(0, "000.00.00.H56", 90), (1, "000.00.61.H56", 20)]:
                await conn.execute(
                    text(
                        "INSERT INTO chain_step (dossier_code, position, office, "
                        "working_minutes, started_at, due_at, ended_at) "
                        "VALUES (:code, :position, :office, :minutes, :started, NULL, NULL)"
                    ),
                    {
                        "code": CODE,
                        "position": position,
                        "office": office,
                        "minutes": minutes,
                        "started": NOW if position == 0 else None,
                    },
                )

        assert (await upgrade(db, "routing")).current == head("routing")

        found = await routing.sheet(CODE)
        assert found is not None
        row, chain = found
        assert row.dossier_due_at is None
        assert [step.hours for step in chain] == [Decimal("1.5"), Decimal(20) / 60]

        transferred = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 15:00 in Vietnam
        action = DossierActionRecorded(
            action=DossierAction.TRANSFER,
            sequence=1,
            at=transferred,
            status="processing",
            national_status=4,
            office="000.00.61.H56",
        )
        async with db.transaction() as session:
            await routing.apply(
                session,
                [Envelope.wrap(action, occurred_at=transferred, source="test", dossier_code=CODE)],
            )
        moved = await routing.sheet(CODE)
        assert moved is not None
        assert moved[0].current_step == 1
        assert moved[1][1].started_at == transferred
        assert moved[1][1].due_at == datetime(2026, 3, 2, 8, 20, tzinfo=UTC)
    finally:
        await db.dispose()
