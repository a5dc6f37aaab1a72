"""The transactional outbox and its relay.

A service never publishes from a handler or an HTTP request: it adds an outbox row
in the same transaction as its own state change (``enqueue``), and the relay
publishes committed rows. So an event exists if and only if its state change was
committed, and the counter keeps working while Kafka is down.

Ordering: rows are published in ``id`` order by one relay at a time per database
(SQLite: one relay per file; PostgreSQL: the relay holds a transaction-scoped
advisory lock while it publishes), and the producer keeps per-partition order, so
a dossier's events reach Kafka in the order they were committed.

A row is marked sent only after the broker confirmed every record of its round;
a crash in between republishes the round (at least once; consumers dedupe on
``event_id``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import Column, Index, Integer, LargeBinary, String, func, select, text, update
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.clock import utc_now
from shared.db import AwareDateTime, Database, table
from shared.events import Envelope, Payload
from shared.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, OUTBOX_PUBLISHED
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)

_RELAY_LOCK_KEY = 0x6D6F7463  # "motc": the advisory lock of the outbox relay


class OutboxRow(SQLModel, table=True):
    """An event waiting to be published, or already published (``sent_at`` set)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "id"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    topic: str = Field(sa_column=Column(String(200), nullable=False))
    key: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime, nullable=True))


def enqueue(
    session: AsyncSession,
    payload: Payload,
    *,
    occurred_at: datetime,
    source: str,
    dossier_code: str | None,
    correlation_id: uuid.UUID | None = None,
    key: str | None = None,
) -> Envelope:
    """Put ``payload`` in a new envelope and add it to the outbox, on the payload's own
    topic and keyed by ``dossier_code`` (or ``key`` for an event about no dossier),
    inside the caller's transaction."""
    envelope = Envelope.wrap(
        payload,
        occurred_at=occurred_at,
        source=source,
        dossier_code=dossier_code,
        correlation_id=correlation_id,
    )
    session.add(
        OutboxRow(
            topic=payload.topic.name,
            key=envelope.dossier_code if key is None else key,
            value=envelope.encode(),
            created_at=utc_now(),
        )
    )
    return envelope


_OUTBOX = table(OutboxRow)

Send = Callable[[str, bytes, bytes | None], Awaitable[Awaitable[object]]]
"""Start sending one record (topic, value, key); the awaitable it returns confirms it."""


class OutboxRelay:
    """Publishes committed outbox rows, oldest first, and marks them sent."""

    def __init__(
        self,
        db: Database,
        send: Send,
        *,
        service: str,
        batch_max: int,
        poll_seconds: float,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self._db = db
        self._send = send
        self._service = service
        self._batch_max = batch_max
        self._poll = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._wake = Wakeup()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Ask for a round now (called after a local commit that added rows)."""
        self._wake.set()

    def start(self) -> None:
        """Run the relay loop in the background until ``stop``."""
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._service}")

    async def stop(self) -> None:
        """Stop after the current round (its rows are either marked or republished later)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        backoff = self._poll
        while True:
            try:
                published = await self.publish_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker or database is away: keep the rows, wait
                log.warning("outbox relay of %s: %s; retrying", self._service, type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = self._poll
            if published < self._batch_max:
                await self._wake.sleep(self._poll)

    async def publish_round(self) -> int:
        """Publish up to ``batch_max`` unsent rows in order; return how many were sent."""
        async with self._db.transaction() as session:
            if not self._db.is_sqlite:
                locked = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)").bindparams(k=_RELAY_LOCK_KEY)
                )
                if not locked:
                    return 0
            conn = await session.connection()
            rows = (
                await conn.execute(
                    select(_OUTBOX.c.id, _OUTBOX.c.topic, _OUTBOX.c.key, _OUTBOX.c.value)
                    .where(_OUTBOX.c.sent_at.is_(None))
                    .order_by(_OUTBOX.c.id)
                    .limit(self._batch_max)
                )
            ).all()
            if not rows:
                return 0
            confirmations = [
                await self._send(topic, value, key.encode() if key else None)
                for _id, topic, key, value in rows
            ]
            await asyncio.gather(*confirmations)
            await conn.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id.in_([r[0] for r in rows]))
                .values(sent_at=utc_now())
            )
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)

    async def refresh_gauges(self) -> None:
        """Set the backlog gauges from the table (called periodically)."""
        async with self._db.sessions() as session:
            conn = await session.connection()
            count, oldest = (
                await conn.execute(
                    select(func.count(), func.min(_OUTBOX.c.created_at)).where(
                        _OUTBOX.c.sent_at.is_(None)
                    )
                )
            ).one()
        OUTBOX_BACKLOG.labels(self._service).set(count)
        age = 0.0
        if oldest is not None:
            created = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            age = (utc_now() - created).total_seconds()
        OUTBOX_OLDEST_AGE.labels(self._service).set(age)

    async def backlog(self) -> int:
        """Unsent rows now."""
        async with self._db.sessions() as session:
            count = await session.scalar(
                select(func.count()).select_from(_OUTBOX).where(_OUTBOX.c.sent_at.is_(None))
            )
        return int(count or 0)
