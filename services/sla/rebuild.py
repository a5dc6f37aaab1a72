"""Rebuild the tracker's tables from the topics (``motcua sla rebuild``).

The lifecycle and routing topics hold every fact the clocks are made of; the sla topic
holds what the tracker already announced. A rebuild drops the service's tables, marks
as emitted every flag and class found on the sla topic, then applies the facts in
batches through the same ``Tracker.apply`` the consumer uses. So the rebuilt state is
the live state, and nothing already announced is announced again (of a dossier's due
times, only the latest, if the topic's latest differs); what was decided but never
published (an outbox row lost with the old tables) is published by the new one.

Run it with the sla service stopped: the tables are replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.sla import store
from services.sla.app import FINISHED_FLAG, Tracker
from services.sla.domain import DOSSIER_STEP
from shared.events import ClockStarted, Envelope, SlaDueTimes, SlaFinished, SlaWarning, decode
from shared.migrations import upgrade


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild did."""

    events_applied: int
    flags_known: int
    clocks: int


@dataclass(slots=True)
class Announced:
    """What the sla topic already carries: flags (code, kind, step), the codes whose clock
    start is there, and each dossier's latest due times (``sla.due_times``, as JSON)."""

    flags: set[tuple[str, str, int]] = field(default_factory=set)
    started: set[str] = field(default_factory=set)
    due_times: dict[str, object] = field(default_factory=dict)


def announced(published: Iterable[Envelope]) -> Announced:
    """What ``published`` (the sla topic, in order) announced."""
    found = Announced()
    for event in published:
        code = event.dossier_code
        if code is None:
            continue
        if event.type == SlaWarning.event_type:
            warning = event.body(SlaWarning)
            step = DOSSIER_STEP if warning.step is None else warning.step
            found.flags.add((code, warning.kind, step))
        elif event.type == SlaFinished.event_type:
            found.flags.add((code, FINISHED_FLAG, DOSSIER_STEP))
        elif event.type == ClockStarted.event_type:
            found.started.add(code)
        elif event.type == SlaDueTimes.event_type:
            found.due_times[code] = event.body(SlaDueTimes).model_dump(mode="json")
    return found


async def rebuild(
    tracker: Tracker,
    facts: Sequence[Envelope],
    published: Iterable[Envelope],
    *,
    batch: int = 2000,
) -> RebuildReport:
    """Replace the tracker's tables with the fold of ``facts`` (topic order per partition)."""
    db = tracker.db
    await upgrade(db, "sla")  # the tables made again below are the newest revision's
    await store.drop_tables(db, store.REBUILT_TABLES)
    await db.create_tables(store.REBUILT_TABLES)
    known = announced(published)
    now: datetime = tracker.now()
    async with db.transaction() as session:
        await store.insert_flags(
            session,
            [
                {"code": c, "kind": k, "step": s, "emitted_at": now}
                for c, k, s in sorted(known.flags)
            ],
        )
    for start in range(0, len(facts), batch):
        chunk = facts[start : start + batch]
        async with db.transaction() as session:
            await tracker.apply(session, chunk)
            await store.mark_applied(session, chunk, now)
    await _drop_announced(tracker, known)
    async with db.sessions() as session:
        clocks = await store.count_clocks(session)
    return RebuildReport(len(facts), len(known.flags), clocks)


async def _drop_announced(tracker: Tracker, known: Announced) -> None:
    """Remove the outbox rows of clock starts the sla topic already carries, and every
    dossier's due times but its latest, which stays only if it differs from the latest
    the topic carries."""
    async with tracker.db.transaction() as session:
        stale: list[int] = []
        latest: dict[str, tuple[int, object]] = {}
        for row_id, key, value in await store.outbox_rows(session):
            event = decode(value)
            if key in known.started and event.type == ClockStarted.event_type:
                stale.append(row_id)
            elif key is not None and event.type == SlaDueTimes.event_type:
                if key in latest:
                    stale.append(latest[key][0])
                latest[key] = (row_id, event.body(SlaDueTimes).model_dump(mode="json"))
        stale += [
            row_id
            for code, (row_id, payload) in latest.items()
            if known.due_times.get(code) == payload
        ]
        await store.delete_outbox_rows(session, stale)
