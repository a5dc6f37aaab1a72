"""The portal sync's tables: a ledger row per dossier and the dossier's states in order.

Invariants:
- ``portal_dossier`` holds what the record is built from (``facts``, ``applicant``,
  ``office``) and where the sync stands: the last acknowledged step and national status,
  whether the portal has the dossier (``created``), attempts, the last error (an HTTP
  status and error code, never personal data), when it may be tried next, whether it is
  in the failed list, and which sender instance holds it until when (a lease);
- ``portal_state`` has one row per (dossier, step), written once (a redelivered event
  changes nothing); a state is ``pending`` until it is ``sent`` (acknowledged) or
  ``skipped`` (at or below a step already acknowledged);
- a dossier is due when it has a pending state, its reception facts and its applicant,
  is not failed, its next attempt is due and no live lease holds it.

The SQLModel classes define the schema and serve the cold paths (the sender, the
operator's view); the consumer's hot path reads and writes plain rows (``LedgerRow``,
``StateRow``) with Core statements, one per batch and table (``load_ledger``,
``save_ledger``, ``add_states``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    Index,
    Integer,
    String,
    Subquery,
    Table,
    Text,
    and_,
    case,
    func,
    or_,
    update,
)
from sqlalchemy import select as core_select
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import AwareDateTime, table, upsert_insert

PENDING = "pending"
SENT = "sent"
SKIPPED = "skipped"


class PortalDossier(SQLModel, table=True):
    """A dossier's ledger: what its record is made of and where its sync stands."""

    __tablename__ = "portal_dossier"

    code: str = Field(sa_column=Column(String(40), primary_key=True))
    receiving_unit: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    office: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    """The office routing named (it may come before the lifecycle facts)."""
    facts: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """JSON of ``domain.Facts`` but the code; null until the dossier's first lifecycle event."""
    applicant: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    """JSON of ``domain.Applicant`` (personal data); null until the contact came."""
    created: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    acked_step: int = Field(default=-1, sa_column=Column(Integer, nullable=False))
    acked_status: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    next_attempt_at: datetime | None = Field(
        default=None, sa_column=Column(AwareDateTime, nullable=True)
    )
    failed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    synced_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime, nullable=True))
    lease_owner: str | None = Field(default=None, sa_column=Column(String(36), nullable=True))
    lease_until: datetime | None = Field(
        default=None, sa_column=Column(AwareDateTime, nullable=True)
    )


class PortalState(SQLModel, table=True):
    """One state of a dossier to send, numbered by ``step`` (``domain``)."""

    __tablename__ = "portal_state"
    __table_args__ = (Index("ix_portal_state_pending", "status", "created_at"),)

    code: str = Field(sa_column=Column(String(40), primary_key=True))
    step: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    national_status: int = Field(sa_column=Column(Integer, nullable=False))
    at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    action: str | None = Field(default=None, sa_column=Column(String(30), nullable=True))
    office: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    due_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime, nullable=True))
    status: str = Field(default=PENDING, sa_column=Column(String(10), nullable=False))
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime, nullable=True))


_DOSSIER = table(PortalDossier)
_STATE = table(PortalState)
TABLES: list[Table] = [_DOSSIER, _STATE]


@dataclass(slots=True)
class LedgerRow:
    """The columns of a ``portal_dossier`` row the events fill, as plain data (the
    consumer builds no ORM objects); the sender's columns are not here."""

    code: str
    receiving_unit: str | None = None
    office: str | None = None
    facts: str | None = None
    applicant: str | None = None


LEDGER_FIELDS = ("receiving_unit", "office", "facts", "applicant")
"""The columns the events fill (``LedgerRow`` but the code)."""
_NEW_DOSSIER: dict[str, Any] = {
    c.name: PortalDossier.model_fields[c.name].default
    for c in _DOSSIER.columns
    if c.name != "code" and c.name not in LEDGER_FIELDS
}
"""A new row's sender columns: the model's defaults (not the columns': ``sa_column``)."""


class StateRow(NamedTuple):
    """A ``portal_state`` row as the events make it (pending, not sent)."""

    code: str
    step: int
    national_status: int
    at: datetime
    action: str | None = None
    office: str | None = None
    reason: str | None = None
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class _Statements:
    """The consumer's writes in one dialect, built once (building an ``ON CONFLICT``
    statement, its ``excluded`` columns above all, costs more than running it)."""

    save_ledger: Any
    add_states: Any


_BY_DIALECT: dict[str, _Statements] = {}


def _statements(session: AsyncSession) -> _Statements:
    dialect = session.bind.dialect.name if session.bind is not None else ""
    found = _BY_DIALECT.get(dialect)
    if found is None:
        upsert = upsert_insert(session, _DOSSIER)
        upsert = upsert.on_conflict_do_update(
            index_elements=[_DOSSIER.c.code],
            set_={f: func.coalesce(upsert.excluded[f], _DOSSIER.c[f]) for f in LEDGER_FIELDS},
        )
        states = upsert_insert(session, _STATE).on_conflict_do_nothing()
        found = _BY_DIALECT[dialect] = _Statements(upsert, states)
    return found


async def load_ledger(session: AsyncSession, codes: Collection[str]) -> dict[str, LedgerRow]:
    """The ledger rows of ``codes`` that exist (one query, whatever their number)."""
    if not codes:
        return {}
    columns = [_DOSSIER.c.code, *(_DOSSIER.c[f] for f in LEDGER_FIELDS)]
    conn = await session.connection()
    rows = await conn.execute(core_select(*columns).where(_DOSSIER.c.code.in_(codes)))
    return {row[0]: LedgerRow(*row) for row in rows}


async def save_ledger(session: AsyncSession, rows: Sequence[LedgerRow]) -> None:
    """Insert or update ledger rows (one statement, executed for many rows).

    A field left ``None`` is not changed (the events never clear one): a row another
    transaction wrote meanwhile (the contact and the lifecycle come on topics of their
    own) keeps what it wrote there. A new row starts with the sender's columns at their
    defaults; an existing row's sender columns are never touched. The rows are written
    in code order, so two writers lock them in one order.
    """
    if not rows:
        return
    statement = _statements(session).save_ledger
    values = [
        {
            "code": row.code,
            "receiving_unit": row.receiving_unit,
            "office": row.office,
            "facts": row.facts,
            "applicant": row.applicant,
            **_NEW_DOSSIER,
        }
        for row in sorted(rows, key=lambda r: r.code)
    ]
    await (await session.connection()).execute(statement, values)


async def add_states(
    session: AsyncSession, states: Sequence[StateRow], created_at: datetime
) -> None:
    """Record states, pending since ``created_at``, each once: a (dossier, step) already
    there is left as it is (one statement, executed for many rows)."""
    if not states:
        return
    statement = _statements(session).add_states
    values = [
        {**state._asdict(), "status": PENDING, "created_at": created_at, "sent_at": None}
        for state in states
    ]
    await (await session.connection()).execute(statement, values)


async def dossier(session: AsyncSession, code: str) -> PortalDossier | None:
    """A dossier's ledger row (in the session: changes to it are saved on commit)."""
    return await session.get(PortalDossier, code)


def _pending() -> Subquery:
    """Per dossier with a pending state, the oldest one's ``created_at`` (``oldest``): one
    pass over the pending states, to join (a subquery correlated per dossier would search
    the pending index once per dossier: quadratic)."""
    return (
        core_select(_STATE.c.code, func.min(_STATE.c.created_at).label("oldest"))
        .where(_STATE.c.status == PENDING)
        .group_by(_STATE.c.code)
        .subquery("pending")
    )


async def due_codes(
    session: AsyncSession, now: datetime, limit: int, *, skip: Sequence[str] = ()
) -> list[str]:
    """Up to ``limit`` due dossiers (see the module's invariants), oldest pending state
    first, none of ``skip``."""
    pending = _pending()
    statement = (
        core_select(_DOSSIER.c.code)
        .select_from(_DOSSIER.join(pending, pending.c.code == _DOSSIER.c.code))
        .where(
            _DOSSIER.c.failed.is_(False),
            _DOSSIER.c.facts.is_not(None),
            _DOSSIER.c.applicant.is_not(None),
            or_(_DOSSIER.c.next_attempt_at.is_(None), _DOSSIER.c.next_attempt_at <= now),
            or_(_DOSSIER.c.lease_until.is_(None), _DOSSIER.c.lease_until < now),
            _DOSSIER.c.code.not_in(skip),
        )
        .order_by(pending.c.oldest, _DOSSIER.c.code)
        .limit(limit)
    )
    rows = await (await session.connection()).execute(statement)
    return [str(code) for (code,) in rows]


async def claim(
    session: AsyncSession, code: str, owner: str, now: datetime, until: datetime
) -> bool:
    """Take the dossier for ``owner`` until ``until`` unless a live lease holds it (one
    conditional ``UPDATE``: of two instances, one wins)."""
    result = await (await session.connection()).execute(
        update(_DOSSIER)
        .where(
            _DOSSIER.c.code == code,
            or_(_DOSSIER.c.lease_until.is_(None), _DOSSIER.c.lease_until < now),
        )
        .values(lease_owner=owner, lease_until=until)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


async def release(session: AsyncSession, code: str, owner: str) -> None:
    """Give the dossier back, if ``owner`` still holds it."""
    await (await session.connection()).execute(
        update(_DOSSIER)
        .where(_DOSSIER.c.code == code, _DOSSIER.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


async def pending_states(session: AsyncSession, code: str) -> list[PortalState]:
    """The dossier's pending states, in step order."""
    statement = (
        select(PortalState)
        .where(col(PortalState.code) == code, col(PortalState.status) == PENDING)
        .order_by(col(PortalState.step))
    )
    return list((await session.exec(statement)).all())


async def settle_state(
    session: AsyncSession, code: str, step: int, status: str, now: datetime
) -> None:
    """Mark a state ``sent`` or ``skipped``."""
    await (await session.connection()).execute(
        update(_STATE)
        .where(_STATE.c.code == code, _STATE.c.step == step)
        .values(status=status, sent_at=now)
    )


async def acknowledge(
    session: AsyncSession, code: str, step: int, national_status: int, now: datetime
) -> None:
    """The portal acknowledged the dossier's state ``step``: it has the dossier, the
    failure count starts again, the state is sent."""
    await (await session.connection()).execute(
        update(_DOSSIER)
        .where(_DOSSIER.c.code == code)
        .values(
            created=True,
            acked_step=step,
            acked_status=national_status,
            attempts=0,
            last_error=None,
            next_attempt_at=None,
            synced_at=now,
        )
    )
    await settle_state(session, code, step, SENT, now)


async def record_failure(
    session: AsyncSession, code: str, error: str, next_attempt_at: datetime, *, failed: bool
) -> None:
    """A call for the dossier failed: count it, keep why, and when to try again (or put
    the dossier in the failed list)."""
    await (await session.connection()).execute(
        update(_DOSSIER)
        .where(_DOSSIER.c.code == code)
        .values(
            attempts=_DOSSIER.c.attempts + 1,
            last_error=error[:200],
            next_attempt_at=next_attempt_at,
            failed=failed,
        )
    )


async def mark_created(session: AsyncSession, code: str, national_status: int) -> None:
    """The portal took the dossier's record at ``national_status`` (the state's progress
    entry may still be due): the next record of it is an update."""
    await (await session.connection()).execute(
        update(_DOSSIER)
        .where(_DOSSIER.c.code == code)
        .values(created=True, acked_status=national_status)
    )


async def resync(session: AsyncSession, code: str, now: datetime) -> bool:
    """Send the dossier again from now: out of the failed list, no wait, and its latest
    acknowledged state pending again if nothing else is. False: unknown dossier."""
    row = await dossier(session, code)
    if row is None:
        return False
    row.failed, row.attempts, row.next_attempt_at, row.last_error = False, 0, now, None
    if row.acked_step >= 0 and not await pending_states(session, code):
        await settle_state(session, code, row.acked_step, PENDING, now)
        row.acked_step, row.acked_status = row.acked_step - 1, None  # the record goes again
    session.add(row)
    return True


async def resync_failed(session: AsyncSession, now: datetime) -> int:
    """Every dossier of the failed list is tried again from now; return how many."""
    result = await (await session.connection()).execute(
        update(_DOSSIER)
        .where(_DOSSIER.c.failed.is_(True))
        .values(failed=False, attempts=0, next_attempt_at=now, last_error=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class UnitCounts:
    """Where one receiving unit's dossiers stand (all units: ``unit`` None)."""

    unit: str | None
    synced: int
    pending: int
    failed: int
    oldest_pending: datetime | None


async def counts(session: AsyncSession) -> list[UnitCounts]:
    """Per receiving unit: dossiers fully synced (the portal has them and nothing is
    pending), not yet (a state pending, or nothing to send yet: only a contact or a routing
    decision came), in the failed list, and the oldest pending state's time."""
    pending = _pending()
    synced = and_(_DOSSIER.c.created.is_(True), pending.c.code.is_(None))
    statement = (
        core_select(
            _DOSSIER.c.receiving_unit,
            func.sum(_flag(and_(_DOSSIER.c.failed.is_(False), synced))),
            func.sum(_flag(and_(_DOSSIER.c.failed.is_(False), ~synced))),
            func.sum(_flag(_DOSSIER.c.failed.is_(True))),
            func.min(pending.c.oldest),
        )
        .select_from(_DOSSIER.outerjoin(pending, pending.c.code == _DOSSIER.c.code))
        .group_by(_DOSSIER.c.receiving_unit)
    )
    rows = (await (await session.connection()).execute(statement)).all()
    return [
        UnitCounts(unit, int(s or 0), int(p or 0), int(f or 0), _aware(o))
        for unit, s, p, f, o in rows
    ]


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _aware(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def states_of(session: AsyncSession, code: str) -> list[PortalState]:
    """Every state of the dossier, in step order."""
    statement = (
        select(PortalState).where(col(PortalState.code) == code).order_by(col(PortalState.step))
    )
    return list((await session.exec(statement)).all())
