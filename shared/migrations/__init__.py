"""Schema migrations: Alembic brings each service's database to the newest revision.

Where a revision lives: next to the code that defines its table. Every directory of
revisions is one Alembic branch, named like the directory, whose revision ids start
with that name:

- ``shared/migrations/inbox_outbox/``: the inbox and the outbox, in every service;
- ``shared/migrations/keys_sync/``: ``api_key_copy`` (routing, sla, notify, portal);
- ``shared/migrations/catalogue_sync/``: ``catalogue_copy`` (intake; notify and portal,
  whose baselines lacked it, create the same table in their own branches: ``notify_0003``,
  ``portal_0002``);
- ``services/<service>/migrations/``: the service's own tables.

A service's script directory is its own branch plus the shared branches it uses
(``BRANCHES``), so a change to the outbox is written once and every service applies it.
To change a table, add ``<branch>_<n+1>_<what>.py`` beside the branch's newest revision,
with ``down_revision`` naming it; ``tests/component/test_migrations.py`` checks that every
service's models and head agree.

The version table is ``alembic_version`` in the service's own database: its SQLite file,
or its PostgreSQL schema (``version_table_schema``). One per service, then, because each
service owns a store of its own; it is kept, copied and dropped with the tables it
describes, under the name Alembic's tools expect. It holds one row per branch.

Revision ``<branch>_0001`` of every branch is the baseline: the schema that ``create_all``
made at commit 78546e7, the last without migrations, written out as explicit operations.
A database is upgraded from whatever it holds:

- empty (no tables): from nothing, through the baselines;
- made before migrations (tables, no version table): detected and logged, then taken to
  the baselines, which create only the tables it lacks and keep the others as that
  ``create_all`` made them (when it has them all, this is stamping it at the baseline;
  ``motcua keys`` makes some of intake's tables before intake first starts, so "some"
  happens), then upgraded;
- versioned: from its revisions;
- holding a revision this release lacks (a newer one migrated it): refused.

One upgrade at a time per database, in one transaction that either reaches head or
leaves the database as it was. PostgreSQL: a transaction-level advisory lock keyed by the
service's schema (its name, with the deployment's prefix, so separate deployments or test
runs never wait for each other) is taken first, so a second instance starting at once
waits, then finds the database at head (PostgreSQL's DDL is transactional). SQLite:
``BEGIN IMMEDIATE`` takes the file's write lock for the whole upgrade, which suffices:
another process waits for it (busy timeout), then finds head. Within one process, upgrades
run one after another, because Alembic's ``op`` is a module-wide proxy.

Alembic's API is synchronous: it runs on the service's async engine through
``run_sync``, without an ``env.py``, from revisions read once per process (starting at
head costs a few milliseconds).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.db import Database
from shared.migrations import existing
from shared.settings import ServiceName

__all__ = [
    "BRANCHES",
    "VERSION_TABLE",
    "DatabaseNotAtHeadError",
    "MigrationError",
    "Status",
    "UnknownRevisionError",
    "baseline",
    "ensure_at_head",
    "existing",
    "head",
    "status",
    "upgrade",
]

log = logging.getLogger(__name__)

VERSION_TABLE = "alembic_version"

BRANCHES: Mapping[ServiceName, tuple[str, ...]] = {
    "intake": ("inbox_outbox", "catalogue_sync", "intake"),
    "routing": ("inbox_outbox", "keys_sync", "routing"),
    "sla": ("inbox_outbox", "keys_sync", "sla"),
    "notify": ("inbox_outbox", "keys_sync", "notify"),
    "portal": ("inbox_outbox", "keys_sync", "portal"),
}
"""The branches whose tables each service has: the shared ones, then its own."""

_HERE = Path(__file__).parent


def _branch_dir(branch: str) -> Path:
    if (_HERE / branch).is_dir():
        return _HERE / branch
    # a service's own revisions: found by location, never imported from shared/
    spec = importlib.util.find_spec("services")
    assert spec is not None
    assert spec.submodule_search_locations is not None
    return Path(next(iter(spec.submodule_search_locations))) / branch / "migrations"


@cache
def _script(service: ServiceName) -> ScriptDirectory:
    """The revisions ``service`` applies (read once per process)."""
    return ScriptDirectory(
        str(_HERE), version_locations=[str(_branch_dir(b)) for b in BRANCHES[service]]
    )


def head(service: ServiceName) -> tuple[str, ...]:
    """The newest revision of each of ``service``'s branches, sorted."""
    return tuple(sorted(_script(service).get_heads()))


def baseline(service: ServiceName) -> tuple[str, ...]:
    """The first revision of each of ``service``'s branches (commit 78546e7's schema)."""
    return tuple(sorted(_script(service).get_bases()))


@cache
def _known(service: ServiceName) -> frozenset[str]:
    return frozenset(revision.revision for revision in _script(service).walk_revisions())


@dataclass(frozen=True, slots=True)
class Status:
    """Where a service's database stands."""

    service: ServiceName
    current: tuple[str, ...]
    """Its revisions (one per branch), sorted; empty before its first upgrade."""
    head: tuple[str, ...]
    unversioned_tables: bool
    """Tables but no version: made before migrations."""

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def unknown(self) -> tuple[str, ...]:
        """Revisions this release does not have: a newer one migrated the database."""
        return tuple(r for r in self.current if r not in _known(self.service))

    def describe_current(self) -> str:
        if self.current:
            return ", ".join(self.current)
        if self.unversioned_tables:
            return "no revision (tables made before migrations)"
        return "no revision (empty)"


class MigrationError(RuntimeError):
    """A database a service may not use as it stands; the message says what to run."""


class DatabaseNotAtHeadError(MigrationError):
    """A service would start on a database that is not at head, with upgrades at start-up
    turned off."""

    def __init__(self, found: Status) -> None:
        self.status = found
        super().__init__(
            f"{found.service}: the database is at {found.describe_current()}, not at head "
            f"({', '.join(found.head)}): run `motcua db upgrade {found.service}` "
            "(or start it with MOTCUA_DB_UPGRADE_AT_START=true)"
        )


class UnknownRevisionError(MigrationError):
    """The database holds a revision this release does not have."""

    def __init__(self, found: Status) -> None:
        self.status = found
        super().__init__(
            f"{found.service}: the database is at {found.describe_current()}, and this "
            f"release does not know {', '.join(found.unknown)}: a newer release migrated it; "
            "run that release"
        )


async def status(db: Database, service: ServiceName) -> Status:
    """Where ``db``, the database of ``service``, stands (reads only)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_status_sync, service, db.schema)


async def upgrade(
    db: Database, service: ServiceName, *, to: tuple[str, ...] | None = None
) -> Status:
    """Bring ``db``, the database of ``service``, to head, or to the revisions ``to``;
    all of it or, on any error, none of it. ``UnknownRevisionError`` if a newer release
    migrated it. The module's docstring says from which states, and how concurrent
    upgrades are kept apart."""
    async with _process_lock(), db.engine.connect() as conn:
        await _begin_exclusive(conn, db)
        before, after = await conn.run_sync(_upgrade_sync, service, db.schema, to or "heads")
        await conn.commit()
    if after != before.current:
        log.info(
            "%s: database upgraded from %s to %s",
            service,
            before.describe_current(),
            ", ".join(after),
        )
    return Status(service, after, head(service), unversioned_tables=False)


async def ensure_at_head(db: Database, service: ServiceName, *, may_upgrade: bool) -> None:
    """What a service does at start: upgrade its database to head if it ``may_upgrade``
    (the setting ``db_upgrade_at_start``); else refuse a database that is not at head
    (``DatabaseNotAtHeadError``, naming the command to run)."""
    if may_upgrade:
        await upgrade(db, service)
        return
    found = await status(db, service)
    if found.unknown:
        raise UnknownRevisionError(found)
    if not found.at_head:
        raise DatabaseNotAtHeadError(found)


def _status_sync(
    conn: Connection,
    service: ServiceName,
    schema: str | None,
    context: MigrationContext | None = None,
) -> Status:
    context = context or MigrationContext.configure(conn, opts={"version_table_schema": schema})
    current = tuple(sorted(context.get_current_heads()))
    tables = [t for t in inspect(conn).get_table_names(schema=schema) if t != VERSION_TABLE]
    return Status(service, current, head(service), bool(tables) and not current)


def _upgrade_sync(
    conn: Connection, service: ServiceName, schema: str | None, to: str | tuple[str, ...]
) -> tuple[Status, tuple[str, ...]]:
    script = _script(service)

    def steps(current: Any, _context: MigrationContext) -> Any:
        # what ``alembic upgrade`` runs (Alembic has no public name for it); it hands
        # the destination to ``iterate_revisions``, which takes a tuple of revisions too
        return script._upgrade_revs(to, current)  # type: ignore[arg-type]

    context = MigrationContext.configure(
        conn, opts={"version_table_schema": schema, "script": script, "fn": steps}
    )
    before = _status_sync(conn, service, schema, context)
    if before.unknown:
        raise UnknownRevisionError(before)
    if before.unversioned_tables:
        log.info("%s: tables but no version (made before migrations): taken as baseline", service)
    with Operations.context(context):
        context.run_migrations()
    return before, tuple(sorted(context.get_current_heads()))


async def _begin_exclusive(conn: AsyncConnection, db: Database) -> None:
    """Begin the upgrade's transaction holding the database's migration lock."""
    if db.is_sqlite:
        # the driver would begin only before the first INSERT: take the write lock now
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
        return
    schema = db.schema or "public"
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(schema)})
    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))


def _lock_key(schema: str) -> int:
    """The advisory-lock key of a schema's migrations (a signed 64-bit integer)."""
    digest = hashlib.blake2b(f"motcua.migrations:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _process_lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _LOCKS.get(loop)
    if lock is None:
        lock = _LOCKS[loop] = asyncio.Lock()
    return lock
