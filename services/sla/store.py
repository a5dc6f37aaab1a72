"""SLA's tables and queries: each dossier's terms, its ledger, the flags already emitted
(and, for a rebuild, the service's outbox and inbox). Every SQL statement of the
tracker is here.

- ``tracked_dossier``: one row per dossier; its terms as received, and a summary of the
  fold of its ledger (``due_at``, ``phase``, ``outcome``, ``next_deadline``...) kept
  for queries. The summary is always recomputed from terms and ledger in the same
  transaction that changes them; ``version`` increases with every such change, so a
  scheduler that read an older version does not overwrite the newer summary.
  ``due_times`` holds the due times last published, in the transaction of their outbox
  row.
- ``sla_ledger``: the recorded actions, unique per (dossier, ``sequence``): a late or
  repeated action is stored once and folded in sequence order.
- ``sla_flag``: a warning or the final class emitted, unique per (dossier, kind, step),
  written in the same transaction as its outbox row: each is emitted once, whatever
  the number of tracker instances.

The SQLModel classes define the schema; the tracker reads and writes plain rows
(``ClockRow``, ``LedgerEntry``) with Core statements, one per batch and table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Column,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    case,
    delete,
    func,
    update,
)
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import AwareDateTime, Database, table, upsert_insert
from shared.events import Envelope
from shared.inbox import InboxRow
from shared.keys_sync import TABLES as KEY_TABLES
from shared.outbox import OutboxRow


class DossierClock(SQLModel, table=True):
    """A dossier the tracker holds. Received and routed events may come in either order."""

    __tablename__ = "tracked_dossier"
    __table_args__ = (Index("ix_tracked_dossier_next_deadline", "next_deadline"),)

    code: str = Field(sa_column=Column(String(40), primary_key=True))
    version: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    # Terms, as received (null until dossier.received arrives).
    started_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    slip_due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    limit_value: str | None = Field(default=None, sa_column=Column(String(20)))
    limit_unit: str | None = Field(default=None, sa_column=Column(String(20)))
    supplement_rule: str | None = Field(default=None, sa_column=Column(String(10)))
    procedure_code: str | None = Field(default=None, sa_column=Column(String(40)))
    receiving_unit: str | None = Field(default=None, sa_column=Column(String(20)))
    channel: str | None = Field(default=None, sa_column=Column(String(10)))
    # From routing: the responsible office and the chain [[office, hours], ...].
    office: str | None = Field(default=None, sa_column=Column(String(20), index=True))
    steps: list[list[str]] | None = Field(default=None, sa_column=Column(JSON))
    # Summary of the fold, for queries and the scheduler.
    phase: str = Field(default="waiting", sa_column=Column(String(12), nullable=False))
    due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    due_soon_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    finished_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    outcome: str | None = Field(default=None, sa_column=Column(String(10)))
    next_deadline: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    tracked_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    due_times: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    """The due times last published (``sla.due_times``, as JSON): a refold publishes
    them again only when they differ. Null: none published yet."""


class LedgerRow(SQLModel, table=True):
    """One recorded action of a dossier (the reception is sequence 0)."""

    __tablename__ = "sla_ledger"
    __table_args__ = (UniqueConstraint("code", "sequence", name="uq_sla_ledger_sequence"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    code: str = Field(sa_column=Column(String(40), nullable=False, index=True))
    sequence: int = Field(sa_column=Column(Integer, nullable=False))
    action: str = Field(sa_column=Column(String(30), nullable=False))
    at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    new_due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    office: str | None = Field(default=None, sa_column=Column(String(20)))


class FlagRow(SQLModel, table=True):
    """A warning (due_soon, apology_needed, overdue) or the final class (finished), once."""

    __tablename__ = "sla_flag"

    code: str = Field(sa_column=Column(String(40), primary_key=True))
    kind: str = Field(sa_column=Column(String(20), primary_key=True))
    step: int = Field(sa_column=Column(Integer, primary_key=True))
    emitted_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


CLOCKS = table(DossierClock)
LEDGER = table(LedgerRow)
FLAGS = table(FlagRow)
TABLES = [CLOCKS, LEDGER, FLAGS]
OUTBOX = table(OutboxRow)
INBOX = table(InboxRow)
RUNTIME_TABLES = [*TABLES, *KEY_TABLES]
"""The tables the service's runtime gets besides its inbox and outbox (the keys' copy)."""
REBUILT_TABLES = [INBOX, OUTBOX, *RUNTIME_TABLES]
"""Every table of the sla database: what a rebuild drops and makes again."""
_DELETE_CHUNK = 10_000


Emitted = defaultdict[str, set[tuple[str, int]]]
"""Per dossier, the (kind, step) flags already emitted."""

CLOCK_FIELDS = tuple(c.name for c in CLOCKS.columns)
_BIND_MEMO_SIZE = 1 << 17


class _MemoDateTime(AwareDateTime):
    """``AwareDateTime`` whose bind value is computed once per instant (its bind value is
    the instant in UTC, so it depends on the instant alone): the clocks a batch writes
    share their due times and deadlines (a rebuild's many dossiers received in the same
    minute). The memo holds at most ``_BIND_MEMO_SIZE`` instants, then starts again."""

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        process = super().bind_processor(dialect)
        if process is None:
            return None
        memo: dict[datetime, Any] = {}

        def bound(value: datetime | None) -> Any:
            if value is None:
                return process(value)
            found = memo.get(value, memo)
            if found is memo:
                if len(memo) >= _BIND_MEMO_SIZE:
                    memo.clear()
                found = memo[value] = process(value)
            return found

        return bound


class _MemoJSON(JSON):
    """``JSON`` whose bind value of ``None`` (JSON ``null``) is computed once."""

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        process = super().bind_processor(dialect)  # type: ignore[no-untyped-call]
        if process is None:
            return None
        null = process(None)
        return lambda value: null if value is None else process(value)


def _writing(source: Table) -> Table:
    """``source`` for writes: the same columns, its datetimes and JSON bound through the
    memos above (one type object per kind, so one memo for all its columns)."""
    when, json = _MemoDateTime(), _MemoJSON()

    def kind(column: Column[Any]) -> Any:
        if isinstance(column.type, AwareDateTime):
            return when
        return json if isinstance(column.type, JSON) else column.type

    return Table(
        source.name,
        MetaData(),
        *(Column(c.name, kind(c), primary_key=c.primary_key) for c in source.columns),
        schema=source.schema,
    )


_CLOCKS_WRITE = _writing(CLOCKS)
"""``tracked_dossier`` as ``save_clocks`` writes it; the schema is ``CLOCKS``'s."""
_SET_ON_CHANGE = tuple(f for f in CLOCK_FIELDS if f not in ("code", "tracked_at"))


@dataclass(slots=True)
class ClockRow:
    """A ``tracked_dossier`` row as plain data (the hot path builds no ORM objects); the
    fields are the table's columns, see ``DossierClock``."""

    code: str
    tracked_at: datetime
    version: int = 0
    started_at: datetime | None = None
    slip_due_at: datetime | None = None
    limit_value: str | None = None
    limit_unit: str | None = None
    supplement_rule: str | None = None
    procedure_code: str | None = None
    receiving_unit: str | None = None
    channel: str | None = None
    office: str | None = None
    steps: list[list[str]] | None = None
    phase: str = "waiting"
    due_at: datetime | None = None
    due_soon_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = None
    next_deadline: datetime | None = None
    due_times: dict[str, Any] | None = None


class LedgerEntry(NamedTuple):
    """A ``sla_ledger`` row as plain data: one recorded action of a dossier."""

    code: str
    sequence: int
    action: str
    at: datetime
    reason: str | None
    new_due_at: datetime | None
    office: str | None


_LEDGER_COLUMNS = [LEDGER.c[f] for f in LedgerEntry._fields]


async def load(
    session: AsyncSession, codes: Collection[str]
) -> tuple[dict[str, ClockRow], defaultdict[str, list[LedgerEntry]], Emitted]:
    """Clocks, ledgers and emitted flags of ``codes``: three queries, whatever their number."""
    return (
        await load_clocks(session, codes),
        await load_ledgers(session, codes),
        await emitted_flags(session, codes),
    )


async def load_clocks(session: AsyncSession, codes: Collection[str]) -> dict[str, ClockRow]:
    """The clock rows of ``codes`` (one query)."""
    conn = await session.connection()
    rows = await conn.execute(CLOCKS.select().where(CLOCKS.c.code.in_(codes)))
    return {row.code: ClockRow(**row._mapping) for row in rows}


async def load_ledgers(
    session: AsyncSession, codes: Collection[str]
) -> defaultdict[str, list[LedgerEntry]]:
    """The recorded actions of ``codes`` (one query)."""
    ledgers: defaultdict[str, list[LedgerEntry]] = defaultdict(list)
    conn = await session.connection()
    for row in await conn.execute(select(*_LEDGER_COLUMNS).where(LEDGER.c.code.in_(codes))):
        entry = LedgerEntry(*row)
        ledgers[entry.code].append(entry)
    return ledgers


async def save_clocks(session: AsyncSession, rows: Sequence[ClockRow]) -> None:
    """Insert or update ``rows`` (one statement, executed for many rows): each was refolded,
    with its ``version`` bumped, in the transaction that changed its terms or ledger.
    ``tracked_at`` is kept from the first insert."""
    if not rows:
        return
    statement = upsert_insert(session, _CLOCKS_WRITE)
    statement = statement.on_conflict_do_update(
        index_elements=[_CLOCKS_WRITE.c.code],
        set_={f: statement.excluded[f] for f in _SET_ON_CHANGE},
    )
    conn = await session.connection()
    await conn.execute(statement, [{f: getattr(r, f) for f in CLOCK_FIELDS} for r in rows])


async def insert_clocks(session: AsyncSession, rows: Sequence[ClockRow]) -> None:
    """Insert ``rows`` (one statement, executed for many rows): clocks not in the table,
    with no other writer (a rebuild's): a plain ``INSERT``, cheaper than ``save_clocks``'
    upsert, that fails rather than overwrite."""
    if rows:
        conn = await session.connection()
        await conn.execute(
            _CLOCKS_WRITE.insert(), [{f: getattr(r, f) for f in CLOCK_FIELDS} for r in rows]
        )


async def add_ledger_entries(session: AsyncSession, entries: Sequence[LedgerEntry]) -> None:
    """Record actions in the caller's transaction (one statement). The caller skipped a
    ``sequence`` already in the ledger; (code, sequence) is unique, and an entry already
    there is left alone (a late or repeated action is kept once)."""
    if not entries:
        return
    statement = upsert_insert(session, LEDGER).on_conflict_do_nothing()
    conn = await session.connection()
    await conn.execute(statement, [e._asdict() for e in entries])


async def emitted_flags(session: AsyncSession, codes: Collection[str]) -> Emitted:
    """The flags already emitted for ``codes``."""
    emitted: Emitted = defaultdict(set)
    conn = await session.connection()
    rows = await conn.execute(
        select(FLAGS.c.code, FLAGS.c.kind, FLAGS.c.step).where(FLAGS.c.code.in_(codes))
    )
    for code, kind, step in rows:
        emitted[code].add((kind, step))
    return emitted


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool
) -> list[ClockRow]:
    """Up to ``limit`` clocks whose next deadline has come, earliest first, by the index.

    With ``skip_locked`` (PostgreSQL) the rows are locked until the transaction ends and
    rows another instance holds are skipped; SQLite has one writer at a time anyway.
    """
    query = (
        CLOCKS.select()
        .where(CLOCKS.c.next_deadline <= now)
        .order_by(CLOCKS.c.next_deadline)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    conn = await session.connection()
    return [ClockRow(**row._mapping) for row in await conn.execute(query)]


async def insert_flags(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> set[tuple[str, str, int]]:
    """Insert flags not yet present; return the (code, kind, step) this call inserted.

    A flag another instance inserted first is left alone (ON CONFLICT DO NOTHING), so the
    caller writes an outbox row only for what it returns: each flag is emitted once.
    """
    if not rows:
        return set()
    statement = (
        upsert_insert(session, FLAGS)
        .values(list(rows))
        .on_conflict_do_nothing()
        .returning(FLAGS.c.code, FLAGS.c.kind, FLAGS.c.step)
    )
    conn = await session.connection()
    return {(code, kind, step) for code, kind, step in await conn.execute(statement)}


class Deadlines(NamedTuple):
    """A clock's instants as the scheduler refolded them, for the row of ``version``."""

    code: str
    version: int
    next_deadline: datetime | None
    due_at: datetime | None
    due_soon_at: datetime | None
    due_times: dict[str, Any] | None


async def set_deadlines(session: AsyncSession, updates: Sequence[Deadlines]) -> None:
    """Set ``next_deadline``, ``due_at``, ``due_soon_at`` and ``due_times`` of each (code,
    version) (the due times move only after a calendar change); a newer version is left
    alone."""
    if not updates:
        return
    statement = (
        update(CLOCKS)
        .where(and_(CLOCKS.c.code == bindparam("b_code"), CLOCKS.c.version == bindparam("b_v")))
        .values(
            next_deadline=bindparam("b_next"),
            due_at=bindparam("b_due"),
            due_soon_at=bindparam("b_soon"),
            due_times=bindparam("b_times"),
        )
    )
    conn = await session.connection()
    await conn.execute(
        statement,
        [
            {
                "b_code": u.code,
                "b_v": u.version,
                "b_next": u.next_deadline,
                "b_due": u.due_at,
                "b_soon": u.due_soon_at,
                "b_times": u.due_times,
            }
            for u in updates
        ],
    )


async def versions_of(session: AsyncSession, codes: Collection[str]) -> dict[str, int]:
    """The ``version`` of each clock of ``codes`` (one query)."""
    conn = await session.connection()
    rows = await conn.execute(
        select(CLOCKS.c.code, CLOCKS.c.version).where(CLOCKS.c.code.in_(codes))
    )
    return {code: int(version) for code, version in rows}


async def recheck_deadlines(session: AsyncSession, now: datetime) -> int:
    """Bring every later ``next_deadline`` forward to ``now`` (after a calendar change), so
    the scheduler refolds those clocks at once; how many were moved."""
    result = await (await session.connection()).execute(
        update(CLOCKS).where(CLOCKS.c.next_deadline > now).values(next_deadline=now)
    )
    return int(result.rowcount)


async def earliest_deadline(session: AsyncSession) -> datetime | None:
    """The next deadline of all clocks (one index lookup)."""
    earliest: datetime | None = await session.scalar(select(func.min(CLOCKS.c.next_deadline)))
    return earliest


async def open_by_state(session: AsyncSession, now: datetime) -> list[tuple[str, str, int]]:
    """(state, office, count) of the dossiers not closed, for the gauges."""
    state = case(
        (CLOCKS.c.phase == "paused", "paused"),
        (CLOCKS.c.due_at < now, "overdue"),
        (CLOCKS.c.due_soon_at <= now, "due_soon"),
        else_="in_time",
    )
    # one object, so one bound parameter: PostgreSQL sees the SELECT's in the GROUP BY
    office = func.coalesce(CLOCKS.c.office, "")
    conn = await session.connection()
    rows = await conn.execute(
        select(state, office, func.count())
        .where(CLOCKS.c.phase.in_(["running", "paused"]))
        .group_by(state, office)
    )
    return [(s, o, int(n)) for s, o, n in rows]


async def count_clocks(session: AsyncSession) -> int:
    """How many dossiers the tracker holds."""
    conn = await session.connection()
    return int((await conn.execute(select(func.count()).select_from(CLOCKS))).scalar_one())


async def drop_tables(db: Database, tables: Sequence[Table]) -> None:
    """Drop ``tables`` (a rebuild makes them again). Only with the sla service stopped."""
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: SQLModel.metadata.drop_all(sync, tables=list(tables)))


async def mark_applied(session: AsyncSession, events: Iterable[Envelope], at: datetime) -> None:
    """Record ``events`` in the inbox as applied, in the transaction that applied them, so
    the consumer does not apply them again (one statement)."""
    values = [{"event_id": str(e.event_id), "event_type": e.type, "applied_at": at} for e in events]
    if values:
        await (await session.connection()).execute(INBOX.insert(), values)


async def add_outbox_rows(session: AsyncSession, values: Sequence[Mapping[str, object]]) -> None:
    """Add outbox rows (``shared.outbox.outbox_values``) in the caller's transaction, in
    the order given (one statement): the relay publishes them in that order."""
    if values:
        await (await session.connection()).execute(OUTBOX.insert(), list(values))


class Written(NamedTuple):
    """An outbox row as written: its id, key (the dossier's code) and encoded event."""

    id: int
    key: str | None
    value: bytes


async def add_outbox_rows_returning(
    session: AsyncSession, values: Sequence[Mapping[str, Any]]
) -> list[Written]:
    """``add_outbox_rows``, answering the rows written, in id order (one statement with
    ``RETURNING``): the rebuild sieves what it wrote by id, whoever else writes the outbox
    meanwhile (another rebuild worker). The rows come back in any order (asking the
    database for the parameters' order cost 15 times the insert on SQLite) and are
    sorted by id: a later statement's rows have higher ids (SQLite's rowids,
    PostgreSQL's sequence), which is the order the sieve needs; within one statement a
    dossier has at most one row of each type."""
    if not values:
        return []
    statement = OUTBOX.insert().returning(OUTBOX.c.id, OUTBOX.c.key, OUTBOX.c.value)
    result = await (await session.connection()).execute(statement, list(values))
    return sorted(Written(*row) for row in result.all())


async def delete_outbox_rows(session: AsyncSession, ids: Sequence[int]) -> None:
    """Delete the outbox rows with these ids, in the caller's transaction, in chunks of
    ``_DELETE_CHUNK`` (an ``IN`` list the databases accept)."""
    conn = await session.connection()
    for start in range(0, len(ids), _DELETE_CHUNK):
        chunk = ids[start : start + _DELETE_CHUNK]
        await conn.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(chunk)))
