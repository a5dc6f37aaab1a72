"""Rebuild the tracker's tables from the topics (``motcua sla rebuild``).

The lifecycle and routing topics hold every fact the clocks are made of; the sla topic
holds what the tracker already announced. A rebuild drops the service's tables, marks
as emitted every flag and class found on the sla topic, then applies the facts in
batches through the same ``Tracker.apply`` the consumer uses. So the rebuilt state is
the live state, and nothing already announced is announced again; what was decided but
never published (an outbox row lost with the old tables) is published by the new one.

Run it with the sla service stopped: the tables are replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.sla import store
from services.sla.app import FINISHED_FLAG, Tracker
from services.sla.domain import DOSSIER_STEP
from shared.events import ClockStarted, Envelope, SlaFinished, SlaWarning, decode
from shared.migrations import upgrade


@dataclass(frozen=True, slots=True)
class RebuildReport:
    """What a rebuild did."""

    events_applied: int
    flags_known: int
    clocks: int


def announced(published: Iterable[Envelope]) -> tuple[set[tuple[str, str, int]], set[str]]:
    """Flags already on the sla topic (code, kind, step) and codes whose clock start is."""
    flags: set[tuple[str, str, int]] = set()
    started: set[str] = set()
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
            started.add(code)
    return flags, started


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
    flags, started = announced(published)
    now: datetime = tracker.now()
    async with db.transaction() as session:
        await store.insert_flags(
            session,
            [{"code": c, "kind": k, "step": s, "emitted_at": now} for c, k, s in sorted(flags)],
        )
    for start in range(0, len(facts), batch):
        chunk = facts[start : start + batch]
        async with db.transaction() as session:
            await tracker.apply(session, chunk)
            await store.mark_applied(session, chunk, now)
    await _drop_announced_starts(tracker, started)
    async with db.sessions() as session:
        clocks = await store.count_clocks(session)
    return RebuildReport(len(facts), len(flags), clocks)


async def _drop_announced_starts(tracker: Tracker, started: set[str]) -> None:
    """Remove the outbox rows of clock starts the sla topic already carries."""
    async with tracker.db.transaction() as session:
        stale = [
            row_id
            for row_id, key, value in await store.outbox_rows(session)
            if key in started and decode(value).type == ClockStarted.event_type
        ]
        await store.delete_outbox_rows(session, stale)
