"""What every role of the tracker shares: its database, calendar, policy and clock.

``Tracker`` (``services.sla.app``) is one object with three roles, each in its own
module over this core: ``tracking`` (the consumer applies events), ``flags`` (the
scheduler raises warnings) and ``queries`` (what the API and the gauges read).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from functools import _lru_cache_wrapper, lru_cache
from typing import NamedTuple

from services.sla import store
from services.sla.domain import ChainStep, Clock, Entry, Folded, Terms, fold, replay
from services.sla.settings import SlaSettings
from shared.calendar import Duration, WorkCalendar
from shared.clock import Clock as Now
from shared.clock import utc_now
from shared.db import Database
from shared.events import ClockStarted, SlaDueTimes, SlaFinished, SlaWarning, StepDueTime
from shared.outbox import outbox_values
from shared.settings import ServiceName
from shared.wakeup import Wakeup

SERVICE: ServiceName = "sla"
FINISHED_FLAG = "finished"
FOLD_MEMO_SIZE = 65_536
"""How many folds of clocks without actions the rebuild keeps (about 2 KiB each). The
consumer keeps none: live receptions carry their own microsecond, so their terms seldom
repeat, while a rebuild of imported or minute-stamped dossiers meets the same terms
again and again."""
FOLD_MEMO_PROBE = 20_000
"""Folds after which a memo that found too few repeats is dropped (``FoldMemo``)."""
FOLD_MEMO_MIN_HITS = 0.1
"""The share of those folds that must have come from the memo for it to stay."""


class FoldMemo:
    """Folds of clocks without actions by their terms: the latest ``size`` distinct ones
    (an LRU). After ``probe`` folds, a memo that served fewer than ``min_hits`` of them
    is dropped and folds are computed from then on: distinct terms (dossiers stamped to
    the microsecond) only filled it, and 65,536 folds of chained clocks held ~250 MiB
    that the collector kept walking. Either way each answer is what the fold gives."""

    def __init__(
        self,
        fold_terms: Callable[[TermsKey], Folded],
        size: int,
        *,
        probe: int = FOLD_MEMO_PROBE,
        min_hits: float = FOLD_MEMO_MIN_HITS,
    ) -> None:
        self._plain = fold_terms
        self._cached: _lru_cache_wrapper[Folded] | None = (
            lru_cache(maxsize=size)(fold_terms) if size > 0 else None
        )
        self._probe, self._min_hits = probe, min_hits
        self._folds = 0

    @property
    def active(self) -> bool:
        """Whether folds still come from the memo."""
        return self._cached is not None

    def __call__(self, key: TermsKey) -> Folded:
        cached = self._cached
        if cached is None:
            return self._plain(key)
        self._folds += 1
        if self._folds == self._probe:
            hits = cached.cache_info().hits
            if hits < self._min_hits * self._probe:
                cached.cache_clear()
                self._cached = None
        return cached(key)


class TermsKey(NamedTuple):
    """A clock row's terms exactly as stored, hashable: two rows with equal keys fold to
    the same clock to the last character. Beyond equal instants, the zones they are given
    in count (the clock keeps them as given), and the decimals stay in their written form
    (``2`` and ``2.0`` are equal numbers but print differently in the ledger's notes)."""

    received_at: datetime
    received_zone: tzinfo | None
    slip_due_at: datetime | None
    slip_zone: tzinfo | None
    limit_value: str
    limit_unit: str
    supplement_rule: str | None
    steps: tuple[tuple[str, ...], ...]


def terms_key(row: store.ClockRow) -> TermsKey | None:
    """The terms of a clock row as a :class:`TermsKey`; ``None`` until its reception
    arrived."""
    if row.started_at is None or row.limit_unit is None or row.limit_value is None:
        return None
    slip = row.slip_due_at
    return TermsKey(
        row.started_at,
        row.started_at.tzinfo,
        slip,
        None if slip is None else slip.tzinfo,
        row.limit_value,
        row.limit_unit,
        row.supplement_rule,
        tuple(tuple(step) for step in row.steps or ()),
    )


def _terms(key: TermsKey) -> Terms:
    return Terms(
        received_at=key.received_at,
        time_limit=Duration(Decimal(key.limit_value), key.limit_unit),
        supplement_rule="restart" if key.supplement_rule == "restart" else "pause",
        slip_due_at=key.slip_due_at,
        steps=tuple(ChainStep(office, Decimal(hours)) for office, hours in key.steps),
    )


def terms_of(row: store.ClockRow) -> Terms | None:
    """The terms of a clock row; ``None`` until its reception arrived."""
    key = terms_key(row)
    return None if key is None else _terms(key)


def due_times_of(clock: Clock) -> SlaDueTimes | None:
    """The due times of a clock with a chain, in UTC (so equal times compare equal as
    JSON); ``None`` for a clock without one (a dossier not routed yet)."""
    if not clock.steps:
        return None
    return SlaDueTimes(
        due_at=_utc(clock.due_at),
        steps=[
            StepDueTime(
                step=step.index,
                office=step.office,
                started_at=_utc(step.started_at),
                due_at=_utc(step.due_at),
            )
            for step in clock.steps
        ],
    )


def moved_due_times(row: store.ClockRow, clock: Clock) -> SlaDueTimes | None:
    """The due times to publish after ``row`` was refolded into ``clock``, now kept on the
    row; ``None`` when they equal those last published (or the clock has no chain)."""
    due_times = due_times_of(clock)
    if due_times is None:
        return None
    values = due_times.model_dump(mode="json")
    if values == row.due_times:
        return None
    row.due_times = values
    return due_times


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(UTC)


def entries_of(rows: Sequence[store.LedgerEntry]) -> list[Entry]:
    """The ledger rows as domain entries."""
    return [Entry(r.sequence, r.at, r.action, r.reason, r.new_due_at, r.office) for r in rows]


class TrackerCore:
    """The state the tracker's roles share; ``now`` is the injected clock."""

    def __init__(
        self,
        db: Database,
        *,
        calendar: WorkCalendar,
        sla: SlaSettings,
        clock: Now = utc_now,
        fold_memo: int = 0,
    ) -> None:
        self.db = db
        self._fold_memo_size = fold_memo
        self.calendar = calendar
        self.sla = sla
        self.policy = sla.policy()
        self.now = clock
        self._folds = self._fold_memo()
        self._wake = Wakeup()
        self._recheck = False

    def use_calendar(self, calendar: WorkCalendar) -> None:
        """Compute clocks with ``calendar`` from now on (after a calendar change).

        If it changes working time, the scheduler's next round first brings every stored
        deadline forward to now, so each open clock is refolded with the new calendar: a
        deadline the change moved earlier is not missed, one it moved later is only
        rechecked. A calendar equal in working time (a restart replaying the topic)
        costs nothing.
        """
        changed = not calendar.same_working_time(self.calendar)
        self.calendar = calendar
        self._folds = self._fold_memo()
        if changed:
            self._recheck = True
            self._wake.set()

    def replay(self, row: store.ClockRow, ledger: Sequence[store.LedgerEntry]) -> Clock | None:
        """The clock of a row and its ledger; ``None`` until its reception arrived."""
        terms = terms_of(row)
        return (
            None if terms is None else replay(terms, entries_of(ledger), self.calendar, self.policy)
        )

    def fold(self, row: store.ClockRow, ledger: Sequence[store.LedgerEntry]) -> Folded | None:
        """The fold of a row and its ledger with the instants kept of it (``domain.fold``);
        ``None`` until its reception arrived.

        A clock without actions is a function of its terms alone, and many dossiers share
        them (a reception minute and a time limit): those folds come from a memo of the
        latest ``fold_memo`` distinct terms (none by default; the rebuild's:
        ``FOLD_MEMO_SIZE``) (by :class:`TermsKey`, so a hit is the
        value the fold would give), made again when the calendar changes, dropped if
        the terms seldom repeat (``FoldMemo``). Clocks with
        actions are folded every time: their instants seldom repeat.
        """
        key = terms_key(row)
        if key is None:
            return None
        if ledger:
            return fold(_terms(key), entries_of(ledger), self.calendar, self.policy)
        return self._folds(key)

    def _fold_memo(self) -> FoldMemo:
        calendar, policy = self.calendar, self.policy

        def fold_terms(key: TermsKey) -> Folded:
            return fold(_terms(key), (), calendar, policy)

        return FoldMemo(fold_terms, self._fold_memo_size)

    @staticmethod
    def _outbox(
        payload: ClockStarted | SlaDueTimes | SlaFinished | SlaWarning,
        code: str,
        correlation_id: uuid.UUID | None,
        now: datetime,
    ) -> dict[str, object]:
        """The outbox row announcing ``payload`` about dossier ``code``."""
        return outbox_values(
            payload,
            occurred_at=now,
            source=SERVICE,
            dossier_code=code,
            correlation_id=correlation_id,
        )
