"""The real stack: the local Kafka-protocol broker and the four services as processes.

Every test gets its own broker and state directory. The database backend is SQLite
files, and PostgreSQL too when ``MOTCUA_TEST_POSTGRES_URL`` is set (each run in
schemas of its own, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from motcua.stack import Stack
from shared.calendar import VN_TZ
from shared.db import Database
from shared.settings import SERVICES, ServiceName, Settings
from tests.factories import api_key_header, dossier_body

POSTGRES_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL")

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Environment selecting the database backend of the services."""
    if request.param == "sqlite":
        yield {}
        return
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL: set MOTCUA_TEST_POSTGRES_URL (e.g. "
            "postgresql+asyncpg://postgres@127.0.0.1:5432/test) to run this backend"
        )
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    yield {"MOTCUA_DATABASE_URL": POSTGRES_URL, "MOTCUA_DB_SCHEMA_PREFIX": prefix}

    async def drop() -> None:
        db = Database(POSTGRES_URL)
        async with db.engine.begin() as conn:
            for service in SERVICES:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}{service}" CASCADE'))
        await db.dispose()

    asyncio.run(drop())


WEDNESDAY_MORNING = datetime(2026, 12, 2, 9, 0, tzinfo=VN_TZ)
"""Where the stack's clock starts, so that no test depends on the hour it runs at: a
working morning, hours before any same-day dossier's due time or warning."""


@pytest.fixture
def stack(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[Stack]:
    """A started stack whose clock starts on a working Wednesday at 09:00 (Vietnam time);
    stopped (no orphan process) after the test."""
    env = {
        "MOTCUA_RELAY_POLL_SECONDS": "0.2",
        # a message a SIGKILLed notify left 'sending' is reconciled after this lease
        # (300 s by default, so that a slow SMTP server is not mistaken for a crash)
        "MOTCUA_NOTIFY_SENDING_LEASE_SECONDS": "3",
        **backend_env,
    }
    running = Stack(tmp_path / "var", env=env, clock_start=WEDNESDAY_MORNING)
    try:
        running.start(timeout=90)
        yield running
    finally:
        running.stop()


class Probe:
    """Reads the services' own databases, as an operator would, to see what happened."""

    def __init__(self, stack: Stack) -> None:
        env = stack.env
        self.settings = Settings(
            var_dir=stack.var_dir,
            database_url=env.get("MOTCUA_DATABASE_URL"),
            db_schema_prefix=env.get("MOTCUA_DB_SCHEMA_PREFIX", ""),
        )
        self.dbs = {
            s: Database(self.settings.database_url_for(s), schema=self.settings.schema_for(s))
            for s in SERVICES
        }
        self.var_dir = stack.var_dir

    async def scalar(self, service: ServiceName, sql: str) -> int:
        async with self.dbs[service].engine.connect() as conn:
            return int((await conn.execute(text(sql))).scalar_one() or 0)

    async def progress(self) -> dict[str, int]:
        """How many dossiers reached each end."""
        return {
            "received": await self.scalar("intake", "SELECT count(*) FROM dossier"),
            "routed": await self.scalar("routing", "SELECT count(*) FROM assignment"),
            "tracked": await self.scalar(
                "sla",
                "SELECT count(*) FROM tracked_dossier "
                "WHERE started_at IS NOT NULL AND office IS NOT NULL",
            ),
            "notified": await self.scalar(
                "notify", "SELECT count(*) FROM message WHERE status = 'sent'"
            ),
            "messages": await self.scalar("notify", "SELECT count(*) FROM message"),
            "message_files": len(list((self.var_dir / "messages").glob("*.json"))),
        }

    async def wait_for_all(self, n: int, within: float = 120.0) -> dict[str, int]:
        """Wait until ``n`` dossiers are routed, tracked and notified; return the counts."""
        deadline = time.monotonic() + within
        while True:
            counts = await self.progress()
            done = all(counts[k] >= n for k in ("routed", "tracked", "notified"))
            if done or time.monotonic() > deadline:
                return counts
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        for db in self.dbs.values():
            await db.dispose()


@pytest.fixture
async def probe(stack: Stack) -> AsyncIterator[Probe]:
    watcher = Probe(stack)
    yield watcher
    await watcher.close()


PostMany = Callable[[int], Awaitable[list[str]]]


@pytest.fixture
def post_dossiers(stack: Stack) -> PostMany:
    """Post ``n`` dossiers concurrently over HTTP; every answer must be 201."""

    async def post(n: int) -> list[str]:
        limit = asyncio.Semaphore(16)
        assert stack.admin_key is not None
        async with httpx.AsyncClient(
            base_url=stack.services["intake"].url,
            timeout=30,
            headers=api_key_header(stack.admin_key),
        ) as client:

            async def one() -> str:
                async with limit:
                    response = await client.post("/api/v1/dossiers", json=dossier_body())
                assert response.status_code == 201, response.text
                code: str = response.json()["code"]
                return code

            return list(await asyncio.gather(*(one() for _ in range(n))))

    return post
