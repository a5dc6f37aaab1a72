"""The real stack: the local Kafka-protocol broker and the four services as processes.

Every test gets its own broker and state directory. The database backend is SQLite
files, and PostgreSQL too when ``MOTCUA_TEST_POSTGRES_URL`` is set (each run in
schemas of its own, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.engine import make_url

from motcua.stack import Stack
from shared.calendar import VN_TZ
from shared.db import Database
from shared.settings import SERVICES, ServiceName, Settings
from shared.topics import ALL_TOPICS, DEAD_LETTER_PARTITIONS
from tests.factories import api_key_header, dossier_body
from tests.standins import JsonPostServer

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


STACK_ENV = {
    "MOTCUA_RELAY_POLL_SECONDS": "0.2",
    # a message a SIGKILLed notify left 'sending' is reconciled after this lease
    # (300 s by default, so that a slow SMTP server is not mistaken for a crash)
    "MOTCUA_NOTIFY_SENDING_LEASE_SECONDS": "3",
}
"""What every test stack's services run with, besides their backend."""


@contextmanager
def started_stack(var_dir: Path, env: Mapping[str, str]) -> Iterator[Stack]:
    """A started stack (``STACK_ENV`` plus ``env``) whose clock starts on a working
    Wednesday at 09:00 (Vietnam time); stopped (no orphan process) on leaving."""
    running = Stack(var_dir, env={**STACK_ENV, **env}, clock_start=WEDNESDAY_MORNING)
    try:
        running.start(timeout=90)
        yield running
    finally:
        running.stop()


@pytest.fixture
def stack(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[Stack]:
    """A started stack whose clock starts on a working Wednesday at 09:00 (Vietnam time);
    stopped (no orphan process) after the test."""
    with started_stack(tmp_path / "var", backend_env) as running:
        yield running


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

    async def rows(self, service: ServiceName, sql: str) -> list[tuple[Any, ...]]:
        async with self.dbs[service].engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(sql))).all()]

    async def ends(self, gateway: SmsGateway) -> Ends:
        """Where every dossier got: each service's own record of it, and the receipts
        the SMS gateway delivered."""
        routed = await self.rows("routing", "SELECT dossier_code FROM assignment")
        tracked = await self.rows(
            "sla",
            "SELECT code FROM tracked_dossier WHERE started_at IS NOT NULL AND office IS NOT NULL",
        )
        stored = await self.rows(
            "notify",
            "SELECT dossier_code, count(*) FROM message WHERE trigger = 'received' "
            "AND status IN ('sent', 'delivered') GROUP BY dossier_code",
        )
        return Ends(
            routed=frozenset(code for (code,) in routed),
            tracked=frozenset(code for (code,) in tracked),
            stored=Counter({code: int(n) for code, n in stored}),
            delivered=gateway.receipts(),
        )

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


# --------------------------------------------------------------------------- faults
# What the fault tests (test_faults.py) and their bench (bench/faults.py) share: where
# receipts are counted, what "every end" of a dossier is, counters that keep posting,
# the dead-letter topics, and the faults themselves (dropped connections, a locked file).

SMS_API_KEY = "fault-tests-gateway"
FAULTS_LOG = "tests.faults"
log = logging.getLogger(FAULTS_LOG)


class SmsGateway:
    """A stand-in for the brand-name SMS gateway on loopback, in the test process (so it
    outlives a power cut of the stack): receipts are counted where the citizen gets them.

    It keeps the contract notify relies on (``services/notify/channels/sms_http.py``):
    it answers ``{"code": "00"}`` and delivers a reference (``request_id``: notify's
    message key, ``<dossier>:<trigger>:sms``) once, however often it is posted; a repeat
    is counted in ``reposts``, not delivered again.
    """

    def __init__(self) -> None:
        self.delivered: dict[str, str] = {}
        """Reference -> phone number, once per reference."""
        self.reposts = 0
        self._lock = threading.Lock()
        self._server = JsonPostServer(
            lambda body, headers, _path: self.answer(body, headers.get("X-API-Key"))
        )

    def answer(self, body: dict[str, Any], api_key: str | None) -> tuple[int, dict[str, str]]:
        if api_key != SMS_API_KEY:
            return 401, {"code": "401"}
        reference = str(body["request_id"])
        with self._lock:
            if reference in self.delivered:
                self.reposts += 1
            else:
                self.delivered[reference] = str(body["phone"])
        return 200, {"code": "00", "message_id": f"gw-{reference}"}

    @property
    def url(self) -> str:
        return f"{self._server.base_url}/api/sms/send"

    def env(self) -> dict[str, str]:
        """The stack's settings that make notify send SMS here, and only here."""
        return {
            "MOTCUA_NOTIFY_SMS_SINKS": "http",
            "MOTCUA_NOTIFY_SMS_URL": self.url,
            "MOTCUA_NOTIFY_SMS_API_KEY": SMS_API_KEY,
        }

    def receipts(self) -> Counter[str]:
        """``received`` receipts delivered, per dossier code."""
        with self._lock:
            references = list(self.delivered)
        keys = (reference.split(":") for reference in references)
        return Counter(key[0] for key in keys if len(key) > 1 and key[1] == "received")

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> SmsGateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@pytest.fixture
def sms_gateway() -> Iterator[SmsGateway]:
    with SmsGateway() as gateway:
        yield gateway


@dataclass(frozen=True)
class Ends:
    """Where dossiers got, by dossier code. Every end of a dossier: routed (routing's
    ``assignment``), tracked with its office (sla's ``tracked_dossier``), and exactly one
    ``received`` receipt: sent in notify's ``message`` table and delivered at the SMS
    gateway. More than one receipt is a duplicate; none is a loss."""

    routed: frozenset[str] = frozenset()
    tracked: frozenset[str] = frozenset()
    stored: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)

    def missing(self, codes: Iterable[str]) -> dict[str, set[str]]:
        """Per end, the codes that have not reached it."""
        wanted = set(codes)
        return {
            "not routed": wanted - self.routed,
            "not tracked": wanted - self.tracked,
            "no receipt sent": {c for c in wanted if not self.stored[c]},
            "no receipt delivered": {c for c in wanted if not self.delivered[c]},
        }

    def lost(self, codes: Iterable[str]) -> set[str]:
        """The codes that miss at least one end."""
        return set().union(*self.missing(codes).values())

    def duplicated(self, codes: Iterable[str]) -> set[str]:
        """The codes with more than one receipt, in the table or at the gateway."""
        return {c for c in codes if self.stored[c] > 1 or self.delivered[c] > 1}

    def tally(self, codes: Iterable[str]) -> dict[str, int]:
        """How many of ``codes`` miss each end, are lost or duplicated (all 0 when well)."""
        wanted = set(codes)
        return {
            **{end: len(left) for end, left in self.missing(wanted).items()},
            "lost": len(self.lost(wanted)),
            "duplicated": len(self.duplicated(wanted)),
        }


@dataclass
class CatchUp:
    """The last look at the ends, and how long until every dossier had reached every
    end (``None``: not within the time allowed)."""

    ends: Ends
    seconds: float | None


async def wait_for_every_end(
    probe: Probe,
    gateway: SmsGateway,
    codes: Iterable[str],
    *,
    within: float,
    since: float | None = None,
) -> CatchUp:
    """Poll until every code has reached every end, or ``within`` seconds have passed;
    then look once more a little later, so that a late duplicate is seen. Seconds are
    counted from ``since`` (a ``time.monotonic()`` reading, such as the end of a fault;
    default: now). Progress is logged (``FAULTS_LOG``, INFO) as it changes. A database
    that does not answer a poll is polled again."""
    wanted = set(codes)
    deadline = time.monotonic() + within
    start = time.monotonic() if since is None else since
    ends, shown = Ends(), ""
    while True:
        try:
            ends = await probe.ends(gateway)
        except Exception as exc:  # a database being failed is polled again
            log.info("  probe: %s", type(exc).__name__)
        else:
            line = ", ".join(f"{k} {v}" for k, v in ends.tally(wanted).items())
            if line != shown:
                log.info("  %6.1f s  %s", time.monotonic() - start, line)
                shown = line
            if not ends.lost(wanted):
                seconds = time.monotonic() - start
                await asyncio.sleep(2)
                return CatchUp(await probe.ends(gateway), seconds)
        if time.monotonic() > deadline:
            return CatchUp(ends, None)
        await asyncio.sleep(0.5)


@dataclass
class Posted:
    """What counters posted: the codes answered 201, and every other outcome counted
    (an HTTP status, or the name of a transport error)."""

    codes: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)

    def __add__(self, other: Posted) -> Posted:
        return Posted(self.codes + other.codes, self.refused + other.refused)


async def post_at_counters(
    stack: Stack, counters: int, *, total: int | None = None, seconds: float | None = None
) -> Posted:
    """``counters`` clerks each posting one dossier after another, until ``total`` posts
    were made between them or ``seconds`` have passed. Every answer is kept: an error is
    counted, and the clerk tries the next dossier a moment later."""
    assert stack.admin_key is not None
    assert total is not None or seconds is not None
    posted = Posted()
    tickets = itertools.count()
    deadline = None if seconds is None else time.monotonic() + seconds

    def more() -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        return total is None or next(tickets) < total

    async def counter() -> None:
        async with httpx.AsyncClient(
            base_url=stack.services["intake"].url,
            timeout=30,
            headers=api_key_header(stack.admin_key or ""),
        ) as client:
            while more():
                try:
                    response = await client.post("/api/v1/dossiers", json=dossier_body())
                except httpx.HTTPError as exc:
                    posted.refused[type(exc).__name__] += 1
                    await asyncio.sleep(0.2)
                    continue
                if response.status_code == 201:
                    posted.codes.append(response.json()["code"])
                else:
                    posted.refused[f"HTTP {response.status_code}"] += 1
                    await asyncio.sleep(0.2)

    await asyncio.gather(*(counter() for _ in range(counters)))
    return posted


DeadLetter = tuple[str, bytes | None, dict[str, str]]
"""A dead-lettered record: its dead-letter topic, its key and its headers."""


async def dead_lettered(bootstrap: str, *, within: float = 30.0) -> list[DeadLetter]:
    """Every record in every ``<topic>.dlq`` of the contract, read from the start."""
    parts = [
        TopicPartition(t.dead_letter, p) for t in ALL_TOPICS for p in range(DEAD_LETTER_PARTITIONS)
    ]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[DeadLetter] = []
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            behind = [p for p in parts if await consumer.position(p) < ends[p]]
            if not behind:
                break
            batch = await consumer.getmany(*behind, timeout_ms=500)
            records.extend(
                (r.topic, r.key, {k: v.decode() for k, v in r.headers})
                for partition_records in batch.values()
                for r in partition_records
            )
    finally:
        await consumer.stop()
    return records


@contextmanager
def scratch_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the PostgreSQL server of ``server_url`` (its SQLAlchemy
    URL), dropped afterwards: what a test may cut every connection of without touching
    anyone else's."""
    name = f"motcua_faults_{uuid.uuid4().hex[:8]}"
    admin = postgres_dsn(server_url)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def postgres_dsn(url: str) -> str:
    """The libpq DSN of a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def drop_connections(url: str, *, seconds: float, every: float = 0.5) -> int:
    """For ``seconds``, terminate every connection to the database of ``url`` (but the
    one doing it) every ``every`` seconds, as a PostgreSQL that restarts again and
    again would; return how many were terminated."""
    target = make_url(url).database
    conn = await asyncpg.connect(postgres_dsn(url))
    dropped = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            dropped += len(
                await conn.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    target,
                )
            )
            await asyncio.sleep(every)
    finally:
        await conn.close()
    return dropped


@asynccontextmanager
async def exclusive_lock(path: Path) -> AsyncIterator[None]:
    """Hold the SQLite file ``path`` under an exclusive lock (``BEGIN EXCLUSIVE`` from a
    connection of this process): every writer of the file waits, up to its busy timeout,
    then fails with "database is locked"."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    try:
        await asyncio.to_thread(conn.execute, "BEGIN EXCLUSIVE")
        yield
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
