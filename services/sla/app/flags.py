"""The scheduler's role: raise each warning once when its instant comes.

Clocks are claimed by the ``next_deadline`` index. A flag is written to ``sla_flag``
(unique per dossier, kind and step) in the transaction of the outbox row that announces
it, so each warning is published exactly once per dossier and step, however many
trackers run. A refold after a calendar change may move due times: they are published
(``sla.due_times``) as the consumer publishes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter, Histogram
from sqlmodel.ext.asyncio.session import AsyncSession

from services.sla import store
from services.sla.app.core import TrackerCore, moved_due_times
from services.sla.domain import DOSSIER_STEP, HOUR, Threshold
from shared.events import SlaDueTimes, SlaWarning

log = logging.getLogger(__name__)

FLAGS_EMITTED = Counter("motcua_sla_flags_total", "Warnings and flags emitted.", ["kind"])
TIME_TO_FLAG = Histogram(
    "motcua_sla_time_to_flag_seconds",
    "How late a warning or flag was emitted after its instant.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


@dataclass(slots=True)
class _Round:
    """What one scheduler round refolded: flags due, new deadlines, moved due times."""

    due: list[tuple[store.ClockRow, Threshold]] = field(default_factory=list)
    updates: list[store.Deadlines] = field(default_factory=list)
    moved: list[tuple[store.ClockRow, SlaDueTimes]] = field(default_factory=list)


class Flagging(TrackerCore):
    """The deadline scheduler."""

    async def flag_round(self, now: datetime) -> int:
        """Emit the flags whose instant has come, for up to one batch of clocks.

        Clocks are claimed by the ``next_deadline`` index (no scan of open dossiers);
        returns how many were claimed. Due times a refold moved (after a calendar
        change) are published as the consumer publishes them, for the clocks whose
        version this round wrote.
        """
        db = self.db
        async with db.transaction() as session:
            rows = await store.claim_due(
                session, now, self.sla.scheduler_batch, skip_locked=not db.is_sqlite
            )
            if not rows:
                return 0
            codes = [row.code for row in rows]
            ledgers = await store.load_ledgers(session, codes)
            emitted = await store.emitted_flags(session, codes)
            round_ = self._refold_claimed(rows, ledgers, emitted, now)
            inserted = await store.insert_flags(
                session,
                [
                    {"code": row.code, "kind": t.kind, "step": t.step, "emitted_at": now}
                    for row, t in round_.due
                ],
            )
            await store.add_outbox_rows(
                session,
                [
                    self._warn(row, threshold, now)
                    for row, threshold in round_.due
                    if (row.code, threshold.kind, threshold.step) in inserted
                ],
            )
            await store.set_deadlines(session, round_.updates)
            await self._publish_moved(session, round_.moved, now)
        return len(rows)

    def _refold_claimed(
        self,
        rows: list[store.ClockRow],
        ledgers: Mapping[str, list[store.LedgerEntry]],
        emitted: store.Emitted,
        now: datetime,
    ) -> _Round:
        """Refold the claimed clocks: the flags due now, their new deadlines and the due
        times that moved."""
        found = _Round()
        for row in rows:
            clock = self.replay(row, ledgers[row.code])
            if clock is None:
                found.updates.append(
                    store.Deadlines(row.code, row.version, None, None, None, row.due_times)
                )
                continue
            for threshold in clock.flags_due(now, self.policy, emitted[row.code]):
                found.due.append((row, threshold))
                emitted[row.code].add((threshold.kind, threshold.step))
            if (due_times := moved_due_times(row, clock)) is not None:
                found.moved.append((row, due_times))
            found.updates.append(
                store.Deadlines(
                    row.code,
                    row.version,
                    clock.next_deadline(self.policy, emitted[row.code]),
                    clock.due_at,
                    clock.due_soon_at(self.policy),
                    row.due_times,
                )
            )
        return found

    async def _publish_moved(
        self,
        session: AsyncSession,
        moved: list[tuple[store.ClockRow, SlaDueTimes]],
        now: datetime,
    ) -> None:
        """Put the moved due times in the outbox, for the clocks this round's update
        wrote (a newer version, refolded by the consumer, published its own)."""
        if not moved:
            return
        versions = await store.versions_of(session, [row.code for row, _ in moved])
        await store.add_outbox_rows(
            session,
            [
                self._outbox(due_times, row.code, None, now)
                for row, due_times in moved
                if versions.get(row.code) == row.version
            ],
        )

    def _warn(self, row: store.ClockRow, threshold: Threshold, now: datetime) -> dict[str, object]:
        """The outbox row of a warning whose flag was just inserted."""
        left = self.calendar.working_time_between(now, threshold.due_at)
        FLAGS_EMITTED.labels(threshold.kind).inc()
        TIME_TO_FLAG.observe(max((now - threshold.at).total_seconds(), 0.0))
        return self._outbox(
            SlaWarning(
                kind=threshold.kind,
                step=None if threshold.step == DOSSIER_STEP else threshold.step,
                office=threshold.office or row.office,
                due_at=threshold.due_at,
                working_hours_left=round(left / HOUR, 4),
                at=now,
            ),
            row.code,
            None,
            now,
        )

    async def flag_due(self, now: datetime | None = None) -> datetime | None:
        """Flag everything due at ``now``; return the next deadline (``None``: none)."""
        at = now or self.now()
        if self._recheck:
            self._recheck = False
            try:
                async with self.db.transaction() as session:
                    rechecked = await store.recheck_deadlines(session, at)
            except BaseException:
                self._recheck = True
                raise
            log.info("sla: calendar changed; %d open clocks to refold", rechecked)
        while await self.flag_round(at) >= self.sla.scheduler_batch:
            pass
        async with self.db.sessions() as session:
            return await store.earliest_deadline(session)

    async def run_scheduler(self) -> None:
        """Sleep until the next deadline (or a commit that may bring an earlier one), flag."""
        longest = self.sla.scheduler_max_sleep_seconds
        while True:
            try:
                upcoming = await self.flag_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: retry, the deadlines stay in the table
                log.warning("sla scheduler: %s; retrying", type(exc).__name__)
                upcoming = None
            delay = longest
            if upcoming is not None:
                delay = min(max((upcoming - self.now()).total_seconds(), 0.0), longest)
            if delay > 0:
                await self._wake.sleep(delay)
