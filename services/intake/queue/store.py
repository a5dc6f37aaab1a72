"""The queue's tables and queries: counters, tickets and the per-group daily sequence.

Tickets hold no personal data: a number, a class, a field or procedure and times.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from importlib import resources
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    and_,
    func,
    or_,
)
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake.queue.domain import CounterConfig, CounterState, TicketState
from services.intake.store import increment, take_sqlite_write_lock
from shared.db import AwareDateTime, table, upsert_insert


class QueueCounter(SQLModel, table=True):
    """A counter (quầy): its unit, its group's queue, what it serves, and its pause.

    ``paused_reason`` is set exactly when the counter is paused.
    """

    __tablename__ = "queue_counter"

    counter_id: str = Field(sa_column=Column(String(40), primary_key=True))
    unit: str = Field(sa_column=Column(String(20), nullable=False, index=True))
    group: str = Field(sa_column=Column("counter_group", String(3), nullable=False))
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    procedures: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    paused_reason: str | None = Field(default=None, sa_column=Column(String(300)))
    paused_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))

    @property
    def state(self) -> CounterState:
        """Open, or paused with ``paused_reason``."""
        return CounterState.OPEN if self.paused_reason is None else CounterState.PAUSED

    def config(self) -> CounterConfig:
        """The form the pure rules take."""
        return CounterConfig(
            self.counter_id,
            self.unit,
            self.group,
            frozenset(self.fields),
            frozenset(self.procedures),
        )


class Ticket(SQLModel, table=True):
    """A queue ticket (số thứ tự) and the times of its way through the counter.

    ``number`` is unique per (unit, group, day); ``counter_id`` is set from the call on;
    ``dossier_code`` links the dossier received from it, so waiting, service and
    processing time read as one record.
    """

    __tablename__ = "queue_ticket"

    ticket_id: str = Field(sa_column=Column(String(32), primary_key=True))
    unit: str = Field(sa_column=Column(String(20), nullable=False))
    group: str = Field(sa_column=Column("counter_group", String(3), nullable=False))
    day: date = Field(sa_column=Column(Date, nullable=False))
    sequence: int = Field(sa_column=Column(Integer, nullable=False))
    number: str = Field(sa_column=Column(String(20), nullable=False))
    priority: str = Field(sa_column=Column(String(10), nullable=False))
    rank: int = Field(sa_column=Column(Integer, nullable=False))
    field: str = Field(sa_column=Column(String(200), nullable=False))
    procedure_code: str | None = Field(default=None, sa_column=Column(String(40)))
    state: str = Field(sa_column=Column(String(10), nullable=False))
    counter_id: str | None = Field(default=None, sa_column=Column(String(40), index=True))
    cancel_reason: str | None = Field(default=None, sa_column=Column(String(30)))
    issued_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    called_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    served_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    finished_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    dossier_code: str | None = Field(default=None, sa_column=Column(String(40), unique=True))


class TicketSequence(SQLModel, table=True):
    """The last ticket sequence a unit's counter group issued on a day."""

    __tablename__ = "queue_ticket_sequence"
    __table_args__ = (PrimaryKeyConstraint("unit", "counter_group", "day"),)

    unit: str = Field(sa_column=Column(String(20), nullable=False))
    counter_group: str = Field(sa_column=Column(String(3), nullable=False))
    day: date = Field(sa_column=Column(Date, nullable=False))
    last: int = Field(sa_column=Column(Integer, nullable=False))


TABLES: list[Table] = [table(QueueCounter), table(Ticket), table(TicketSequence)]


def seed_counters() -> list[QueueCounter]:
    """The counters shipped in ``counters.json`` (admins edit them with ``PUT``)."""
    text = resources.files(__package__).joinpath("counters.json").read_text("utf-8")
    raw: list[dict[str, Any]] = json.loads(text)["counters"]
    return [QueueCounter.model_validate(c) for c in raw]


async def add_missing_counters(session: AsyncSession, counters: list[QueueCounter]) -> None:
    """Insert the counters whose id is not stored yet; stored ones (edited) are kept."""
    rows = table(QueueCounter)
    conn = await session.connection()
    for counter in counters:
        values = {
            "counter_id": counter.counter_id,
            "unit": counter.unit,
            "counter_group": counter.group,
            "fields": counter.fields,
            "procedures": counter.procedures,
        }
        await conn.execute(upsert_insert(session, rows).values(values).on_conflict_do_nothing())


async def next_ticket_sequence(session: AsyncSession, unit: str, group: str, day: date) -> int:
    """Take the next sequence of ``unit``'s ``group`` on ``day`` in the caller's transaction
    (one atomic upsert: no two tickets of a group and day share a number)."""
    return await increment(
        session, table(TicketSequence), {"unit": unit, "counter_group": group, "day": day}
    )


async def counters_of(session: AsyncSession, unit: str | None) -> list[QueueCounter]:
    """The counters of ``unit`` (every unit's with ``None``), by id."""
    rows = table(QueueCounter)
    statement = select(QueueCounter).order_by(rows.c.counter_id)
    if unit is not None:
        statement = statement.where(rows.c.unit == unit)
    return list((await session.exec(statement)).all())


async def get_counter(session: AsyncSession, counter_id: str) -> QueueCounter | None:
    """The counter with this id, if any."""
    return await session.get(QueueCounter, counter_id)


async def lock_counter(session: AsyncSession, counter_id: str) -> QueueCounter | None:
    """The counter, locked for the caller's transaction: actions of one counter serialise
    (and, on SQLite, every writer waits for the database's write lock)."""
    rows = table(QueueCounter)
    await take_sqlite_write_lock(session, rows.c.counter_id, counter_id)
    statement = select(QueueCounter).where(rows.c.counter_id == counter_id).with_for_update()
    return (await session.exec(statement)).first()


async def ticket_in_hand(session: AsyncSession, counter_id: str) -> Ticket | None:
    """The ticket a counter has called or is serving, if any (at most one)."""
    rows = table(Ticket)
    in_hand = [TicketState.CALLED.value, TicketState.SERVING.value]
    statement = select(Ticket).where(rows.c.counter_id == counter_id, rows.c.state.in_(in_hand))
    return (await session.exec(statement)).first()


async def take_next_waiting(
    session: AsyncSession, unit: str, group: str, day: date
) -> Ticket | None:
    """The next waiting ticket of a group's queue on ``day``: lowest priority rank first,
    then lowest sequence (first issued). On PostgreSQL the row is locked and rows other
    counters hold are skipped, so two counters never take one ticket; on SQLite the
    caller holds the write lock already (``lock_counter``)."""
    rows = table(Ticket)
    statement = (
        select(Ticket)
        .where(
            rows.c.unit == unit,
            rows.c.counter_group == group,
            rows.c.day == day,
            rows.c.state == TicketState.WAITING.value,
        )
        .order_by(rows.c.rank, rows.c.sequence)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return (await session.exec(statement)).first()


async def get_ticket(session: AsyncSession, ticket_id: str) -> Ticket | None:
    """The ticket with this id, if any."""
    return await session.get(Ticket, ticket_id)


async def lock_ticket(session: AsyncSession, ticket_id: str) -> Ticket | None:
    """The ticket, locked for the caller's transaction."""
    rows = table(Ticket)
    await take_sqlite_write_lock(session, rows.c.ticket_id, ticket_id)
    statement = select(Ticket).where(rows.c.ticket_id == ticket_id).with_for_update()
    return (await session.exec(statement)).first()


async def count_waiting_ahead(session: AsyncSession, ticket: Ticket) -> int:
    """How many waiting tickets of ``ticket``'s queue (unit, group, day) are called before
    it, in ``take_next_waiting``'s order: a lower priority rank, or the same rank and a
    lower sequence. A priority ticket so counts only the classes served before it."""
    rows = table(Ticket)
    statement = select(func.count()).where(
        rows.c.unit == ticket.unit,
        rows.c.counter_group == ticket.group,
        rows.c.day == ticket.day,
        rows.c.state == TicketState.WAITING.value,
        or_(
            rows.c.rank < ticket.rank,
            and_(rows.c.rank == ticket.rank, rows.c.sequence < ticket.sequence),
        ),
    )
    return int((await session.exec(statement)).one())
