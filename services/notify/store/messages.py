"""Statements that queue messages, read a dossier's, and purge them past retention."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlmodel import col, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify import domain
from services.notify.store.tables import (
    FINAL,
    PURGED,
    QUEUED,
    SUPERSEDED,
    Message,
    MessageHtml,
    WaitingNotice,
)
from shared.db import table, upsert_insert

# --- messages: queueing -----------------------------------------------------------------


async def stored_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of these message keys are stored already (one query): a key is queued once."""
    rows = await session.exec(select(Message.key).where(col(Message.key).in_(list(keys))))
    return set(rows.all())


async def queue_messages(session: AsyncSession, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert these message rows (column name to value) in one statement executed for many
    rows, no ORM object built; a key already stored is left alone (``ON CONFLICT DO
    NOTHING``: the caller skipped the keys it found, a concurrent writer of the same key
    wins)."""
    if not rows:
        return
    statement = upsert_insert(session, table(Message)).on_conflict_do_nothing(
        index_elements=["key"]
    )
    conn = await session.connection()
    await conn.execute(statement, [dict(row) for row in rows])


async def insert_if_free(session: AsyncSession, message: Message, html: MessageHtml) -> bool:
    """Insert a message and its HTML alternative unless its key is taken (``INSERT ... ON
    CONFLICT DO NOTHING``: a concurrent writer of the same key wins, this adds nothing);
    ``True`` if inserted."""
    inserted = await session.exec(
        upsert_insert(session, table(Message))
        .values(message.model_dump())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    if not inserted.rowcount:
        return False
    await session.exec(
        upsert_insert(session, table(MessageHtml))
        .values(html.model_dump())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return True


async def supersede_lateness(session: AsyncSession, codes: Collection[str]) -> None:
    """Mark these dossiers' lateness messages (``domain.SUPERSEDED_TRIGGERS``) still
    ``queued`` ``superseded`` (``WHERE status = 'queued'``: one being sent or sent stays),
    and delete such notices still waiting for a contact. Rows added earlier in the
    transaction are flushed first, so one queued by an earlier event of the same batch is
    covered too."""
    await session.flush()
    await session.exec(
        update(Message)
        .where(
            col(Message.dossier_code).in_(codes),
            col(Message.trigger).in_(domain.SUPERSEDED_TRIGGERS),
            col(Message.status) == QUEUED,
        )
        .values(status=SUPERSEDED)
    )
    await session.exec(
        delete(WaitingNotice).where(
            col(WaitingNotice.dossier_code).in_(codes),
            col(WaitingNotice.trigger).in_(domain.SUPERSEDED_TRIGGERS),
        )
    )


async def messages_of(session: AsyncSession, code: str) -> list[Message]:
    """Messages of one dossier, oldest first (``created_at``, then key)."""
    rows = await session.exec(
        select(Message)
        .where(Message.dossier_code == code)
        .order_by(col(Message.created_at), col(Message.key))
    )
    return list(rows.all())


# --- messages: retention ----------------------------------------------------------------


async def purge_messages(session: AsyncSession, before: datetime) -> int:
    """Blank the recipient, subject and text (and delete the HTML) of messages final
    (``FINAL``) and created before ``before`` that still hold them; return how many.

    The update repeats the final-and-old condition, so a row that changed since the pick
    keeps its data. A message still queued or being sent keeps what it needs to be sent.
    """
    expired = (col(Message.status).in_(FINAL), col(Message.created_at) < before)
    keys = list(
        (
            await session.exec(
                select(Message.key).where(
                    *expired,
                    (col(Message.recipient) != PURGED) | (col(Message.body) != PURGED),
                )
            )
        ).all()
    )
    if keys:
        await session.exec(
            update(Message)
            .where(col(Message.key).in_(keys), *expired)
            .values(recipient=PURGED, subject=None, body=PURGED)
        )
        await session.exec(delete(MessageHtml).where(col(MessageHtml.key).in_(keys)))
    return len(keys)
