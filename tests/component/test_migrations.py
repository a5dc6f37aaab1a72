"""Schema migrations of every service's database, on SQLite and (when
``MOTCUA_TEST_POSTGRES_URL`` is set) PostgreSQL, each run in schemas of its own.

A database from before migrations is made from ``schema_78546e7/``: the DDL that commit
78546e7's ``create_all`` emitted for each service, generated once from that commit's
models (they change from here on, so neither today's models nor the baseline under test
can stand in for them; and git history is not needed at test time).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Date,
    LargeBinary,
    MetaData,
    Table,
    column,
    inspect,
    select,
    text,
)
from sqlalchemy import table as table_stub
from sqlalchemy.types import TypeEngine
from typer.testing import CliRunner

from motcua.cli import app as motcua_app
from shared.db import AwareDateTime, Database
from shared.migrations import (
    VERSION_TABLE,
    DatabaseNotAtHeadError,
    UnknownRevisionError,
    _lock_key,
    baseline,
    ensure_at_head,
    head,
    status,
    upgrade,
)
from shared.service import ServiceRuntime
from shared.settings import SERVICES, ServiceName, Settings, get_settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING
from tests.factories import received_envelope

POSTGRES_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
SCHEMA_78546E7 = Path(__file__).parent / "schema_78546e7"
BEFORE_MIGRATIONS: tuple[ServiceName, ...] = tuple(s for s in SERVICES if s != "portal")
"""The services that existed at 78546e7 (portal came after migrations: no such database)."""

Backend = Callable[[], Settings]
"""Settings of a fresh database for every service (new files, or new schemas)."""


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        made = itertools.count()
        yield lambda: Settings(var_dir=tmp_path / f"var{next(made)}", database_url=None)
        return
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL: set MOTCUA_TEST_POSTGRES_URL (e.g. "
            "postgresql+asyncpg://postgres@127.0.0.1:5432/test) to run this backend"
        )
    prefixes: list[str] = []

    def fresh() -> Settings:
        prefixes.append(f"m{uuid.uuid4().hex[:8]}_")
        return Settings(var_dir=tmp_path, database_url=POSTGRES_URL, db_schema_prefix=prefixes[-1])

    yield fresh
    db = Database(POSTGRES_URL)
    async with db.engine.begin() as conn:
        for prefix in prefixes:
            for service in SERVICES:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}{service}" CASCADE'))
    await db.dispose()


@asynccontextmanager
async def opened(settings: Settings, service: ServiceName) -> AsyncIterator[Database]:
    db = Database(settings.database_url_for(service), schema=settings.schema_for(service))
    try:
        yield db
    finally:
        await db.dispose()


# -- data: rows as a service writes them, through stubs of the baseline's tables ----------

NOW = datetime(2026, 12, 2, 2, 30, tzinfo=UTC)
CODE = "000.00.00.H56-261202-0001"
ENVELOPE = received_envelope(CODE)

COMMON: list[tuple[str, dict[str, Any]]] = [
    (
        "outbox",
        {
            "id": 1,
            "topic": DOSSIER_LIFECYCLE.name,
            "key": CODE,
            "value": ENVELOPE.encode(),
            "created_at": NOW,
            "sent_at": NOW + timedelta(seconds=1),
        },
    ),
    (
        "outbox",
        {
            "id": 2,
            "topic": DOSSIER_ROUTING.name,
            "key": CODE,
            "value": b'{"type": "dossier.routed"}',
            "created_at": NOW,
            "sent_at": None,
        },
    ),
    ("inbox", {"event_id": str(ENVELOPE.event_id), "event_type": ENVELOPE.type, "applied_at": NOW}),
]
KEY_COPY = (
    "api_key_copy",
    {
        "key_id": "k7QpX2mZ",
        "secret_hash": "9f" * 32,
        "role": "counter",
        "unit": "000.00.00.H56",
        "revoked": False,
        "revoked_at": None,
        "changed_at": NOW,
    },
)
DUE = NOW + timedelta(days=3)

ROWS: dict[ServiceName, list[tuple[str, dict[str, Any]]]] = {
    "intake": [
        *COMMON,
        (
            "dossier",
            {
                "code": CODE,
                "procedure_code": "2.000635",
                "channel": "counter",
                "receiving_unit": "000.00.00.H56",
                "status": "received",
                "submitted_at": NOW,
                "received_at": NOW,
                "due_at": DUE,
                "extended_due_at": None,
                "extensions": 0,
                "action_sequence": 0,
                "last_event_at": NOW,
                "office": None,
                "applicant_name": "Nguyễn Văn An",
                "applicant_phone": "0912345678",
                "applicant_email": None,
                "applicant_id_number": "001203004567",
                "documents": ["Tờ khai đăng ký khai sinh", "Giấy chứng sinh"],
            },
        ),
        (
            "api_key",
            {
                "key_id": "k7QpX2mZ",
                "secret_hash": "9f" * 32,
                "role": "counter",
                "unit": "000.00.00.H56",
                "label": "quầy 1",
                "created_at": NOW,
                "revoked_at": None,
            },
        ),
        ("catalogue_copy", {"version": 3, "published_at": NOW, "procedures": "[]"}),
    ],
    "routing": [
        *COMMON,
        KEY_COPY,
        (
            "assignment",
            {
                "dossier_code": CODE,
                "procedure_code": "2.000635",
                "office": "000.00.13.H56",
                "field": "Hộ tịch",
                "rule": "field=Hộ tịch → 000.00.13.H56",
                "explanation": "the rule for the field Hộ tịch names the justice office",
                "rule_version": 2,
                "catalogue_version": 3,
                "receiving_unit": "000.00.00.H56",
                "channel": "counter",
                "level": "district",
                "received_at": NOW,
                "routed_at": NOW,
                "current_step": 0,
                "action_sequence": 0,
                "manual": False,
                "closed_at": None,
            },
        ),
    ],
    "sla": [
        *COMMON,
        KEY_COPY,
        (
            "tracked_dossier",
            {
                "code": CODE,
                "version": 2,
                "started_at": NOW,
                "slip_due_at": DUE,
                "limit_value": "3",
                "limit_unit": "working_days",
                "supplement_rule": "pause",
                "procedure_code": "2.000635",
                "receiving_unit": "000.00.00.H56",
                "channel": "counter",
                "office": "000.00.13.H56",
                "steps": [{"office": "000.00.13.H56", "working_minutes": 1440}],
                "phase": "running",
                "due_at": DUE,
                "due_soon_at": DUE - timedelta(hours=8),
                "finished_at": None,
                "outcome": None,
                "next_deadline": DUE - timedelta(hours=8),
                "tracked_at": NOW,
            },
        ),
        (
            "sla_ledger",
            {
                "id": 1,
                "code": CODE,
                "sequence": 1,
                "action": "received",
                "at": NOW,
                "reason": None,
                "new_due_at": None,
                "office": None,
            },
        ),
    ],
    "portal": [
        *COMMON,
        KEY_COPY,
        (
            "portal_dossier",
            {
                "code": CODE,
                "receiving_unit": "000.00.00.H56",
                "office": "000.00.13.H56",
                "facts": '{"procedure_code": "2.000635"}',
                "applicant": '{"name": "Nguyễn Văn An", "phone": "0912345678", "email": null}',
                "created": True,
                "acked_step": 1,
                "acked_status": 2,
                "attempts": 0,
                "last_error": None,
                "next_attempt_at": None,
                "failed": False,
                "synced_at": NOW,
                "lease_owner": None,
                "lease_until": None,
            },
        ),
        (
            "portal_state",
            {
                "code": CODE,
                "step": 1,
                "national_status": 2,
                "at": NOW,
                "action": None,
                "office": None,
                "reason": None,
                "due_at": DUE,
                "status": "sent",
                "created_at": NOW,
                "sent_at": NOW,
            },
        ),
    ],
    "notify": [
        *COMMON,
        KEY_COPY,
        (
            "message",
            {
                "key": f"{CODE}:received:sms",
                "dossier_code": CODE,
                "trigger": "received",
                "channel": "sms",
                "recipient": "0912345678",
                "subject": None,
                "body": f"Ho so {CODE} da duoc tiep nhan, hen tra 05/12/2026.",
                "status": "sent",
                "attempts": 1,
                "last_error": None,
                "created_at": NOW,
                "next_attempt_at": NOW,
                "claim": None,
                "claimed_at": None,
                "sent_at": NOW,
                "delivered_at": None,
                "sink": "sms_http",
                "provider_id": "msg-123",
            },
        ),
        (
            "report_day",
            {
                "dim": "unit",
                "key": "000.00.00.H56",
                "day": NOW.date(),
                "measure": "received",
                "n": 4,
            },
        ),
    ],
}


def _type_of(value: Any) -> TypeEngine[Any] | None:
    if isinstance(value, datetime):
        return AwareDateTime()
    if isinstance(value, date):
        return Date()
    if isinstance(value, bool):
        return Boolean()
    if isinstance(value, bytes):
        return LargeBinary()
    if isinstance(value, list | dict):
        return JSON()
    return None


def _stub(name: str, row: dict[str, Any]) -> Any:
    return table_stub(name, *(column(k, _type_of(v)) for k, v in row.items()))


async def insert_rows(db: Database, service: ServiceName) -> None:
    async with db.engine.begin() as conn:
        for name, row in ROWS[service]:
            await conn.execute(_stub(name, row).insert().values(row))


async def assert_rows_intact(db: Database, service: ServiceName) -> None:
    async with db.engine.connect() as conn:
        for name, row in ROWS[service]:
            stub = _stub(name, row)
            key = next(iter(row))
            found = (await conn.execute(select(stub).where(stub.c[key] == row[key]))).all()
            matching = [dict(r._mapping) for r in found if dict(r._mapping) == row]
            assert matching == [row], f"{service}.{name}: {found} != {row}"


# -- schemas -----------------------------------------------------------------------------


async def run_ddl(db: Database, sql: str) -> None:
    """Run a file of ``;``-separated DDL statements, as ``create_all`` once did."""
    code = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    statements = [s for s in code.split(";\n") if s.strip()]
    async with db.engine.begin() as conn:
        if db.schema:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{db.schema}"'))
        for statement in statements:
            await conn.exec_driver_sql(statement)


async def made_before_migrations(db: Database, service: ServiceName) -> None:
    dialect = "sqlite" if db.is_sqlite else "postgresql"
    await run_ddl(db, (SCHEMA_78546E7 / dialect / f"{service}.sql").read_text("utf-8"))


def _schema_sync(conn: Connection) -> dict[str, Any]:
    """Everything about a database's tables that their DDL decides."""
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            f"AND tbl_name != '{VERSION_TABLE}'"
        )
        return {f"{kind} {name}": " ".join((sql or "").split()) for kind, name, sql in rows}
    found = inspect(conn)
    schema: dict[str, Any] = {}
    for name in found.get_table_names():
        if name == VERSION_TABLE:
            continue
        schema[name] = {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"], c.get("default"))
                for c in found.get_columns(name)
            ],
            "primary key": found.get_pk_constraint(name),
            "unique": sorted(str(u) for u in found.get_unique_constraints(name)),
            "indexes": sorted(str(i) for i in found.get_indexes(name)),
            "foreign keys": found.get_foreign_keys(name),
        }
    return schema


async def schema_of(db: Database) -> dict[str, Any]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_schema_sync)


def _placement_sync(conn: Connection) -> dict[str, Any]:
    found = inspect(conn)
    columns = {c["name"]: c for c in found.get_columns("outbox")}
    return {
        **{
            name: (type(columns[name]["type"]).__name__, columns[name]["nullable"])
            for name in ("kafka_partition", "kafka_offset")
        },
        "outbox indexes": {i["name"]: i["column_names"] for i in found.get_indexes("outbox")},
        "inbox indexes": {i["name"]: i["column_names"] for i in found.get_indexes("inbox")},
    }


async def assert_placement_columns(db: Database) -> None:
    """What ``inbox_outbox_0002`` adds is there."""
    async with db.engine.connect() as conn:
        found = await conn.run_sync(_placement_sync)
    assert found["kafka_partition"] == ("INTEGER", True)
    assert found["kafka_offset"] == ("BIGINT", True)
    placed = ["topic", "kafka_partition", "kafka_offset"]
    assert found["outbox indexes"]["ix_outbox_placed"] == placed
    assert found["outbox indexes"]["ix_outbox_unsent"] == ["sent_at", "id"]
    assert found["inbox indexes"]["ix_inbox_applied_at"] == ["applied_at"]


@pytest.fixture(scope="session")
def model_tables(tmp_path_factory: pytest.TempPathFactory) -> dict[ServiceName, Sequence[Table]]:
    """The tables today's models give each service's runtime (what it reads and writes)."""
    from services.intake.process import build as intake  # noqa: PLC0415
    from services.notify.process import build as notify  # noqa: PLC0415
    from services.portal.process import build as portal  # noqa: PLC0415
    from services.routing.process import build as routing  # noqa: PLC0415
    from services.sla.process import build as sla  # noqa: PLC0415

    builds: dict[ServiceName, Callable[[Settings], Any]] = {
        "intake": intake,
        "routing": routing,
        "sla": sla,
        "notify": notify,
        "portal": portal,
    }
    settings = Settings(var_dir=tmp_path_factory.mktemp("models"))
    return {service: tuple(build(settings).runtime.tables) for service, build in builds.items()}


def _model_diffs_sync(conn: Connection, tables: Sequence[Table]) -> list[Any]:
    metadata = MetaData()
    for t in tables:
        t.to_metadata(metadata)
    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "include_name": lambda name, kind, _parent: (
                not (kind == "table" and name == VERSION_TABLE)
            ),
        },
    )
    return list(compare_metadata(context, metadata))


# -- (a) the baseline, with data, upgrades to head -----------------------------------------


@pytest.mark.parametrize("service", SERVICES)
async def test_baseline_with_data_upgrades_to_head_with_data_intact(
    backend: Backend, service: ServiceName
) -> None:
    async with opened(backend(), service) as db:
        at_baseline = await upgrade(db, service, to=baseline(service))
        assert at_baseline.current == baseline(service)
        assert not at_baseline.at_head
        await insert_rows(db, service)

        upgraded = await upgrade(db, service)

        assert upgraded.current == head(service)
        assert (await status(db, service)).at_head
        await assert_rows_intact(db, service)
        await assert_placement_columns(db)


# -- (b) a database made before migrations ---------------------------------------------------


@pytest.mark.parametrize("service", BEFORE_MIGRATIONS)
async def test_baseline_is_the_schema_create_all_made_at_78546e7(
    backend: Backend, service: ServiceName
) -> None:
    async with opened(backend(), service) as old, opened(backend(), service) as migrated:
        await made_before_migrations(old, service)
        await upgrade(migrated, service, to=baseline(service))
        assert await schema_of(migrated) == await schema_of(old)


@pytest.mark.parametrize("service", BEFORE_MIGRATIONS)
async def test_database_from_before_migrations_is_taken_as_baseline_and_upgraded(
    backend: Backend, service: ServiceName
) -> None:
    async with opened(backend(), service) as db:
        await made_before_migrations(db, service)
        await insert_rows(db, service)
        before = await status(db, service)
        assert before.unversioned_tables
        assert not before.current

        upgraded = await upgrade(db, service)

        assert upgraded.current == head(service)
        await assert_rows_intact(db, service)
        await assert_placement_columns(db)


async def test_database_motcua_keys_began_is_completed(
    backend: Backend, model_tables: dict[ServiceName, Sequence[Table]]
) -> None:
    """``motcua keys create`` before intake's first start makes some of intake's tables with
    today's models; intake's upgrade creates the rest and keeps the key."""
    from services.intake.keys import create_key, list_keys  # noqa: PLC0415
    from shared.auth import Role  # noqa: PLC0415

    settings = backend()
    await create_key(settings, Role.ADMIN, "*", "first")
    async with opened(settings, "intake") as db:
        await upgrade(db, "intake")
        assert (await status(db, "intake")).at_head
        async with db.engine.connect() as conn:
            diffs = await conn.run_sync(_model_diffs_sync, model_tables["intake"])
    assert diffs == []
    assert [k.label for k in await list_keys(settings)] == ["first"]


# -- (c) the models agree with head ---------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
async def test_models_agree_with_head(
    backend: Backend, service: ServiceName, model_tables: dict[ServiceName, Sequence[Table]]
) -> None:
    async with opened(backend(), service) as db:
        await upgrade(db, service)
        async with db.engine.connect() as conn:
            diffs = await conn.run_sync(_model_diffs_sync, model_tables[service])
    assert diffs == [], f"{service}: models and migrations differ: write a revision for {diffs}"


# -- (d) the command line ------------------------------------------------------------------


async def test_db_upgrade_then_current_shows_head_for_every_service(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = backend()
    monkeypatch.setenv("MOTCUA_VAR_DIR", str(settings.var_dir))
    if settings.database_url:
        monkeypatch.setenv("MOTCUA_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("MOTCUA_DB_SCHEMA_PREFIX", settings.db_schema_prefix)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        upgraded = await asyncio.to_thread(runner.invoke, motcua_app, ["db", "upgrade"])
        current = await asyncio.to_thread(runner.invoke, motcua_app, ["db", "current"])
        one = await asyncio.to_thread(runner.invoke, motcua_app, ["db", "current", "sla"])
        unknown = await asyncio.to_thread(runner.invoke, motcua_app, ["db", "upgrade", "nosuch"])
    finally:
        get_settings.cache_clear()
    assert upgraded.exit_code == 0, upgraded.output
    assert current.exit_code == 0, current.output
    lines = current.output.splitlines()
    assert len(lines) == len(SERVICES)
    for service, line in zip(SERVICES, lines, strict=True):
        assert line.split()[0] == service
        assert ", ".join(head(service)) in line
        assert line.endswith("(at head)")
    assert upgraded.output == current.output
    assert one.output.splitlines() == [lines[SERVICES.index("sla")]]
    assert unknown.exit_code == 2
    assert "unknown service 'nosuch'" in unknown.output


async def test_db_current_does_not_create_a_missing_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTCUA_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("MOTCUA_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, motcua_app, ["db", "current", "sla"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    assert result.output.startswith("sla      no database")
    assert not (tmp_path / "sla.db").exists()


# -- (e) start-up ---------------------------------------------------------------------------


async def test_start_with_upgrade_off_refuses_an_old_database(backend: Backend) -> None:
    settings = backend().model_copy(update={"db_upgrade_at_start": False})
    async with opened(settings, "sla") as db:
        await upgrade(db, "sla", to=baseline("sla"))
    runtime = ServiceRuntime("sla", settings, tables=[], publishes=[])
    try:
        with pytest.raises(DatabaseNotAtHeadError) as refused:
            await runtime.start()
    finally:
        await runtime.db.dispose()
    message = str(refused.value)
    assert message.startswith("sla: the database is at ")
    assert ", ".join(baseline("sla")) in message
    assert f"not at head ({', '.join(head('sla'))})" in message
    assert "run `motcua db upgrade sla`" in message


async def test_start_with_upgrade_off_refuses_a_database_from_before_migrations(
    backend: Backend,
) -> None:
    settings = backend()
    async with opened(settings, "notify") as db:
        await made_before_migrations(db, "notify")
        with pytest.raises(DatabaseNotAtHeadError, match="tables made before migrations"):
            await ensure_at_head(db, "notify", may_upgrade=False)
        await ensure_at_head(db, "notify", may_upgrade=True)
        await ensure_at_head(db, "notify", may_upgrade=False)  # at head: starts


# -- one upgrade at a time -------------------------------------------------------------------


async def test_an_upgrade_waits_for_one_in_progress(backend: Backend) -> None:
    """Another process upgrading holds the lock (PostgreSQL: the schema's advisory lock;
    SQLite: the file's write lock): an upgrade waits for it, then finds head."""
    settings = backend()
    async with opened(settings, "routing") as holder, opened(settings, "routing") as db:
        async with holder.engine.connect() as conn:
            if holder.is_sqlite:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _lock_key(str(holder.schema))},
                )
            waiting = asyncio.create_task(upgrade(db, "routing"))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            await conn.commit()
        assert (await asyncio.wait_for(waiting, 30)).current == head("routing")


async def test_a_database_a_newer_release_migrated_is_refused(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = backend()
    async with opened(settings, "sla") as db:
        await upgrade(db, "sla")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    f"UPDATE {VERSION_TABLE} SET version_num = 'inbox_outbox_9999' "
                    "WHERE version_num LIKE 'inbox_outbox_%'"
                )
            )
        with pytest.raises(UnknownRevisionError, match="does not know inbox_outbox_9999"):
            await upgrade(db, "sla")
        with pytest.raises(UnknownRevisionError):
            await ensure_at_head(db, "sla", may_upgrade=False)
    monkeypatch.setenv("MOTCUA_VAR_DIR", str(settings.var_dir))
    if settings.database_url:
        monkeypatch.setenv("MOTCUA_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("MOTCUA_DB_SCHEMA_PREFIX", settings.db_schema_prefix)
    get_settings.cache_clear()
    try:
        refused = await asyncio.to_thread(CliRunner().invoke, motcua_app, ["db", "upgrade", "sla"])
        shown = await asyncio.to_thread(CliRunner().invoke, motcua_app, ["db", "current", "sla"])
    finally:
        get_settings.cache_clear()
    assert refused.exit_code == 1
    assert "a newer release migrated it" in refused.output
    assert shown.output.rstrip().endswith("(unknown to this release: inbox_outbox_9999)")
