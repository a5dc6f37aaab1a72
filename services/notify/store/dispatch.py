"""The dispatcher's statements: reconcile lapsed leases, claim due messages, renew the
lease, record outcomes in bulk, release what was not sent, take a gateway's delivery report.

Every statement on rows a dispatcher claimed is guarded by ``WHERE claim = <mine>``
(``services.notify.app`` states why).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, case, null, select, update
from sqlmodel import col
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
from shared.db import table


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


class Outcome(NamedTuple):
    """One send's outcome to record: ``sent`` (with ``sent_at``, the sink and the provider
    id), or ``queued`` again for a retry at ``next_attempt_at``, or ``failed``, with the
    reason in ``error``; ``attempts`` counts this send."""

    key: str
    status: str
    attempts: int
    error: str | None = None
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    sink: str | None = None
    provider_id: str | None = None


_MESSAGE = table(Message)
_M = _MESSAGE.c


async def claim_due(
    session: AsyncSession, claim: str, now: datetime, channels: Collection[str], limit: int
) -> list[Message]:
    """Claim up to ``limit`` messages ``queued`` and due (``next_attempt_at <= now``) on
    ``channels``, earliest due first: ``sending`` under ``claim`` with ``claimed_at = now``;
    return them in due order (``next_attempt_at``, then ``created_at``). One statement:
    ``UPDATE ... WHERE key IN (SELECT ... LIMIT n) AND status = 'queued' RETURNING``.

    The update is guarded by ``WHERE status = 'queued'``: a row another dispatcher claimed
    between the pick and the update is not taken over, so two dispatchers never both hold
    a row. Commit before sending any of them.
    """
    due = (
        select(_M.key)
        .where(_M.status == QUEUED, _M.next_attempt_at <= now, _M.channel.in_(channels))
        .order_by(_M.next_attempt_at, _M.created_at)
        .limit(limit)
        .scalar_subquery()
    )
    conn = await session.connection()
    rows = await conn.execute(
        update(_MESSAGE)
        .where(_M.key.in_(due), _M.status == QUEUED)
        .values(status=SENDING, claim=claim, claimed_at=now)
        .returning(*_MESSAGE.columns)
    )
    picked = [Message.model_construct(**row._mapping) for row in rows]
    picked.sort(key=lambda m: (m.next_attempt_at, m.created_at))
    return picked


async def renew_lease(session: AsyncSession, claim: str, now: datetime) -> None:
    """Set ``claimed_at`` to ``now`` on the rows still ``sending`` under ``claim``
    (``WHERE claim = <mine> AND status = 'sending'``)."""
    await session.exec(
        update(Message)
        .where(col(Message.claim) == claim, col(Message.status) == SENDING)
        .values(claimed_at=now)
    )


async def renew_claimed(
    session: AsyncSession, keys: Collection[str], claim: str, now: datetime
) -> dict[str, str]:
    """Renew these rows' lease right before their sends (one ``UPDATE ... WHERE key IN
    (...) AND claim = <mine> RETURNING``); return the status of each row still under
    ``claim`` (``sending``: it may be sent; anything else: a delivery report settled it
    first). A key missing from the answer is no longer under ``claim``."""
    conn = await session.connection()
    rows = await conn.execute(
        update(_MESSAGE)
        .where(_M.key.in_(list(keys)), _M.claim == claim)
        .values(claimed_at=now)
        .returning(_M.key, _M.status)
    )
    return {str(key): str(status) for key, status in rows}


async def html_of(session: AsyncSession, keys: Collection[str]) -> dict[str, str]:
    """The HTML alternatives of these messages that have one, by key (one query)."""
    html = table(MessageHtml).c
    conn = await session.connection()
    rows = await conn.execute(select(html.key, html.html).where(html.key.in_(list(keys))))
    return {str(key): str(text) for key, text in rows}


_REPORTED = _M.status != SENDING
"""A delivery report came while the row was ``sending``: its status and reason win."""

_RECORD_SENT = (
    update(_MESSAGE)
    .where(_M.key == bindparam("b_key"), _M.claim == bindparam("b_claim"))
    .values(
        claim=None,
        attempts=bindparam("b_attempts"),
        status=case((_REPORTED, _M.status), else_=SENT),
        last_error=case((_REPORTED, _M.last_error), else_=null()),
        sent_at=bindparam("b_sent_at"),
        sink=bindparam("b_sink"),
        provider_id=bindparam("b_provider_id"),
    )
)
_RECORD_FAILED = (
    update(_MESSAGE)
    .where(_M.key == bindparam("b_key"), _M.claim == bindparam("b_claim"))
    .values(
        claim=None,
        attempts=bindparam("b_attempts"),
        status=case((_REPORTED, _M.status), else_=bindparam("b_status")),
        last_error=case((_REPORTED, _M.last_error), else_=bindparam("b_error")),
        next_attempt_at=bindparam("b_next_attempt_at"),
    )
)


async def record_outcomes(
    session: AsyncSession, claim: str, outcomes: Sequence[Outcome]
) -> set[str]:
    """Record sends' outcomes, only on rows still under ``claim``, the claim cleared;
    return the keys recorded (a key missing was no longer under ``claim``: nothing
    written, the claim was lost). Three statements however many outcomes: the rows still
    mine (``SELECT ... FOR UPDATE`` where the database locks rows), then one executemany
    for the sent and one for the failed, each still guarded by ``WHERE claim = <mine>``.

    A delivery report that came while the row was ``sending`` wins: a row no longer
    ``sending`` keeps its status (``delivered``, ``failed``) and reason, and gets the
    attempt (and, if sent, ``sent_at``, the sink and the provider id) added
    (precedence: ``Dispatcher._record``).
    """
    conn = await session.connection()
    mine = set(
        (
            await conn.execute(
                select(_M.key)
                .where(_M.key.in_([o.key for o in outcomes]), _M.claim == claim)
                .with_for_update()
            )
        ).scalars()
    )
    sent = [
        {
            "b_key": o.key,
            "b_claim": claim,
            "b_attempts": o.attempts,
            "b_sent_at": o.sent_at,
            "b_sink": o.sink,
            "b_provider_id": o.provider_id,
        }
        for o in outcomes
        if o.key in mine and o.status == SENT
    ]
    failed = [
        {
            "b_key": o.key,
            "b_claim": claim,
            "b_attempts": o.attempts,
            "b_status": o.status,
            "b_error": o.error,
            "b_next_attempt_at": o.next_attempt_at,
        }
        for o in outcomes
        if o.key in mine and o.status != SENT
    ]
    if sent:
        await conn.execute(_RECORD_SENT, sent)
    if failed:
        await conn.execute(_RECORD_FAILED, failed)
    return mine


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
