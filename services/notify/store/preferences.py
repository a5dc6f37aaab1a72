"""Statements on what citizens and administrators chose: opt-outs (and the queued
messages they suppress), trigger toggles, office heads."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import domain
from services.notify.store.tables import (
    QUEUED,
    SUPPRESSED,
    Message,
    OfficeHead,
    OptOut,
    TriggerToggle,
)

# --- opt-outs ---------------------------------------------------------------------------


async def opted_out(session: AsyncSession, targets: Collection[str]) -> set[str]:
    """Which of these opt-out targets are recorded (one query)."""
    rows = await session.exec(select(OptOut.target).where(col(OptOut.target).in_(targets)))
    return set(rows.all())


async def add_opt_outs(session: AsyncSession, targets: Collection[str], now: datetime) -> None:
    """Record these opt-out targets (those not recorded yet)."""
    present = await opted_out(session, targets)
    session.add_all(OptOut(target=t, created_at=now) for t in targets if t not in present)


async def delete_opt_outs(session: AsyncSession, targets: Collection[str]) -> int:
    """Withdraw these opt-out targets; return how many were recorded."""
    result = await session.exec(delete(OptOut).where(col(OptOut.target).in_(targets)))
    return int(result.rowcount)


async def queued_to_citizens(session: AsyncSession) -> list[Message]:
    """Messages still ``queued`` to citizens (a ``domain.Trigger``: not an office head's
    warning or digest)."""
    rows = await session.exec(
        select(Message).where(
            Message.status == QUEUED,
            col(Message.trigger).in_([t.value for t in domain.Trigger]),
        )
    )
    return list(rows.all())


async def suppress(session: AsyncSession, keys: Collection[str]) -> None:
    """Mark these messages ``suppressed`` (the caller picked them ``queued`` in the same
    transaction)."""
    await session.exec(
        update(Message).where(col(Message.key).in_(list(keys))).values(status=SUPPRESSED)
    )


# --- trigger toggles --------------------------------------------------------------------


async def load_toggles(session: AsyncSession) -> domain.Toggles:
    """The trigger toggles table as a mapping (small: procedures × units × triggers set)."""
    rows = (await session.exec(select(TriggerToggle))).all()
    return {(r.procedure_code, r.receiving_unit, r.trigger): r.enabled for r in rows}


async def put_toggle(
    session: AsyncSession, trigger: str, enabled: bool, *, procedure: str, unit: str
) -> None:
    """Switch ``trigger`` on or off for a procedure and unit (``*``: any)."""
    row = await session.get(TriggerToggle, (procedure, unit, trigger))
    if row is None:
        row = TriggerToggle(
            procedure_code=procedure, receiving_unit=unit, trigger=trigger, enabled=enabled
        )
    row.enabled = enabled
    session.add(row)


# --- office heads -----------------------------------------------------------------------


async def office_heads(session: AsyncSession, *, unit: str | None = None) -> list[OfficeHead]:
    """Every office head (or only ``unit``'s), by unit."""
    wanted = select(OfficeHead).order_by(col(OfficeHead.unit))
    if unit is not None:
        wanted = wanted.where(OfficeHead.unit == unit)
    return list((await session.exec(wanted)).all())


async def heads_of(session: AsyncSession, units: Collection[str]) -> dict[str, OfficeHead]:
    """The heads of these units that are on file, by unit (one query)."""
    rows = await session.exec(select(OfficeHead).where(col(OfficeHead.unit).in_(units)))
    return {row.unit: row for row in rows.all()}


async def put_head(
    session: AsyncSession, unit: str, *, name: str, email: str, now: datetime
) -> None:
    """Record (or replace) the head of ``unit``."""
    row = await session.get(OfficeHead, unit)
    if row is None:
        row = OfficeHead(unit=unit, name=name, email=email, updated_at=now)
    row.name, row.email, row.updated_at = name, email, now
    session.add(row)


async def delete_head(session: AsyncSession, unit: str) -> bool:
    """Forget the head of ``unit``; ``False`` if none was recorded."""
    row = await session.get(OfficeHead, unit)
    if row is None:
        return False
    await session.delete(row)
    return True
