"""Database plumbing: one async engine per service database.

Every datetime column uses ``AwareDateTime``: stored in UTC, always read back
timezone-aware (SQLite forgets the zone; this type puts it back), so no naive
datetime ever leaves the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.settings import get_settings


class AwareDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime column; naive values are refused on write."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime refused: every motcua time is timezone-aware"
            raise ValueError(msg)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, ConnectionPoolEntry], None]:
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the single writer; busy_timeout queues writers
        # instead of failing with "database is locked".
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


class Database:
    """The database one service owns: an engine, sessions, and its tables.

    On PostgreSQL the service lives in its own schema (created if missing, and put
    first on the search path); on SQLite it has a file of its own, and a write waits
    up to ``sqlite_busy_timeout_ms`` (default: the setting) for another's lock.
    """

    def __init__(
        self, url: str, *, schema: str | None = None, sqlite_busy_timeout_ms: int | None = None
    ) -> None:
        self.url = url
        self.schema = schema
        self.is_sqlite = url.startswith("sqlite")
        connect_args: dict[str, Any] = {}
        if schema:
            connect_args["server_settings"] = {"search_path": schema}
        if self.is_sqlite:
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            busy_ms = sqlite_busy_timeout_ms or get_settings().sqlite_busy_timeout_ms
            connect_args["timeout"] = busy_ms / 1000
        self.engine: AsyncEngine = create_async_engine(
            url,
            connect_args=connect_args,
            pool_pre_ping=not self.is_sqlite,
            # Statement parameters are citizens' names, phones and id numbers: an error
            # (logged, or shown in a traceback) names the statement, never its values.
            hide_parameters=True,
        )
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(busy_ms))
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    async def create_tables(self, tables: Sequence[Table]) -> None:
        """Create this service's schema and tables if missing (idempotent)."""
        async with self.engine.begin() as conn:
            if self.schema:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            await conn.run_sync(
                lambda sync: SQLModel.metadata.create_all(sync, tables=list(tables))
            )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        """Raise unless the database answers."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def table(model: type[SQLModel]) -> Table:
    """The ``Table`` behind a SQLModel table class (typed for mypy)."""
    result = model.__table__  # type: ignore[attr-defined]
    assert isinstance(result, Table)
    return result


def upsert_insert(session: AsyncSession, target: Table) -> Any:
    """An ``INSERT`` into ``target`` with ``ON CONFLICT`` available, in the session's
    dialect (PostgreSQL or SQLite, the two every service runs on)."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(target)
