"""Statements on the addressees (how to reach a dossier's applicant) and on the notices
waiting for a contact that has not come yet."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify.store.tables import AddresseeRow, WaitingNotice
from shared.db import table, upsert_insert

# --- addressees -------------------------------------------------------------------------


async def addressee(session: AsyncSession, code: str) -> AddresseeRow | None:
    """The addressee of one dossier (``None``: not heard of, or past retention)."""
    return await session.get(AddresseeRow, code)


async def addressees(session: AsyncSession, codes: Collection[str]) -> dict[str, AddresseeRow]:
    """The addressees of these dossiers that are stored, by dossier code (one query)."""
    rows = await session.exec(select(AddresseeRow).where(col(AddresseeRow.dossier_code).in_(codes)))
    return {row.dossier_code: row for row in rows.all()}


_REPLACED_ON_CONTACT = ("name", "phone", "email", "procedure_code", "receiving_unit", "updated_at")


async def put_addressees(
    session: AsyncSession, fresh: Mapping[str, AddresseeRow], now: datetime
) -> dict[str, AddresseeRow]:
    """Store these contacts (one ``INSERT ... ON CONFLICT DO UPDATE`` executed for many
    rows, no ORM object flushed): a new dossier's row is added, a known one's contact,
    procedure and unit are replaced and ``updated_at`` set to ``now`` (its ``ended_at``
    stays); return the contacts by dossier code."""
    addressee_table = table(AddresseeRow)
    statement = upsert_insert(session, addressee_table)
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


async def waiting_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of these waiting-notice keys are stored already (one query)."""
    rows = await session.exec(
        select(WaitingNotice.key).where(col(WaitingNotice.key).in_(list(keys)))
    )
    return set(rows.all())


async def take_waiting(session: AsyncSession, codes: Collection[str]) -> list[WaitingNotice]:
    """Delete and return the notices waiting for these dossiers' contacts, in the order
    they came (``created_at``, then key)."""
    codes = list(codes)
    if not codes:
        return []
    rows = (
        await session.exec(
            select(WaitingNotice)
            .where(col(WaitingNotice.dossier_code).in_(codes))
            .order_by(col(WaitingNotice.created_at), col(WaitingNotice.key))
        )
    ).all()
    if not rows:
        return []
    await session.exec(
        delete(WaitingNotice).where(col(WaitingNotice.key).in_([row.key for row in rows]))
    )
    return list(rows)


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
