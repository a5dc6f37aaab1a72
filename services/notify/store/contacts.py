"""Statements on the addressees (how to reach a dossier's applicant) and on the notices
waiting for a contact that has not come yet."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify.store.tables import AddresseeRow, WaitingNotice

# --- addressees -------------------------------------------------------------------------


async def addressee(session: AsyncSession, code: str) -> AddresseeRow | None:
    """The addressee of one dossier (``None``: not heard of, or past retention)."""
    return await session.get(AddresseeRow, code)


async def addressees(session: AsyncSession, codes: Collection[str]) -> dict[str, AddresseeRow]:
    """The addressees of these dossiers that are stored, by dossier code (one query)."""
    rows = await session.exec(select(AddresseeRow).where(col(AddresseeRow.dossier_code).in_(codes)))
    return {row.dossier_code: row for row in rows.all()}


async def put_addressees(
    session: AsyncSession, fresh: Mapping[str, AddresseeRow], now: datetime
) -> dict[str, AddresseeRow]:
    """Store these contacts: a new dossier's row is added, a known one's contact, procedure
    and unit are replaced (its ``ended_at`` stays); return the rows as the session now holds
    them, by dossier code (one query)."""
    stored = dict(fresh)
    existing = await addressees(session, list(fresh))
    for code, row in fresh.items():
        known = existing.get(code)
        if known is None:
            session.add(row)
            continue
        known.name, known.phone, known.email = row.name, row.phone, row.email
        known.procedure_code, known.receiving_unit = row.procedure_code, row.receiving_unit
        known.updated_at = now
        session.add(known)
        stored[code] = known
    return stored


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
