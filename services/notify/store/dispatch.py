"""The dispatcher's statements: reconcile lapsed leases, claim due messages, renew the
lease, record each outcome, release what was not sent, take a gateway's delivery report.

Every statement on rows a dispatcher claimed is guarded by ``WHERE claim = <mine>``
(``services.notify.app`` states why).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import case, null
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify.store.tables import (
    DELIVERED,
    FAILED,
    QUEUED,
    SENDING,
    SENT,
    UNKNOWN,
    Message,
    MessageHtml,
)


async def settle_lapsed(
    session: AsyncSession, channel: str, lapsed_before: datetime, *, resend: bool
) -> None:
    """Settle the messages of ``channel`` left ``sending`` whose lease lapsed
    (``claimed_at`` before ``lapsed_before``): queued again under the same key if
    ``resend`` (the channel's sinks are resend-safe), else ``unknown``; the claim is
    cleared either way."""
    await session.exec(
        update(Message)
        .where(
            col(Message.status) == SENDING,
            col(Message.channel) == channel,
            col(Message.claimed_at) < lapsed_before,
        )
        .values(
            status=QUEUED if resend else UNKNOWN,
            claim=None,
            last_error="interrupted during send"
            + ("; resent under the same key" if resend else "; not resent"),
        )
    )


async def claim_due(
    session: AsyncSession, claim: str, now: datetime, channels: Collection[str], limit: int
) -> int:
    """Claim up to ``limit`` messages ``queued`` and due (``next_attempt_at <= now``) on
    ``channels``, earliest due first: ``sending`` under ``claim`` with ``claimed_at = now``;
    return how many were picked.

    The update is guarded by ``WHERE status = 'queued'``: a row another dispatcher claimed
    between the pick and the update is not taken over, so two dispatchers never both hold
    a row. Commit before reading the claimed rows (``claimed``).
    """
    due = (
        await session.exec(
            select(Message.key)
            .where(
                col(Message.status) == QUEUED,
                col(Message.next_attempt_at) <= now,
                col(Message.channel).in_(channels),
            )
            .order_by(col(Message.next_attempt_at))
            .limit(limit)
        )
    ).all()
    if not due:
        return 0
    await session.exec(
        update(Message)
        .where(col(Message.key).in_(list(due)), col(Message.status) == QUEUED)
        .values(status=SENDING, claim=claim, claimed_at=now)
    )
    return len(due)


async def claimed(session: AsyncSession, claim: str) -> list[Message]:
    """The rows held under ``claim``, in due order (``next_attempt_at``, then
    ``created_at``)."""
    rows = await session.exec(
        select(Message)
        .where(Message.claim == claim)
        .order_by(col(Message.next_attempt_at), col(Message.created_at))
    )
    return list(rows.all())


async def renew_lease(session: AsyncSession, claim: str, now: datetime) -> None:
    """Set ``claimed_at`` to ``now`` on the rows still ``sending`` under ``claim``
    (``WHERE claim = <mine> AND status = 'sending'``)."""
    await session.exec(
        update(Message)
        .where(col(Message.claim) == claim, col(Message.status) == SENDING)
        .values(claimed_at=now)
    )


async def renew_one(session: AsyncSession, key: str, claim: str, now: datetime) -> str | None:
    """Renew one row's lease right before its send (``WHERE key = ... AND claim =
    <mine>``); return its status, or ``None`` if the row is no longer under ``claim``
    (``sending``: it may be sent; anything else: a delivery report settled it first)."""
    found = (
        await session.exec(
            update(Message)
            .where(col(Message.key) == key, col(Message.claim) == claim)
            .values(claimed_at=now)
            .returning(col(Message.status))
        )
    ).first()
    return None if found is None else str(found[0])


async def html_of(session: AsyncSession, keys: Collection[str]) -> dict[str, str]:
    """The HTML alternatives of these messages that have one, by key (one query)."""
    rows = await session.exec(select(MessageHtml).where(col(MessageHtml.key).in_(list(keys))))
    return {row.key: row.html for row in rows.all()}


async def record_failure(
    session: AsyncSession,
    key: str,
    claim: str,
    *,
    attempts: int,
    status: str,
    error: str,
    next_attempt_at: datetime,
) -> bool:
    """Record a failed send: ``status`` (``queued`` for a retry at ``next_attempt_at``,
    or ``failed``) with its reason, ``attempts``, the claim cleared; ``False`` if the row
    is no longer under ``claim`` (nothing written: the claim was lost).

    A delivery report that came while the row was ``sending`` wins: a row no longer
    ``sending`` keeps its status and reason (precedence: ``Dispatcher._record``).
    """
    reported = col(Message.status) != SENDING
    return await _record(
        session,
        key,
        claim,
        attempts=attempts,
        status=case((reported, col(Message.status)), else_=status),
        last_error=case((reported, col(Message.last_error)), else_=error),
        next_attempt_at=next_attempt_at,
    )


async def record_sent(
    session: AsyncSession,
    key: str,
    claim: str,
    *,
    attempts: int,
    sent_at: datetime,
    sink: str,
    provider_id: str | None,
) -> bool:
    """Record an accepted send: ``sent`` with ``sent_at``, the sink and the provider id,
    ``attempts``, the claim cleared; ``False`` if the row is no longer under ``claim``
    (nothing written: the claim was lost).

    A delivery report that came while the row was ``sending`` wins: a row no longer
    ``sending`` keeps its status (``delivered``, ``failed``) and reason.
    """
    reported = col(Message.status) != SENDING
    return await _record(
        session,
        key,
        claim,
        attempts=attempts,
        status=case((reported, col(Message.status)), else_=SENT),
        last_error=case((reported, col(Message.last_error)), else_=null()),
        sent_at=sent_at,
        sink=sink,
        provider_id=provider_id,
    )


async def _record(session: AsyncSession, key: str, claim: str, **values: Any) -> bool:
    """One send's outcome, ``WHERE key = ... AND claim = <mine>``, clearing the claim."""
    result = await session.exec(
        update(Message)
        .where(col(Message.key) == key, col(Message.claim) == claim)
        .values(claim=None, **values)
    )
    return bool(result.rowcount)


async def release(session: AsyncSession, keys: Collection[str], claim: str) -> None:
    """Put these rows back to ``queued`` if still ``sending`` under ``claim`` (``WHERE
    claim = <mine> AND status = 'sending'``), the claim cleared: never handed to a sink."""
    await session.exec(
        update(Message)
        .where(
            col(Message.key).in_(list(keys)),
            col(Message.claim) == claim,
            col(Message.status) == SENDING,
        )
        .values(status=QUEUED, claim=None)
    )


async def take_report(
    session: AsyncSession, key: str, *, delivered: bool, reason: str | None, now: datetime
) -> bool:
    """Apply a gateway's delivery report to a message ``sending``, ``sent`` or
    ``delivered`` (it may overtake the record of its send): ``delivered`` at ``now``, or
    ``failed`` with the reason; ``False`` if there is no such message."""
    values: dict[str, object] = (
        {"status": DELIVERED, "delivered_at": now}
        if delivered
        else {"status": FAILED, "last_error": (reason or "not delivered")[:300]}
    )
    result = await session.exec(
        update(Message)
        .where(col(Message.key) == key, col(Message.status).in_([SENDING, SENT, DELIVERED]))
        .values(**values)
    )
    return bool(result.rowcount)
