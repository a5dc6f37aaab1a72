"""Rebuild the tracker's tables from the topics (``motcua sla rebuild``).

The lifecycle and routing topics hold every fact the clocks are made of; the sla topic
holds what the tracker already announced. A rebuild drops the service's tables, marks
as emitted every flag found on the sla topic, then applies the facts in batches through
the same ``Tracker.apply`` the consumer uses (its batched Core statements; as the only
writer of the fresh tables, the clocks it sees first are inserted, not upserted). So the
rebuilt state is the live state, and nothing already announced is announced again (of a
dossier's due times, only the latest, if the topic's latest differs); what was decided
but never published (an outbox row lost with the old tables) is published by the new
one.

It streams: both sources are read batch by batch (a list in memory, or an async
iterable of batches, e.g. a topic read by partitions), each batch of facts is applied
and committed in its own transaction, and no batch outlives its transaction. What stays
in memory across batches is small per dossier: the codes whose clock start the sla
topic carries, a 16-byte digest of each dossier's latest due times there, and the outbox
row id of due times the rebuild published and might still replace. The facts must come
in each dossier's order per topic (a topic partition's order); a dossier's received and
routed events may come in either order, as they do to the consumer.

Parts run side by side: the facts and announcements of the dossiers whose partition
index (of topics with equal partition counts, all keyed by the dossier code) is in a
part are theirs alone, so after ``reset`` each part may ``replay`` its partitions in its
own process; each sieves the outbox rows it wrote (by the ids its inserts answered), not
the others'.

Run it with the sla service stopped: the tables are replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from services.sla import store
from services.sla.app import FINISHED_FLAG, Tracker
from services.sla.domain import DOSSIER_STEP
from shared.db import Database
from shared.events import ClockStarted, Envelope, SlaDueTimes, SlaFinished, SlaWarning
from shared.migrations import upgrade

Source = Iterable[Envelope] | AsyncIterable[Sequence[Envelope]]
"""Events in order: all at once, or as an async iterable of batches."""


@dataclass(frozen=True, slots=True)
class Replayed:
    """What a replay applied: events of the facts, flags found already announced."""

    events_applied: int
    flags_known: int


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild did."""

    events_applied: int
    flags_known: int
    clocks: int


def _digest(payload: dict[str, Any]) -> bytes:
    """A dossier's due times (``sla.due_times``'s payload, validated here), compared by a
    digest of their JSON (keys sorted)."""
    due_times = SlaDueTimes.model_validate(payload)
    text = json.dumps(due_times.model_dump(mode="json"), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


@dataclass(slots=True)
class Announced:
    """What the sla topic already carries besides flags: the codes whose clock start is
    there, and a digest of each dossier's latest due times (``sla.due_times``)."""

    started: set[str] = field(default_factory=set)
    due_times: dict[str, bytes] = field(default_factory=dict)

    def add(self, published: Iterable[Envelope]) -> set[tuple[str, str, int]]:
        """Note ``published`` (the next events of the sla topic, in order); the flags
        (code, kind, step) they carry."""
        flags: set[tuple[str, str, int]] = set()
        for event in published:
            code = event.dossier_code
            if code is None:
                continue
            if event.type == SlaWarning.event_type:
                warning = event.body(SlaWarning)
                step = DOSSIER_STEP if warning.step is None else warning.step
                flags.add((code, warning.kind, step))
            elif event.type == SlaFinished.event_type:
                flags.add((code, FINISHED_FLAG, DOSSIER_STEP))
            elif event.type == ClockStarted.event_type:
                self.started.add(code)
            elif event.type == SlaDueTimes.event_type:
                self.due_times[code] = _digest(event.payload)
        return flags


@dataclass(slots=True)
class _Sieve:
    """Which outbox rows a batch wrote that are not to be published: clock starts the
    topic carries, and due times replaced by later ones or equal to the topic's latest.

    ``kept`` holds the row id of each dossier's due times still in the outbox, so that
    later due times of the dossier (in a later batch) remove it: at the end, a dossier
    keeps at most its latest due times, and only if they differ from the topic's.
    """

    known: Announced
    kept: dict[str, int] = field(default_factory=dict)

    def stale(self, rows: Sequence[store.Written]) -> list[int]:
        """The ids of ``rows`` (outbox rows one batch wrote, in id order) and of earlier
        kept rows to delete."""
        stale: list[int] = []
        for row_id, key, value in rows:
            if key is None:
                continue
            event = orjson.loads(value)  # its own rows: the type is enough, mostly
            if event["type"] == ClockStarted.event_type and key in self.known.started:
                stale.append(row_id)
            elif event["type"] == SlaDueTimes.event_type:
                if (previous := self.kept.pop(key, None)) is not None:
                    stale.append(previous)
                known = self.known.due_times.get(key)  # digested only if the topic has some
                if known is not None and known == _digest(event["payload"]):
                    stale.append(row_id)
                else:
                    self.kept[key] = row_id
        return stale


async def batches(source: Source, size: int) -> AsyncIterator[list[Envelope]]:
    """``source`` in lists of at most ``size`` events, in its order."""
    parts = source if isinstance(source, AsyncIterable) else _one(source)
    chunk: list[Envelope] = []
    async for part in parts:
        for event in part:
            chunk.append(event)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


async def _one(events: Iterable[Envelope]) -> AsyncIterator[Iterable[Envelope]]:
    yield events


async def reset(db: Database) -> None:
    """Make the sla tables again, empty, at the newest revision."""
    await upgrade(db, "sla")  # the tables made again below are the newest revision's
    await store.drop_tables(db, store.REBUILT_TABLES)
    await db.create_tables(store.REBUILT_TABLES)


async def replay(
    tracker: Tracker, facts: Source, published: Source, *, batch: int = 2000
) -> Replayed:
    """Apply ``facts`` (each dossier's events in topic order) to tables ``reset`` made,
    given ``published``, the sla topic's records of the same dossiers; one transaction
    per batch. Other replays may run at once on other dossiers (other partitions)."""
    db = tracker.db
    now: datetime = tracker.now()
    known = Announced()
    flags = 0
    async for chunk in batches(published, batch):
        found = known.add(chunk)
        async with db.transaction() as session:
            inserted = await store.insert_flags(
                session,
                [{"code": c, "kind": k, "step": s, "emitted_at": now} for c, k, s in sorted(found)],
            )
        flags += len(inserted)
    sieve = _Sieve(known)
    applied = 0
    async for chunk in batches(facts, batch):
        async with db.transaction() as session:
            written = await tracker.apply(session, chunk, sole_writer=True)
            await store.mark_applied(session, chunk, now)
            await store.delete_outbox_rows(session, sieve.stale(written))
        applied += len(chunk)
    return Replayed(applied, flags)


async def rebuild(
    tracker: Tracker, facts: Source, published: Source, *, batch: int = 2000
) -> RebuildReport:
    """Replace the tracker's tables with the fold of ``facts`` (each dossier's events in
    topic order), given ``published``, the sla topic; one transaction per batch."""
    await reset(tracker.db)
    replayed = await replay(tracker, facts, published, batch=batch)
    return RebuildReport(replayed.events_applied, replayed.flags_known, await count(tracker.db))


async def count(db: Database) -> int:
    """How many clocks the tables hold."""
    async with db.sessions() as session:
        return await store.count_clocks(session)
