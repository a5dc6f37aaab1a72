"""Statements on the addressees (how to reach a dossier's applicant) and on the notices
waiting for a contact that has not come yet."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify.domain import Addressee, Notice, Trigger
from services.notify.store.tables import AddresseeRow, WaitingNotice
from shared.db import table, upsert_insert

_ADDRESSEES = table(AddresseeRow)
_WAITING = table(WaitingNotice)

# --- addressees -------------------------------------------------------------------------


async def addressee(session: AsyncSession, code: str) -> AddresseeRow | None:
    """The addressee of one dossier (``None``: not heard of, or past retention)."""
    return await session.get(AddresseeRow, code)


async def addressees(session: AsyncSession, codes: Collection[str]) -> dict[str, Addressee]:
    """The addressees of these dossiers that are stored, by dossier code (one ``IN (...)``
    query of the columns, no ORM object)."""
    if not codes:
        return {}
    c = _ADDRESSEES.c
    conn = await session.connection()
    rows = await conn.execute(
        sa.select(
            c.dossier_code, c.name, c.phone, c.email, c.procedure_code, c.receiving_unit
        ).where(c.dossier_code.in_(list(codes)))
    )
    return {
        code: Addressee(
            name=name,
            phone=phone,
            email=email,
            procedure_code=procedure_code,
            receiving_unit=receiving_unit,
        )
        for code, name, phone, email, procedure_code, receiving_unit in rows
    }


async def ended_among(session: AsyncSession, codes: Collection[str]) -> set[str]:
    """Those of these dossiers whose processing has ended (their addressee's ``ended_at``
    set), in one ``IN (...)`` query."""
    if not codes:
        return set()
    c = _ADDRESSEES.c
    conn = await session.connection()
    found = await conn.execute(
        sa.select(c.dossier_code).where(c.dossier_code.in_(list(codes)), c.ended_at.is_not(None))
    )
    return set(found.scalars())


_REPLACED_ON_CONTACT = ("name", "phone", "email", "procedure_code", "receiving_unit", "updated_at")


async def put_addressees(
    session: AsyncSession, fresh: Mapping[str, Addressee], now: datetime
) -> dict[str, Addressee]:
    """Store these contacts (one ``INSERT ... ON CONFLICT DO UPDATE`` executed for many
    rows, no ORM object flushed): a new dossier's row is added, a known one's contact,
    procedure and unit are replaced and ``updated_at`` set to ``now`` (its ``ended_at``
    stays); return the contacts by dossier code."""
    statement = upsert_insert(session, _ADDRESSEES)
    statement = statement.on_conflict_do_update(
        index_elements=["dossier_code"],
        set_={name: statement.excluded[name] for name in _REPLACED_ON_CONTACT},
    )
    rows = [
        {
            "dossier_code": code,
            "name": row.name,
            "phone": row.phone,
            "email": row.email,
            "procedure_code": row.procedure_code,
            "receiving_unit": row.receiving_unit,
            "updated_at": now,
            "ended_at": None,
        }
        for code, row in fresh.items()
    ]
    conn = await session.connection()
    await conn.execute(statement, rows)
    return dict(fresh)


async def set_ended(
    session: AsyncSession, codes: Collection[str], ended_at: datetime | None
) -> None:
    """Set (or, ``None``, clear) ``ended_at`` of these dossiers' addressees. Rows added
    earlier in the transaction are flushed first, so a contact stored by the same batch is
    covered too."""
    await session.flush()
    await session.exec(
        update(AddresseeRow)
        .where(col(AddresseeRow.dossier_code).in_(list(codes)))
        .values(ended_at=ended_at)
    )


async def delete_ended_addressees(session: AsyncSession, before: datetime) -> int:
    """Delete the addressees of dossiers whose processing ended before ``before`` (a
    dossier still in process, ``ended_at`` unset, keeps its own); return how many."""
    result = await session.exec(delete(AddresseeRow).where(col(AddresseeRow.ended_at) < before))
    return int(result.rowcount)


# --- notices waiting for a contact ----------------------------------------------------


async def park_waiting(session: AsyncSession, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert these waiting notices (column name to value) in one statement executed for
    many rows, no ORM object; a key already waiting is left alone (``ON CONFLICT DO
    NOTHING``: the caller skipped the keys it found, a concurrent writer wins)."""
    if not rows:
        return
    statement = upsert_insert(session, _WAITING).on_conflict_do_nothing(index_elements=["key"])
    conn = await session.connection()
    await conn.execute(statement, list(rows))


async def waiting_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of these waiting-notice keys are stored already (one query)."""
    rows = await session.exec(
        select(WaitingNotice.key).where(col(WaitingNotice.key).in_(list(keys)))
    )
    return set(rows.all())


async def take_waiting(
    session: AsyncSession, codes: Collection[str]
) -> list[tuple[Notice, datetime]]:
    """Delete and return the notices waiting for these dossiers' contacts with when each
    came, in the order they came (``created_at``, then key): one ``IN (...)`` read of the
    columns and one delete, no ORM object."""
    codes = list(codes)
    if not codes:
        return []
    c = _WAITING.c
    conn = await session.connection()
    rows = (
        await conn.execute(
            sa.select(c.key, c.dossier_code, c.trigger, c.occurrence, c.facts, c.created_at)
            .where(c.dossier_code.in_(codes))
            .order_by(c.created_at, c.key)
        )
    ).all()
    if not rows:
        return []
    await conn.execute(delete(_WAITING).where(c.key.in_([row.key for row in rows])))
    return [
        (
            Notice(
                row.dossier_code,
                Trigger(row.trigger),
                occurrence=row.occurrence,
                facts=dict(row.facts),
            ),
            row.created_at,
        )
        for row in rows
    ]


async def waiting_with_contact(session: AsyncSession) -> set[str]:
    """Dossier codes of the notices still waiting whose addressee is stored (a join)."""
    rows = await session.exec(
        select(WaitingNotice.dossier_code).join(
            AddresseeRow,
            col(AddresseeRow.dossier_code) == col(WaitingNotice.dossier_code),
        )
    )
    return set(rows.all())


async def delete_waiting_before(session: AsyncSession, before: datetime) -> int:
    """Delete the notices that have waited for a contact since before ``before``; return
    how many."""
    result = await session.exec(delete(WaitingNotice).where(col(WaitingNotice.created_at) < before))
    return int(result.rowcount)
