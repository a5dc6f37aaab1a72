"""The transactional outbox and its relay.

A service never publishes from a handler or an HTTP request: it adds an outbox row
in the same transaction as its own state change (``enqueue``), and the relay
publishes committed rows. So an event exists if and only if its state change was
committed, and the counter keeps working while Kafka is down.

Ordering: rows are published in ``id`` order by one relay at a time per service
database (SQLite: one relay per file; PostgreSQL: the relay holds a transaction-scoped
advisory lock of its service while it publishes), and the producer keeps per-partition
order, so a dossier's events reach Kafka in the order they were committed.

A row is marked sent only after the broker confirmed every record of its round;
a crash in between republishes the round (at least once; consumers dedupe on
``event_id``).

The broker is not the only copy. A sent row keeps where the broker put it
(``kafka_partition``, ``kafka_offset``) for ``outbox_retention_days``. Before each round
the relay asks the broker for the end offset of every partition it has published to;
an end at or before the first record of the relay's latest round there means the broker
lost records (the memory-only local broker restarted, a topic was recreated, a log was
truncated by a round or more): every retained row the broker lacks (placed at or past
that end) is marked unsent again and goes out first, in ``id`` order, before newer rows.
A broker that loses records between that check and the round's own publishing shows it
in the round's confirmations (an offset below the partition's next one): then every
other retained row of that partition is published again. A loss of only part of the
latest round is not seen (the local broker under-reports ends, see ``_lost``).
Consumers skip what their inbox already holds, which is why inbox retention is at least
outbox retention. Each topic has one publishing service, so the relay's marks are its
own to keep.

Rows are deleted after retention, except that on a compacted topic (the keys) the
newest row of each key stays, so the broker's state can always be rebuilt.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    bindparam,
    delete,
    exists,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.clock import utc_now
from shared.db import AwareDateTime, Database, table
from shared.events import Envelope, Payload
from shared.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISHED,
    OUTBOX_REPUBLISHED,
    RETENTION_PURGED,
)
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)


def relay_lock_key(service: str) -> int:
    """The PostgreSQL advisory lock of one service's relay: services sharing a server
    publish side by side; two instances of one service take turns."""
    return zlib.crc32(f"motcua-outbox-relay:{service}".encode())


class OutboxRow(SQLModel, table=True):
    """An event waiting to be published, or already published (``sent_at`` set)."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_unsent", "sent_at", "id"),
        Index("ix_outbox_placed", "topic", "kafka_partition", "kafka_offset"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    topic: str = Field(sa_column=Column(String(200), nullable=False))
    key: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    value: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime, nullable=True))
    kafka_partition: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    """Where the broker put it (with ``kafka_offset``), once sent."""
    kafka_offset: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


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
    envelope, values = _row(payload, occurred_at, source, dossier_code, correlation_id)
    if key is not None:
        values["key"] = key
    session.add(OutboxRow.model_validate(values))
    return envelope


def outbox_values(
    payload: Payload,
    *,
    occurred_at: datetime,
    source: str,
    dossier_code: str | None,
    correlation_id: uuid.UUID | None = None,
) -> dict[str, object]:
    """The outbox row ``enqueue`` adds, as column values, for a hop that inserts a batch
    of rows in one statement (in its store module, in the caller's transaction); the
    rows' order is their publishing order."""
    return _row(payload, occurred_at, source, dossier_code, correlation_id)[1]


def _row(
    payload: Payload,
    occurred_at: datetime,
    source: str,
    dossier_code: str | None,
    correlation_id: uuid.UUID | None,
) -> tuple[Envelope, dict[str, object]]:
    """A new envelope for ``payload`` and its outbox row's values (keyed by the dossier)."""
    envelope = Envelope.wrap(
        payload,
        occurred_at=occurred_at,
        source=source,
        dossier_code=dossier_code,
        correlation_id=correlation_id,
    )
    values: dict[str, object] = {
        "topic": payload.topic.name,
        "key": envelope.dossier_code,
        "value": envelope.encode(),
        "created_at": utc_now(),
    }
    return envelope, values


_OUTBOX = table(OutboxRow)

Partition = tuple[str, int]
"""A topic and one of its partitions."""


class Placed(Protocol):
    """What the broker answers for a published record (aiokafka's ``RecordMetadata``)."""

    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


Send = Callable[[str, bytes, bytes | None], Awaitable[Awaitable[Placed]]]
"""Start sending one record (topic, value, key); the awaitable it returns confirms it
with where the broker put it."""

EndOffsets = Callable[[Collection[Partition]], Awaitable[dict[Partition, int]]]
"""The broker's end offset (the offset its next record will get) of each partition."""


@dataclass
class Mark:
    """What the relay last placed in one partition: the first offset of its latest round
    there (``floor``) and the offset the next record should get (``next``)."""

    floor: int
    next: int


@dataclass(frozen=True)
class Lost:
    """Records the broker no longer has: from ``end`` on, in one partition."""

    partition: Partition
    end: int
    published: int


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
        end_offsets: EndOffsets | None = None,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self._db = db
        self._send = send
        self._service = service
        self._batch_max = batch_max
        self._poll = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._end_offsets = end_offsets
        self._marks: dict[Partition, Mark] | None = None
        """Per partition published to: read from the table at the first round, then kept
        from the broker's confirmations."""
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
        """Queue again what the broker lost, then publish up to ``batch_max`` unsent rows in
        order and record where each went; return how many were sent."""
        async with self._db.transaction() as session:
            if not self._db.is_sqlite:
                locked = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)").bindparams(
                        k=relay_lock_key(self._service)
                    )
                )
                if not locked:
                    return 0
            conn = await session.connection()
            marks = await self._load_marks(conn)
            if self._end_offsets is not None and marks:
                for lost in await self._lost(conn, marks):
                    await self._queue_again(conn, lost, marks)
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
            placed = await asyncio.gather(*confirmations)
            await conn.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == bindparam("row_id"))
                .values(
                    sent_at=utc_now(),
                    kafka_partition=bindparam("placed_partition"),
                    kafka_offset=bindparam("placed_offset"),
                ),
                [
                    {"row_id": r[0], "placed_partition": p.partition, "placed_offset": p.offset}
                    for r, p in zip(rows, placed, strict=True)
                ],
            )
            await self._check_confirmations(conn, rows, placed, marks)
        OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)

    async def _load_marks(self, conn: AsyncConnection) -> dict[Partition, Mark]:
        """The marks, read once from the retained rows (see ``_read_mark``)."""
        if self._marks is None:
            placed = (
                await conn.execute(
                    select(_OUTBOX.c.topic, _OUTBOX.c.kafka_partition)
                    .where(_OUTBOX.c.kafka_offset.is_not(None))
                    .group_by(_OUTBOX.c.topic, _OUTBOX.c.kafka_partition)
                )
            ).all()
            marks: dict[Partition, Mark] = {}
            for topic, partition in placed:
                mark = await self._read_mark(conn, (topic, int(partition)))
                if mark is not None:
                    marks[(topic, int(partition))] = mark
            self._marks = marks
        return self._marks

    async def _read_mark(self, conn: AsyncConnection, partition: Partition) -> Mark | None:
        """A partition's mark from the retained rows: the highest offset, and the lowest
        offset of the round that placed it (its rows share one ``sent_at``)."""
        topic, number = partition
        here = (_OUTBOX.c.topic == topic, _OUTBOX.c.kafka_partition == number)
        highest = await conn.scalar(select(func.max(_OUTBOX.c.kafka_offset)).where(*here))
        if highest is None:
            return None
        last_round = (
            select(_OUTBOX.c.sent_at)
            .where(*here, _OUTBOX.c.kafka_offset == highest)
            .limit(1)
            .scalar_subquery()
        )
        floor = await conn.scalar(
            select(func.min(_OUTBOX.c.kafka_offset)).where(
                *here,
                _OUTBOX.c.kafka_offset > highest - self._batch_max,
                _OUTBOX.c.sent_at == last_round,
            )
        )
        return Mark(int(floor if floor is not None else highest), int(highest) + 1)

    async def _lost(self, conn: AsyncConnection, marks: dict[Partition, Mark]) -> list[Lost]:
        """Partitions whose end lies at or before the first record of the latest round
        there: the broker lost that round at least.

        Not ``end < next``: the local broker reports the end of a partition as the first
        offset of its last record batch plus one, short of the real end whenever a batch
        held several records; the first record of the round is always covered. A mark
        that says "lost" is read again from the table first: another instance of the
        service may have published (or published again) there since this one did.
        """
        assert self._end_offsets is not None
        watched = [p for p, m in marks.items() if m.floor >= 0]
        ends = await self._end_offsets(watched) if watched else {}
        lost: list[Lost] = []
        for partition, end in ends.items():
            if end > marks[partition].floor:
                continue
            fresh = await self._read_mark(conn, partition)
            if fresh is None:
                del marks[partition]
                continue
            marks[partition] = fresh
            if end <= fresh.floor:
                lost.append(Lost(partition, end, fresh.next))
        return lost

    async def _queue_again(
        self,
        conn: AsyncConnection,
        lost: Lost,
        marks: dict[Partition, Mark],
        *,
        keep: Sequence[int] = (),
    ) -> None:
        """Mark unsent the retained rows of ``lost.partition`` placed at ``lost.end`` or
        later (except the ids in ``keep``); the partition goes on from its end."""
        topic, partition = lost.partition
        result = await conn.execute(
            update(_OUTBOX)
            .where(
                _OUTBOX.c.topic == topic,
                _OUTBOX.c.kafka_partition == partition,
                _OUTBOX.c.kafka_offset >= lost.end,
                _OUTBOX.c.id.not_in(keep),
            )
            .values(sent_at=None, kafka_partition=None, kafka_offset=None)
        )
        again = int(getattr(result, "rowcount", 0) or 0)
        marks[lost.partition] = Mark(floor=-1, next=lost.end)
        OUTBOX_REPUBLISHED.labels(self._service, topic).inc(again)
        log.warning(
            "%s: the broker has lost %s[%d] from offset %d (%d had been published there): "
            "publishing %d retained events again",
            self._service,
            topic,
            partition,
            lost.end,
            lost.published,
            again,
        )

    async def _check_confirmations(
        self,
        conn: AsyncConnection,
        rows: Sequence[tuple[int, str, str | None, bytes]],
        placed: Sequence[Placed],
        marks: dict[Partition, Mark],
    ) -> None:
        """Move the marks on; a confirmation below a partition's next offset means the
        broker lost records since the check that opened the round: publish the
        partition's other retained rows again."""
        lowest: dict[Partition, int] = {}
        highest: dict[Partition, int] = {}
        for (_id, topic, _key, _value), where in zip(rows, placed, strict=True):
            partition = (topic, where.partition)
            lowest[partition] = min(lowest.get(partition, where.offset), where.offset)
            highest[partition] = max(highest.get(partition, where.offset), where.offset)
        ids = [r[0] for r in rows]
        for partition, low in lowest.items():
            mark = marks.get(partition)
            if mark is not None and low < mark.next:
                # the table's word: another instance may have published here since
                topic, number = partition
                before = await conn.scalar(
                    select(func.max(_OUTBOX.c.kafka_offset)).where(
                        _OUTBOX.c.topic == topic,
                        _OUTBOX.c.kafka_partition == number,
                        _OUTBOX.c.id.not_in(ids),
                    )
                )
                if before is not None and low <= before:
                    await self._queue_again(conn, Lost(partition, 0, before + 1), marks, keep=ids)
            marks[partition] = Mark(floor=low, next=highest[partition] + 1)

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


async def purge_outbox(
    db: Database, *, older_than: datetime, service: str, compacted: Collection[str] = ()
) -> int:
    """Delete rows sent before ``older_than``; on ``compacted`` topics only rows a newer
    row of the same key supersedes. Return how many."""
    newer = _OUTBOX.alias("newer")
    superseded = exists().where(
        newer.c.topic == _OUTBOX.c.topic,
        newer.c.key == _OUTBOX.c.key,
        newer.c.id > _OUTBOX.c.id,
    )
    async with db.transaction() as session:
        conn = await session.connection()
        result = await conn.execute(
            delete(_OUTBOX).where(
                _OUTBOX.c.sent_at.is_not(None),
                _OUTBOX.c.sent_at < older_than,
                _OUTBOX.c.topic.not_in(list(compacted)) | superseded,
            )
        )
    purged = int(getattr(result, "rowcount", 0) or 0)
    if purged:
        RETENTION_PURGED.labels(service, "outbox").inc(purged)
    return purged
