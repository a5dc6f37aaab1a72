"""Intake's tables and queries: dossiers, their history, the per-unit daily sequence,
API keys (and their announcements in the outbox) and the answers kept for idempotent
retries. Every SQL statement of intake's use cases is here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    true,
    tuple_,
    update,
)
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.auth import Role, StoredKey
from shared.clock import utc_now
from shared.db import AwareDateTime, table, upsert_insert
from shared.outbox import OutboxRow


class Dossier(SQLModel, table=True):
    """A dossier as intake holds it. Applicant columns are personal data.

    ``due_at`` is the appointment time set at reception and is never moved by an
    extension (the statistics keep it); ``extended_due_at`` is the apology's new date.
    ``action_sequence`` is the last ``dossier.action`` sequence number issued.
    """

    __tablename__ = "dossier"
    __table_args__ = (
        Index("ix_dossier_due_at_code", "due_at", "code"),
        Index("ix_dossier_received_at_code", "received_at", "code"),
    )

    code: str = Field(sa_column=Column(String(40), primary_key=True))
    procedure_code: str = Field(sa_column=Column(String(40), nullable=False))
    channel: str = Field(sa_column=Column(String(10), nullable=False))
    receiving_unit: str = Field(sa_column=Column(String(20), nullable=False, index=True))
    status: str = Field(sa_column=Column(String(30), nullable=False))
    submitted_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    received_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    extended_due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    extensions: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    action_sequence: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    last_event_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    office: str | None = Field(default=None, sa_column=Column(String(20)))
    applicant_name: str = Field(sa_column=Column(String(200), nullable=False))
    applicant_phone: str | None = Field(default=None, sa_column=Column(String(20)))
    applicant_email: str | None = Field(default=None, sa_column=Column(String(200)))
    applicant_id_number: str | None = Field(default=None, sa_column=Column(String(12)))
    documents: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class DossierHistory(SQLModel, table=True):
    """One entry of a dossier's history, in the order it was recorded (``position``)."""

    __tablename__ = "dossier_history"
    __table_args__ = (PrimaryKeyConstraint("code", "position"),)

    code: str = Field(sa_column=Column(String(40), nullable=False))
    position: int = Field(sa_column=Column(Integer, nullable=False))
    action: str = Field(sa_column=Column(String(30), nullable=False))
    sequence: int | None = Field(
        default=None,
        sa_column=Column(Integer),
        description="The dossier.action sequence; null for submit, receive and accept.",
    )
    at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    status: str = Field(sa_column=Column(String(30), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(String(1000)))
    new_due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    office: str | None = Field(default=None, sa_column=Column(String(20)))
    key_id: str | None = Field(default=None, sa_column=Column(String(20)))


class DossierSequence(SQLModel, table=True):
    """The last sequence number a unit issued on a day."""

    __tablename__ = "dossier_sequence"
    __table_args__ = (PrimaryKeyConstraint("receiving_unit", "day"),)

    receiving_unit: str = Field(sa_column=Column(String(20), nullable=False))
    day: date = Field(sa_column=Column(Date, nullable=False))
    last: int = Field(sa_column=Column(Integer, nullable=False))


class ApiKey(SQLModel, table=True):
    """An API key: only the hash of its secret is kept."""

    __tablename__ = "api_key"

    key_id: str = Field(sa_column=Column(String(20), primary_key=True))
    secret_hash: str = Field(sa_column=Column(String(64), nullable=False))
    role: str = Field(sa_column=Column(String(20), nullable=False))
    unit: str = Field(sa_column=Column(String(20), nullable=False))
    label: str = Field(default="", sa_column=Column(String(200), nullable=False))
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))

    def stored(self) -> StoredKey:
        """The form ``shared.auth`` checks."""
        return StoredKey(
            self.key_id, self.secret_hash, Role(self.role), self.unit, self.revoked_at is not None
        )


class ApiKeyPublication(SQLModel, table=True):
    """The state of a key last put in the outbox for the other services (revoked or not).

    A key without a row, or whose row disagrees with the key, is not yet announced: keys
    made before keys travelled as events are announced at start-up this way.
    """

    __tablename__ = "api_key_publication"

    key_id: str = Field(sa_column=Column(String(20), primary_key=True))
    revoked: bool = Field(sa_column=Column(Boolean, nullable=False))


class IdempotentAnswer(SQLModel, table=True):
    """The first answer to a request sent with an ``Idempotency-Key``.

    Keyed by (caller's key id, idempotency key): two callers never share answers.
    Written in the transaction of the change it answers, so an answer exists if and
    only if the change was committed.
    """

    __tablename__ = "idempotent_answer"
    __table_args__ = (PrimaryKeyConstraint("key_id", "idempotency_key"),)

    key_id: str = Field(sa_column=Column(String(20), nullable=False))
    idempotency_key: str = Field(sa_column=Column(String(200), nullable=False))
    request_hash: str = Field(sa_column=Column(String(64), nullable=False))
    status_code: int = Field(sa_column=Column(Integer, nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


class DossierHandler(SQLModel, table=True):
    """An office that handles a dossier as routing last decided (``dossier.routed``): the
    office of each chain step, step 0 being the routed office. Who may act as the office."""

    __tablename__ = "dossier_handler"
    __table_args__ = (
        PrimaryKeyConstraint("code", "step"),
        Index("ix_dossier_handler_office", "office"),
    )

    code: str = Field(sa_column=Column(String(40), nullable=False))
    step: int = Field(sa_column=Column(Integer, nullable=False))
    office: str = Field(sa_column=Column(String(20), nullable=False))


class Rating(SQLModel, table=True):
    """The citizen's satisfaction with a dossier (one per dossier: the code is the key).
    ``comment`` is the citizen's own text: it stays here, never in an event or a log."""

    __tablename__ = "rating"

    code: str = Field(sa_column=Column(String(40), primary_key=True))
    level: str = Field(sa_column=Column(String(20), nullable=False))
    comment: str | None = Field(default=None, sa_column=Column(String(500)))
    channel: str = Field(sa_column=Column(String(10), nullable=False))
    at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    key_id: str | None = Field(default=None, sa_column=Column(String(20)))


TABLES: list[Table] = [
    table(Dossier),
    table(DossierHistory),
    table(DossierSequence),
    table(ApiKey),
    table(ApiKeyPublication),
    table(IdempotentAnswer),
    table(DossierHandler),
    table(Rating),
]
_DOSSIERS, _HISTORY, _SEQUENCES = table(Dossier), table(DossierHistory), table(DossierSequence)
_OUTBOX = table(OutboxRow)
_INSERT_DOSSIER, _INSERT_HISTORY = insert(_DOSSIERS), insert(_HISTORY)
_INSERT_OUTBOX = insert(_OUTBOX)


async def handling_offices(session: AsyncSession, code: str) -> set[str]:
    """The offices that handle the dossier as routing last decided (none before then)."""
    rows = await session.exec(select(DossierHandler.office).where(DossierHandler.code == code))
    return set(rows.all())


async def replace_handlers(session: AsyncSession, offices: Mapping[str, list[str]]) -> None:
    """Record that each dossier's ``offices`` (in chain order) handle it, instead of any
    before: one delete and one multi-row insert, whatever the number of dossiers."""
    if not offices:
        return
    handlers = table(DossierHandler)
    conn = await session.connection()
    await conn.execute(delete(handlers).where(handlers.c.code.in_(list(offices))))
    await conn.execute(
        insert(handlers),
        [
            {"code": code, "step": step, "office": office}
            for code, chain in offices.items()
            for step, office in enumerate(chain)
        ],
    )


async def reserve_sequences(session: AsyncSession, unit: str, day: date, count: int) -> int:
    """Reserve the next ``count`` sequence numbers of ``unit`` on ``day`` in the caller's
    transaction, and return the last of them (the block is ``last - count + 1 … last``).

    One atomic upsert: concurrent reservations (and
    instances, on PostgreSQL) serialise on the sequence row, so no two blocks overlap.
    """
    sequences = _SEQUENCES
    upsert = (
        upsert_insert(session, sequences)
        .values(receiving_unit=unit, day=day, last=count)
        .on_conflict_do_update(
            index_elements=["receiving_unit", "day"], set_={"last": sequences.c.last + count}
        )
        .returning(sequences.c.last)
    )
    conn = await session.connection()
    return int((await conn.execute(upsert)).scalar_one())


async def increment(session: AsyncSession, sequences: Table, key: dict[str, Any]) -> int:
    """Add one to the ``last`` column of the row of ``sequences`` with primary ``key``
    (created at 1), inside the caller's transaction, and return the new value.

    One atomic upsert (``INSERT … ON CONFLICT DO UPDATE … RETURNING``): concurrent callers
    serialise on the row, so each gets a distinct number.
    """
    upsert = (
        upsert_insert(session, sequences)
        .values(**key, last=1)
        .on_conflict_do_update(index_elements=list(key), set_={"last": sequences.c.last + 1})
        .returning(sequences.c.last)
    )
    conn = await session.connection()
    return int((await conn.execute(upsert)).scalar_one())


async def get_dossier(session: AsyncSession, code: str) -> Dossier | None:
    """The dossier with this code, if any."""
    return await session.get(Dossier, code)


async def lock_dossier(session: AsyncSession, code: str) -> Dossier | None:
    """The dossier with this code, locked for the caller's transaction.

    PostgreSQL: ``FOR UPDATE`` serialises concurrent actions on one dossier, so the
    action sequence stays gap-free. SQLite ignores ``FOR UPDATE``: a no-op update first
    takes the database's write lock (waiting for it), so the read that follows cannot be
    overtaken by another writer.
    """
    await take_sqlite_write_lock(session, table(Dossier).c.code, code)
    statement = select(Dossier).where(table(Dossier).c.code == code).with_for_update()
    return (await session.exec(statement)).first()


async def take_sqlite_write_lock(session: AsyncSession, key: Column[Any], value: Any) -> None:
    """On SQLite, take the database's write lock for the caller's transaction (waiting for
    it) with a no-op update of the row where ``key == value``; elsewhere do nothing.

    SQLite ignores ``FOR UPDATE``: without this, a read that precedes a write could be
    overtaken by another writer between the two.
    """
    if session.bind is not None and session.bind.dialect.name == "sqlite":
        rows = key.table
        conn = await session.connection()
        await conn.execute(update(rows).where(key == value).values({key.name: key}))


async def history(session: AsyncSession, code: str) -> list[DossierHistory]:
    """A dossier's history, oldest first."""
    rows = table(DossierHistory)
    statement = select(DossierHistory).where(rows.c.code == code).order_by(rows.c.position)
    return list((await session.exec(statement)).all())


async def history_length(session: AsyncSession, code: str) -> int:
    """How many entries a dossier's history has."""
    rows = table(DossierHistory)
    statement = select(rows.c.position).where(rows.c.code == code).order_by(rows.c.position.desc())
    last = (await session.exec(statement)).first()
    return int(last) if last is not None else 0


async def get_key(session: AsyncSession, key_id: str) -> ApiKey | None:
    """The API key with this id, revoked or not."""
    return await session.get(ApiKey, key_id)


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    """Every API key, oldest first."""
    statement = select(ApiKey).order_by(table(ApiKey).c.created_at)
    return list((await session.exec(statement)).all())


async def purge_answers(session: AsyncSession, before: datetime) -> int:
    """Delete the idempotent answers created before ``before``; how many were."""
    result = await (await session.connection()).execute(
        delete(table(IdempotentAnswer)).where(table(IdempotentAnswer).c.created_at < before)
    )
    return int(result.rowcount)


async def unannounced_keys(session: AsyncSession) -> list[ApiKey]:
    """The keys whose current state (issued or revoked) was never put in the outbox."""
    keys, published = table(ApiKey), table(ApiKeyPublication)
    statement = (
        select(ApiKey)
        .outerjoin(published, published.c.key_id == keys.c.key_id)
        .where(
            (published.c.key_id.is_(None)) | (published.c.revoked != keys.c.revoked_at.is_not(None))
        )
        .order_by(keys.c.created_at)
    )
    return list((await session.exec(statement)).all())


async def get_answer(
    session: AsyncSession, key_id: str, idempotency_key: str
) -> IdempotentAnswer | None:
    """The answer kept for this caller and idempotency key, if any."""
    return await session.get(IdempotentAnswer, (key_id, idempotency_key))


async def add_dossier(
    session: AsyncSession,
    dossier: Dossier,
    first: DossierHistory,
    events: Sequence[dict[str, object]],
) -> None:
    """Insert a new dossier, its first history entry (position 1) and its outbox rows
    (``shared.outbox.outbox_values``, in publishing order) in the caller's transaction:
    three Core statements, no ORM unit of work. Its code is unique: the sequence in it
    comes from :func:`reserve_sequences`."""
    conn = await session.connection()
    await conn.execute(_INSERT_DOSSIER, _values(_DOSSIERS, dossier))
    await conn.execute(_INSERT_HISTORY, _values(_HISTORY, first))
    if events:
        await conn.execute(_INSERT_OUTBOX, list(events))


def _values(target: Table, row: SQLModel) -> dict[str, Any]:
    """A model object's column values, as a Core insert takes them."""
    return {column.name: getattr(row, column.name) for column in target.columns}


async def next_history_position(session: AsyncSession, code: str) -> int:
    """The position of the dossier's next history entry.

    Call it with the dossier locked (:func:`lock_dossier`) in the transaction that adds
    the entry: concurrent actions wait for the lock, so positions stay unique and gap-free.
    """
    return await history_length(session, code) + 1


async def save_action(session: AsyncSession, dossier: Dossier, entry: DossierHistory) -> None:
    """Write an action on a dossier: its new state and its history entry, in the caller's
    transaction, which holds the dossier's lock (:func:`lock_dossier`) and took ``entry``'s
    position from :func:`next_history_position`."""
    session.add(dossier)
    session.add(entry)


async def keep_answer(session: AsyncSession, answer: IdempotentAnswer) -> None:
    """Keep the answer to an idempotent request, in the transaction of the change it
    answers (so it exists if and only if the change was committed).

    Two concurrent first tries of one key both get here: the second's commit fails on the
    answer's primary key (``IntegrityError``), rolling its whole change back, and the
    caller replays the first answer.
    """
    session.add(answer)


async def add_key(session: AsyncSession, key: ApiKey) -> None:
    """Insert a new API key in the caller's transaction (which announces it too)."""
    session.add(key)


async def revoke_key(session: AsyncSession, key: ApiKey, at: datetime) -> None:
    """Mark ``key`` revoked at ``at`` in the caller's transaction (which announces it)."""
    key.revoked_at = at
    session.add(key)


async def mark_announced(session: AsyncSession, key: ApiKey) -> None:
    """Record ``key``'s current state (revoked or not) as put in the outbox, in the
    caller's transaction, the one that enqueued the announcement. An upsert: announcing a
    state again only rewrites the row."""
    publications = table(ApiKeyPublication)
    insert = upsert_insert(session, publications).values(
        key_id=key.key_id, revoked=key.revoked_at is not None
    )
    await session.exec(
        insert.on_conflict_do_update(
            index_elements=["key_id"], set_={"revoked": insert.excluded.revoked}
        )
    )


async def newest_on_topic(session: AsyncSession, topic: str) -> dict[str, bytes]:
    """The value of the newest outbox row of each key on ``topic`` (rows without a key
    left out). Rows are read in id order, so a later row of a key replaces an earlier one.
    """
    rows = await session.exec(
        select(OutboxRow.key, OutboxRow.value)
        .where(col(OutboxRow.topic) == topic)
        .order_by(col(OutboxRow.id))
    )
    return {key: value for key, value in rows.all() if key is not None}


@dataclass(frozen=True, slots=True)
class DossierFilter:
    """What a dossier list keeps: each field set narrows it (``None``: no condition).

    ``reader_unit`` is the key's unit scope (``None``: every unit, an admin or all-unit
    key): the dossiers it received or handles, as ``shared.auth``'s READ rule says.
    ``overdue`` compares the due time in force (the apology's, else the appointment) with
    ``now`` for the unfinished states ``unfinished``.
    """

    reader_unit: str | None = None
    receiving_unit: str | None = None
    office: str | None = None
    statuses: tuple[str, ...] = ()
    channel: str | None = None
    procedure_code: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    due_before: datetime | None = None
    overdue: bool | None = None
    code_prefix: str | None = None
    unfinished: frozenset[str] = frozenset()
    now: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a page starts: after the row with this sort value and code (``None``: the
    first page). ``at`` is ``None`` for a row whose sort column is null."""

    at: datetime | None
    code: str


DossierSort = Literal["due", "received"]


def _handled_by(unit: str) -> ColumnElement[bool]:
    """The dossier is handled by ``unit``: a routed office, a chain step's, a transfer's."""
    dossiers, handlers = table(Dossier), table(DossierHandler).alias("handled_by")
    return or_(
        dossiers.c.office == unit,
        exists().where(handlers.c.code == dossiers.c.code, handlers.c.office == unit),
    )


def _conditions(wanted: DossierFilter) -> list[ColumnElement[bool]]:
    c = table(Dossier).c
    found: list[ColumnElement[bool]] = []
    if wanted.reader_unit is not None:
        found.append(or_(c.receiving_unit == wanted.reader_unit, _handled_by(wanted.reader_unit)))
    if wanted.office is not None:
        found.append(_handled_by(wanted.office))
    pairs = [
        (wanted.receiving_unit, c.receiving_unit),
        (wanted.channel, c.channel),
        (wanted.procedure_code, c.procedure_code),
    ]
    found += [column == value for value, column in pairs if value is not None]
    if wanted.statuses:
        found.append(c.status.in_(wanted.statuses))
    if wanted.received_from is not None:
        found.append(c.received_at >= wanted.received_from)
    if wanted.received_to is not None:
        found.append(c.received_at < wanted.received_to)
    if wanted.due_before is not None:
        found.append(c.due_at < wanted.due_before)
    if wanted.code_prefix is not None:
        found.append(c.code.startswith(wanted.code_prefix, autoescape=True))
    if wanted.overdue is not None:
        due = func.coalesce(c.extended_due_at, c.due_at)
        late = and_(c.status.in_(wanted.unfinished), due < wanted.now)
        on_time = or_(c.status.not_in(wanted.unfinished), due.is_(None), due >= wanted.now)
        found.append(late if wanted.overdue else on_time)
    return found


def _after(sort: DossierSort, after: Keyset) -> ColumnElement[bool]:
    """The rows past ``after`` in ``sort``'s order (rows with a null sort column last)."""
    c = table(Dossier).c
    column = c.due_at if sort == "due" else c.received_at
    if after.at is None:  # in the trailing rows without a sort value: by code
        beyond = c.code > after.code if sort == "due" else c.code < after.code
        return and_(column.is_(None), beyond)
    keyed = tuple_(column, c.code)
    point = tuple_(literal(after.at, AwareDateTime()), literal(after.code, String(40)))
    return or_(keyed > point if sort == "due" else keyed < point, column.is_(None))


async def list_dossiers(
    session: AsyncSession,
    wanted: DossierFilter,
    *,
    sort: DossierSort,
    after: Keyset | None,
    limit: int,
) -> list[tuple[Dossier, str | None]]:
    """At most ``limit`` dossiers kept by ``wanted``, after ``after``, each with the office
    routing sent it to (chain step 0; ``None`` before routing decided).

    Order, total on the unique code: ``due`` by appointment time ascending then code;
    ``received`` by reception time descending then code descending; dossiers without that
    time (submitted online, not yet received) last, by code. A keyset walk (each page after
    the previous page's last row) meets every dossier present at its start exactly once,
    whatever is inserted meanwhile: neither column changes once set. Reads without locks.
    Served by ``ix_dossier_due_at_code`` and ``ix_dossier_received_at_code``.
    """
    dossiers, handlers = table(Dossier), table(DossierHandler)
    column = dossiers.c.due_at if sort == "due" else dossiers.c.received_at
    order = (
        (column.asc().nulls_last(), dossiers.c.code.asc())
        if sort == "due"
        else (column.desc().nulls_last(), dossiers.c.code.desc())
    )
    conditions = _conditions(wanted)
    if after is not None:
        conditions.append(_after(sort, after))
    statement = (
        select(Dossier, handlers.c.office)
        .outerjoin(handlers, and_(handlers.c.code == dossiers.c.code, handlers.c.step == 0))
        .where(and_(true(), *conditions))
        .order_by(*order)
        .limit(limit)
    )
    rows = await session.exec(statement)
    return [(dossier, office) for dossier, office in rows.all()]


async def get_rating(session: AsyncSession, code: str) -> Rating | None:
    """The rating of the dossier with this code, if it was rated."""
    return await session.get(Rating, code)


async def add_rating(session: AsyncSession, rating: Rating) -> None:
    """Insert a rating in the caller's transaction; the primary key refuses a second one
    for the same dossier (``IntegrityError`` at flush) even if two race past the read."""
    session.add(rating)
    await session.flush()
