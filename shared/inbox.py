"""The inbox: idempotent, batched application of consumed events.

Invariants:
- an event is applied at most once per service database: its ``event_id`` is
  recorded in ``inbox`` in the same transaction as its effects (a consumer without
  inbox, ``follow``, has an idempotent ``apply`` instead);
- a batch is applied in one transaction, in the order the records came (which is
  per-partition, so per-dossier, order); the offset is committed by FastStream only
  after ``BatchConsumer.consume`` returns, so after that transaction committed;
- an operational failure (``shared.faults.is_transient``) is raised at once, whether
  it hits the batch or one record: the consumer reads again from the batch's first
  record later (``shared.retry``), records already applied alone are skipped then by
  the inbox, and nothing is dead-lettered;
- any other failure of the batch is narrowed down: each record is applied alone, in
  order, up to ``attempts`` times; a record that cannot be decoded, or that fails alone
  on every attempt, goes to the dead-letter topic and the next one is applied;
- inbox rows are kept ``inbox_retention_days`` (at least as long as any publisher keeps
  an event to publish again, see ``shared.outbox``), then purged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlalchemy import Column, Index, String, delete, insert
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.clock import utc_now
from shared.db import AwareDateTime, Database, table
from shared.deadletter import DeadLetters, RecordLike, describe
from shared.events import Envelope, UndecodableEvent, decode
from shared.faults import is_transient
from shared.metrics import DUPLICATES_SKIPPED, RETENTION_PURGED
from shared.retry import backoff

log = logging.getLogger(__name__)


class InboxRow(SQLModel, table=True):
    """An event this service has applied."""

    __tablename__ = "inbox"

    __table_args__ = (Index("ix_inbox_applied_at", "applied_at"),)

    event_id: str = Field(sa_column=Column(String(36), primary_key=True))
    event_type: str = Field(sa_column=Column(String(100), nullable=False))
    applied_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


_INBOX = table(InboxRow)

Apply = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[object]]
"""Apply fresh events inside the caller's transaction (state changes and outbox rows);
what it answers is not used."""


class BatchConsumer:
    """Turns a batch of Kafka records into one idempotent transaction."""

    def __init__(
        self,
        db: Database,
        apply: Apply,
        dead_letters: DeadLetters,
        *,
        service: str,
        attempts: int,
        backoff_seconds: float,
        inbox: bool = True,
        after_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._apply = apply
        self._dead_letters = dead_letters
        self._service = service
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._inbox = inbox
        self._after_commit = after_commit

    async def consume(self, records: Sequence[RecordLike]) -> None:
        """Apply a batch; returns once every record is committed or dead-lettered, raises
        an operational failure for the whole batch to be read again."""
        decoded: list[tuple[RecordLike, Envelope]] = []
        for record in records:
            try:
                decoded.append((record, decode(record.value or b"")))
            except UndecodableEvent as bad:
                await self._dead_letters.send(record, f"UndecodableEvent: {bad}", attempts=1)
        if not decoded:
            return
        failure = await self._try([env for _, env in decoded])
        if failure is not None:
            if is_transient(failure):
                raise failure
            await self._isolate(decoded, failure)
        self._after_commit()

    async def _try(self, envelopes: Sequence[Envelope]) -> Exception | None:
        """Apply ``envelopes`` in one transaction; the failure, if any (not raised, so that
        what runs next is not chained to it)."""
        try:
            await self._apply_once(envelopes)
        except Exception as exc:
            return exc
        return None

    async def _isolate(
        self, decoded: list[tuple[RecordLike, Envelope]], batch_failure: Exception
    ) -> None:
        """Apply each record alone, in order (a batch of one already failed once)."""
        for record, envelope in decoded:
            attempt = 1
            failure = batch_failure if len(decoded) == 1 else await self._try([envelope])
            while failure is not None:
                if is_transient(failure):
                    raise failure
                if attempt >= self._attempts:
                    await self._dead_letters.send(record, describe(failure), attempts=attempt)
                    break
                log.warning(
                    "%s[%d]@%d failed alone (attempt %d): %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    attempt,
                    describe(failure),
                )
                await asyncio.sleep(backoff(attempt, self._backoff, self._backoff * 8))
                attempt += 1
                failure = await self._try([envelope])

    async def _apply_once(self, envelopes: Sequence[Envelope]) -> None:
        if not self._inbox:
            async with self._db.transaction() as session:
                await self._apply(session, envelopes)
            return
        unique: dict[str, Envelope] = {}
        for envelope in envelopes:
            unique.setdefault(str(envelope.event_id), envelope)
        async with self._db.transaction() as session:
            seen = set(
                (
                    await session.exec(
                        select(InboxRow.event_id).where(col(InboxRow.event_id).in_(list(unique)))
                    )
                ).all()
            )
            fresh = [env for event_id, env in unique.items() if event_id not in seen]
            if fresh:
                await self._apply(session, fresh)
                now = utc_now()
                conn = await session.connection()
                await conn.execute(
                    insert(_INBOX),
                    [
                        {"event_id": str(env.event_id), "event_type": env.type, "applied_at": now}
                        for env in fresh
                    ],
                )
        skipped = len(envelopes) - len(fresh)
        if skipped:
            DUPLICATES_SKIPPED.labels(self._service).inc(skipped)


async def purge_inbox(db: Database, *, older_than: datetime, service: str) -> int:
    """Delete inbox rows applied before ``older_than``; return how many."""
    async with db.transaction() as session:
        conn = await session.connection()
        result = await conn.execute(delete(_INBOX).where(_INBOX.c.applied_at < older_than))
    purged = int(getattr(result, "rowcount", 0) or 0)
    if purged:
        RETENTION_PURGED.labels(service, "inbox").inc(purged)
    return purged
