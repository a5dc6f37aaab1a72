"""The inbox: idempotent, batched application of consumed events.

Invariants:
- an event is applied at most once per service database: its ``event_id`` is
  recorded in ``inbox`` in the same transaction as its effects;
- a batch is applied in one transaction, in the order the records came (which is
  per-partition, so per-dossier, order); the offset is committed by FastStream only
  after ``BatchConsumer.consume`` returns, so after that transaction committed;
- a record that cannot be decoded, or that fails when applied alone, goes to the
  dead-letter topic and the rest of the batch is applied; if every record fails
  alone the failure is treated as the service's (database away, a bug) and raised
  for the retry middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.clock import utc_now
from shared.db import AwareDateTime, Database
from shared.deadletter import DeadLetters, RecordLike, describe
from shared.events import Envelope, UndecodableEvent, decode
from shared.metrics import DUPLICATES_SKIPPED

log = logging.getLogger(__name__)


class InboxRow(SQLModel, table=True):
    """An event this service has applied."""

    __tablename__ = "inbox"

    event_id: str = Field(sa_column=Column(String(36), primary_key=True))
    event_type: str = Field(sa_column=Column(String(100), nullable=False))
    applied_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))


Apply = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]
"""Apply fresh events inside the caller's transaction (state changes and outbox rows)."""


class BatchConsumer:
    """Turns a batch of Kafka records into one idempotent transaction."""

    def __init__(
        self,
        db: Database,
        apply: Apply,
        dead_letters: DeadLetters,
        *,
        service: str,
        after_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._apply = apply
        self._dead_letters = dead_letters
        self._service = service
        self._after_commit = after_commit

    async def consume(self, records: Sequence[RecordLike]) -> None:
        """Apply a batch; returns once it is committed or dead-lettered."""
        decoded: list[tuple[RecordLike, Envelope]] = []
        for record in records:
            try:
                decoded.append((record, decode(record.value or b"")))
            except UndecodableEvent as bad:
                await self._dead_letters.send(record, f"UndecodableEvent: {bad}", attempts=1)
        if not decoded:
            return
        try:
            await self._apply_once([env for _, env in decoded])
        except Exception:
            if len(decoded) == 1:
                raise
            await self._isolate(decoded)
        self._after_commit()

    async def _isolate(self, decoded: list[tuple[RecordLike, Envelope]]) -> None:
        failures: list[tuple[RecordLike, Exception]] = []
        for record, envelope in decoded:
            try:
                await self._apply_once([envelope])
            except Exception as exc:
                failures.append((record, exc))
        if len(failures) == len(decoded):
            raise failures[-1][1]
        for record, error in failures:
            await self._dead_letters.send(record, describe(error), attempts=1)

    async def _apply_once(self, envelopes: Sequence[Envelope]) -> None:
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
                session.add_all(
                    InboxRow(event_id=str(env.event_id), event_type=env.type, applied_at=now)
                    for env in fresh
                )
        skipped = len(envelopes) - len(fresh)
        if skipped:
            DUPLICATES_SKIPPED.labels(self._service).inc(skipped)
