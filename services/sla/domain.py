"""Pure rules of the legal clock (thời hạn giải quyết): a ledger folded into a clock.

A dossier's clock is never stored as a bare number. It is the fold (:func:`replay`) of
its *terms* (reception instant, time limit, supplement rule, appointment slip, chain
steps) and its *ledger* (every action, in ``sequence`` order) over the shared working
calendar. Every ledger line says where the due time stands after it and why it moved.

Invariants:
- the due time used for the class (``due_at``) starts as the appointment slip's (or the
  time limit's from the reception instant) and moves only by a pause (later by the
  working time waited) or a restart (the full time limit from the complete
  resubmission); an extension (apology, Mẫu 04) changes only the date shown
  (``shown_due_at``), never the class;
- the clock runs while no pause is open; pauses may overlap (a payment awaited while
  a supplement is awaited) and the clock runs again when the last one closes;
- once closed (finished, withdrawn or refused) later actions are recorded and ignored;
- the fold is deterministic: the same terms and ledger give the same clock.

Warning windows scale with the time limit, so that no dossier is flagged at the instant
it is received: a window is the smaller of its setting (``Policy.due_soon_window``, 8
working hours; ``Policy.apology_window``, 3) and a fixed share of the dossier's own
working-time limit, the *allowance* (``Clock.allowance``: the working time from the
clock's start to its first due time; a restart measures it again). The shares are one
half for due soon and one quarter for the apology warning. So a same-day dossier received
at 08:00 (7.5 working hours) is due soon from 3.75 and needs an apology letter from
1.875 working hours before 17:00, while a dossier of 3 working days or more gets the
settings' 8 and 3 hours. A chain step's windows scale with its own allowance the same way.

A chain step never ends after its dossier's due time: a step starts with its own working
hours, unless the steps still to come do not fit the working time the dossier has left,
in which case each is given its share of what is left (``hours / hours still to come``),
and its due time is never later than the dossier's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from shared.calendar import Duration, WorkCalendar
from shared.calendar.model import VN_TZ
from shared.chain import fit_step

HOUR = timedelta(hours=1)
_US = timedelta(microseconds=1)
_JUST_AFTER = timedelta(microseconds=1)
RECEPTION_SEQUENCE = 0
"""The ledger position of the reception; intake numbers actions from 1."""

SupplementRule = Literal["pause", "restart"]
Granularity = Literal["date", "time"]
FlagKind = Literal["due_soon", "apology_needed", "overdue"]
DOSSIER_STEP = -1
"""The ``step`` of a flag about the whole dossier (chain steps count from 0)."""


class ClockState(StrEnum):
    """Where a dossier stands at an instant."""

    IN_TIME = "in_time"  # trong hạn
    DUE_SOON = "due_soon"  # sắp đến hạn
    OVERDUE = "overdue"  # quá hạn
    PAUSED = "paused"  # tạm dừng: supplement, payment or stop awaited
    FINISHED = "finished"  # closed: result ready, withdrawn or refused


class Outcome(StrEnum):
    """The final class of a finished dossier (766 index)."""

    EARLY = "early"  # trước hạn
    ON_TIME = "on_time"  # đúng hạn
    LATE = "late"  # trễ hạn


class Closure(StrEnum):
    """Why a clock stopped for good."""

    FINISHED = "finished"  # đã xử lý xong (9), or returned (10) without 9
    WITHDRAWN = "withdrawn"  # rút hồ sơ: no class
    REFUSED = "refused"  # từ chối: no class


_PAUSES: dict[str, str] = {
    "request_supplement": "supplement",
    "request_payment": "payment",
    "stop": "stopped",
}
_RESUMES: dict[str, str] = {
    "submit_supplement": "supplement",
    "payment_received": "payment",
    "resume": "stopped",
}


DUE_SOON_SHARE = Decimal("0.5")
"""The largest share of a dossier's allowance that its due-soon window may take."""
APOLOGY_SHARE = Decimal("0.25")
"""The largest share of a dossier's allowance that its apology window may take."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings of the clock (defaults from DOMAIN.md).

    The windows are the longest ones; a short time limit gets shorter ones (see
    :func:`window`).
    """

    due_soon_window: timedelta = 8 * HOUR
    apology_window: timedelta = 3 * HOUR
    granularity: Granularity = "date"
    max_extensions: int = 1

    def windows(self, allowance: timedelta) -> dict[FlagKind, timedelta]:
        """The due-soon and apology windows of a clock or step with ``allowance``."""
        return {
            "due_soon": window(self.due_soon_window, DUE_SOON_SHARE, allowance),
            "apology_needed": window(self.apology_window, APOLOGY_SHARE, allowance),
        }


def window(setting: timedelta, share: Decimal, allowance: timedelta) -> timedelta:
    """A warning window: the smaller of ``setting`` and ``share`` of ``allowance``.

    Never negative; zero for a zero allowance (such a clock gets no early warning).
    """
    scaled = timedelta(microseconds=int(allowance // _US * share))
    return max(timedelta(0), min(setting, scaled))


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One office's share of an inter-agency chain (liên thông), in working hours."""

    office: str
    hours: Decimal


@dataclass(frozen=True, slots=True)
class Terms:
    """What the clock was started under: kept as received (the dossier keeps its rules)."""

    received_at: datetime
    time_limit: Duration
    supplement_rule: SupplementRule
    slip_due_at: datetime | None = None
    steps: tuple[ChainStep, ...] = ()


@dataclass(frozen=True, slots=True)
class Entry:
    """One recorded action. ``action`` is ``received`` or a ``DossierAction`` value."""

    sequence: int
    at: datetime
    action: str
    reason: str | None = None
    new_due_at: datetime | None = None
    office: str | None = None


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """An entry as the clock read it: the due time after it, and how it moved.

    ``due_at`` is the due time of the class; ``extended_due_at`` the apology's new date
    when one is shown (it never changes the class).
    """

    sequence: int
    at: datetime
    kind: str
    reason: str | None
    due_at: datetime | None
    extended_due_at: datetime | None
    note: str


@dataclass(frozen=True, slots=True)
class StepClock:
    """The clock of one chain step: who held the dossier, from when, due when."""

    index: int
    office: str
    started_at: datetime | None
    due_at: datetime | None
    ended_at: datetime | None
    allowance: timedelta = timedelta(0)
    """Working time from the step's start to its due time (what its windows scale with)."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """An instant at which a flag becomes due."""

    kind: FlagKind
    step: int
    at: datetime
    due_at: datetime
    office: str | None


@dataclass(frozen=True, slots=True)
class Clock:
    """A dossier's clock after its ledger (see :func:`replay`)."""

    calendar: WorkCalendar = field(repr=False)
    due_at: datetime | None
    shown_due_at: datetime | None
    allowance: timedelta
    started_at: datetime
    running_since: datetime | None
    paused_since: datetime | None
    open_pauses: frozenset[str]
    worked: timedelta
    closure: Closure | None
    closed_at: datetime | None
    supplement_requests: int
    extensions: int
    steps: tuple[StepClock, ...]
    current_step: int | None
    ledger: tuple[LedgerLine, ...]

    @property
    def is_closed(self) -> bool:
        """Whether the clock stopped for good."""
        return self.closure is not None

    def _reference(self, now: datetime) -> datetime:
        """The instant the clock stands at: now while running, else where it stopped."""
        if self.closed_at is not None:
            return self.closed_at
        if self.paused_since is not None:
            return self.paused_since
        return now

    def working_used(self, now: datetime) -> timedelta:
        """Working time the clock ran since its (re)start, up to ``now`` or its stop."""
        if self.running_since is None:
            return self.worked
        return self.worked + self.calendar.working_time_between(self.running_since, now)

    def working_left(self, now: datetime) -> timedelta | None:
        """Working time to the due time (negative once overdue); ``None`` without one."""
        if self.due_at is None:
            return None
        return self.calendar.working_time_between(self._reference(now), self.due_at)

    def state_at(self, now: datetime, policy: Policy) -> ClockState:
        """The state at ``now``: overdue strictly after the due time."""
        if self.is_closed:
            return ClockState.FINISHED
        if self.open_pauses:
            return ClockState.PAUSED
        if self.due_at is None:
            return ClockState.IN_TIME
        if now > self.due_at:
            return ClockState.OVERDUE
        if now < self.due_soon_from(self.due_at, policy.windows(self.allowance)):
            return ClockState.IN_TIME
        return ClockState.DUE_SOON

    def outcome(self, policy: Policy) -> Outcome | None:
        """The class once finished (withdrawn and refused dossiers have none)."""
        if self.closure is not Closure.FINISHED or self.closed_at is None:
            return None
        return classify(
            self.closed_at, self.due_at, self.supplement_requests, granularity=policy.granularity
        )

    def step_outcome(self, step: StepClock, policy: Policy) -> Outcome | None:
        """Whether one chain step ended early, on time or late (form 6)."""
        if step.ended_at is None or step.started_at is None:
            return None
        return classify(step.ended_at, step.due_at, 0, granularity=policy.granularity)

    def thresholds(self, policy: Policy) -> list[Threshold]:
        """Every flag instant of the running clock; none while paused or closed.

        The dossier's flags, and the current step's when the chain has several steps.
        A window of zero (zero allowance) gives no early warning, only the overdue flag.
        """
        if self.running_since is None or self.is_closed:
            return []
        found: list[Threshold] = []
        if self.due_at is not None:
            found += self._flags_before(self.due_at, self.allowance, DOSSIER_STEP, None, policy)
        if self.current_step is not None and len(self.steps) > 1:
            step = self.steps[self.current_step]
            if step.due_at is not None:
                found += self._flags_before(
                    step.due_at, step.allowance, step.index, step.office, policy
                )
        return found

    def _flags_before(
        self, due: datetime, allowance: timedelta, step: int, office: str | None, policy: Policy
    ) -> list[Threshold]:
        assert self.running_since is not None
        left = self.calendar.working_time_between(self.running_since, due)
        flags = [
            Threshold(kind, step, self._left_at(left, width), due, office)
            for kind, width in policy.windows(allowance).items()
            if width > timedelta(0)
        ]
        return [*flags, Threshold("overdue", step, due + _JUST_AFTER, due, office)]

    def _left_at(self, left: timedelta, window: timedelta) -> datetime:
        """The earliest instant from which at most ``window`` of working time is left,
        ``left`` being the working time from the clock's last (re)start to the due time.

        Counted from the clock's last (re)start: a clock resumed with less left than the
        window is inside it from the resumption on.
        """
        assert self.running_since is not None
        if left <= window:
            return self.running_since
        return self.calendar.add_working_time(self.running_since, left - window)

    def due_soon_from(self, due: datetime, windows: dict[FlagKind, timedelta]) -> datetime:
        """When a running clock due at ``due`` enters its due-soon window (``due`` itself
        when the window is zero)."""
        width = windows["due_soon"]
        if width <= timedelta(0) or self.running_since is None:
            return due
        return self._left_at(self.calendar.working_time_between(self.running_since, due), width)

    def flags_due(
        self, now: datetime, policy: Policy, emitted: Iterable[tuple[str, int]]
    ) -> list[Threshold]:
        """Flags whose instant has come at ``now`` and that were not emitted yet."""
        done = set(emitted)
        return [t for t in self.thresholds(policy) if t.at <= now and (t.kind, t.step) not in done]

    def next_deadline(self, policy: Policy, emitted: Iterable[tuple[str, int]]) -> datetime | None:
        """The earliest instant of a flag not yet emitted (what the scheduler waits for)."""
        return earliest_pending(self.thresholds(policy), emitted)

    def due_soon_at(self, policy: Policy) -> datetime | None:
        """When the dossier enters the due-soon window (running clocks only)."""
        if self.running_since is None or self.due_at is None or self.is_closed:
            return None
        return self.due_soon_from(self.due_at, policy.windows(self.allowance))


def earliest_pending(
    thresholds: Iterable[Threshold], emitted: Iterable[tuple[str, int]]
) -> datetime | None:
    """The earliest instant among ``thresholds`` whose (kind, step) is not in ``emitted``."""
    done = set(emitted)
    return min((t.at for t in thresholds if (t.kind, t.step) not in done), default=None)


def classify(
    finished_at: datetime,
    due_at: datetime | None,
    supplement_requests: int,
    *,
    granularity: Granularity = "date",
) -> Outcome:
    """Early, on time or late (766 index).

    - more than one supplement request during processing: late, whatever the dates;
    - no due time: on time (it cannot be late);
    - by ``date`` (default): before the due date (Vietnam time) early, on it on time,
      after it late;
    - by ``time``: after the due instant late; otherwise by date (before the due date
      early, on it on time).
    """
    if supplement_requests > 1:
        return Outcome.LATE
    if due_at is None:
        return Outcome.ON_TIME
    if granularity == "time" and finished_at > due_at:
        return Outcome.LATE
    finished_day = finished_at.astimezone(VN_TZ).date()
    due_day = due_at.astimezone(VN_TZ).date()
    if finished_day < due_day:
        return Outcome.EARLY
    return Outcome.ON_TIME if finished_day == due_day else Outcome.LATE


def _hours(amount: timedelta) -> str:
    return f"{amount / HOUR:g}"


@dataclass(slots=True)
class _Fold:
    """The mutable state of one replay; :func:`replay` freezes it into a :class:`Clock`."""

    calendar: WorkCalendar
    terms: Terms
    policy: Policy
    due_at: datetime | None = None
    shown_due_at: datetime | None = None
    allowance: timedelta = timedelta(0)
    running_since: datetime | None = None
    paused_since: datetime | None = None
    open_pauses: set[str] = field(default_factory=set)
    restart_pending: bool = False
    worked: timedelta = timedelta(0)
    closure: Closure | None = None
    closed_at: datetime | None = None
    supplement_requests: int = 0
    extensions: int = 0
    steps: list[StepClock] = field(default_factory=list)
    current_step: int | None = None
    ledger: list[LedgerLine] = field(default_factory=list)

    def line(self, entry: Entry, kind: str, note: str) -> None:
        self.ledger.append(
            LedgerLine(
                entry.sequence, entry.at, kind, entry.reason, self.due_at, self._extended(), note
            )
        )

    def _extended(self) -> datetime | None:
        return self.shown_due_at if self.shown_due_at != self.due_at else None

    def start(self) -> None:
        terms = self.terms
        computed = self.calendar.due_at(terms.received_at, terms.time_limit)
        self.due_at = terms.slip_due_at or computed
        self.shown_due_at = self.due_at
        self.running_since = terms.received_at
        self.allowance = self._allowance_from(terms.received_at)
        limit = f"{terms.time_limit.value:g} {terms.time_limit.unit.value}"
        if terms.slip_due_at is None:
            note = f"clock started; time limit {limit} from reception"
        elif computed is not None and computed != terms.slip_due_at:
            note = (
                f"clock started; due time from the appointment slip "
                f"(the time limit {limit} alone gives {computed.isoformat()})"
            )
        else:
            note = f"clock started; time limit {limit}, as on the appointment slip"
        if terms.steps:
            self.steps = [
                StepClock(i, s.office, None, None, None) for i, s in enumerate(terms.steps)
            ]
            note += self._begin_step(0, terms.received_at)
        self.ledger.append(
            LedgerLine(
                RECEPTION_SEQUENCE, terms.received_at, "start", None, self.due_at, None, note
            )
        )

    def _allowance_from(self, start: datetime) -> timedelta:
        if self.due_at is None:
            return timedelta(0)
        return max(timedelta(0), self.calendar.working_time_between(start, self.due_at))

    def _begin_step(self, index: int, at: datetime) -> str:
        """Start step ``index`` at ``at`` (fitted into the dossier's time by
        ``shared.chain.fit_step``); return what the ledger should say of a scaling."""
        hours = [step.hours for step in self.terms.steps[index:]]
        fitted = fit_step(self.calendar, at, hours, self.due_at)
        note = ""
        if fitted.scaled_from is not None:
            note = (
                f"; step {index}'s {fitted.scaled_from:g} h do not fit the working time left "
                f"with the steps to come: given {_hours(fitted.given)} h"
            )
        allowance = max(timedelta(0), self.calendar.working_time_between(at, fitted.due_at))
        self.steps[index] = replace(
            self.steps[index], started_at=at, due_at=fitted.due_at, allowance=allowance
        )
        self.current_step = index
        return note

    def _end_step(self, at: datetime) -> None:
        if self.current_step is not None:
            self.steps[self.current_step] = replace(self.steps[self.current_step], ended_at=at)

    def apply(self, entry: Entry) -> None:
        if self.closure is not None:
            self.line(entry, entry.action, f"ignored: the clock is already {self.closure.value}")
            return
        action = entry.action
        if action in _PAUSES:
            self.pause(entry, _PAUSES[action])
        elif action in _RESUMES:
            self.resume(entry, _RESUMES[action])
        elif action == "extend":
            self.extend(entry)
        elif action == "transfer":
            self.transfer(entry)
        elif action in {"resolve", "return_result"}:
            self.finish(entry)
        elif action in {"withdraw", "refuse"}:
            closure = Closure.WITHDRAWN if action == "withdraw" else Closure.REFUSED
            self.close(entry.at, closure)
            self.line(entry, action, f"clock stopped for good: {closure.value}, no class")
        else:
            self.line(entry, action, "recorded; the clock is unchanged")

    def pause(self, entry: Entry, reason: str) -> None:
        if reason == "supplement":
            self.supplement_requests += 1
        if self.open_pauses:
            self.open_pauses.add(reason)
            self.line(entry, "pause", f"{reason} awaited too; the clock was already stopped")
            return
        self.open_pauses.add(reason)
        assert self.running_since is not None
        self.worked += self.calendar.working_time_between(self.running_since, entry.at)
        self.running_since, self.paused_since = None, entry.at
        self.line(entry, "pause", f"clock stopped: {reason} awaited")

    def resume(self, entry: Entry, reason: str) -> None:
        if reason not in self.open_pauses:
            self.line(entry, "resume", f"ignored: no {reason} was awaited")
            return
        self.open_pauses.discard(reason)
        if reason == "supplement" and self.terms.supplement_rule == "restart":
            self.restart_pending = True
        if self.open_pauses:
            still = ", ".join(sorted(self.open_pauses))
            self.line(entry, "resume", f"{reason} closed; still stopped for {still}")
            return
        assert self.paused_since is not None
        waited = self.calendar.working_time_between(self.paused_since, entry.at)
        self.running_since, self.paused_since = entry.at, None
        self._shift_steps(waited)
        if self.restart_pending:
            self.restart_pending = False
            self.worked = timedelta(0)
            self.due_at = self.calendar.due_at(entry.at, self.terms.time_limit)
            self.shown_due_at = self.due_at
            self.allowance = self._allowance_from(entry.at)
            self._clamp_step()
            note = f"clock restarted: the full time limit runs again ({_hours(waited)} h waited)"
        else:
            self.due_at = self._shifted(self.due_at, waited)
            self.shown_due_at = self._shifted(self.shown_due_at, waited)
            note = f"clock runs again: due time moved {_hours(waited)} working hours later"
        self.line(entry, "resume", note)

    def _shifted(self, due: datetime | None, waited: timedelta) -> datetime | None:
        return None if due is None else self.calendar.add_working_time(due, waited)

    def _shift_steps(self, waited: timedelta) -> None:
        if self.current_step is not None:
            step = self.steps[self.current_step]
            self.steps[self.current_step] = replace(step, due_at=self._shifted(step.due_at, waited))

    def _clamp_step(self) -> None:
        """Keep the current step's due time within the dossier's (after a restart)."""
        if self.current_step is None or self.due_at is None:
            return
        step = self.steps[self.current_step]
        if step.due_at is not None and step.due_at > self.due_at:
            self.steps[self.current_step] = replace(step, due_at=self.due_at)

    def extend(self, entry: Entry) -> None:
        if entry.new_due_at is None:
            self.line(entry, "extend", "ignored: an extension without a new date")
            return
        if self.extensions >= self.policy.max_extensions:
            self.line(
                entry,
                "extend",
                f"not applied: at most {self.policy.max_extensions} extension(s) allowed",
            )
            return
        self.extensions += 1
        self.shown_due_at = entry.new_due_at
        self.line(
            entry,
            "extend",
            "apology issued: new date shown; the class stays judged against "
            f"{self.due_at.isoformat() if self.due_at else 'no due time'}",
        )

    def transfer(self, entry: Entry) -> None:
        if self.current_step is None or self.current_step + 1 >= len(self.steps):
            self.line(entry, "transfer", "recorded; no further chain step is known")
            return
        self._end_step(entry.at)
        scaled = self._begin_step(self.current_step + 1, entry.at)
        step = self.steps[self.current_step]
        self.line(entry, "transfer", f"step {step.index} starts at {step.office}{scaled}")

    def finish(self, entry: Entry) -> None:
        self.close(entry.at, Closure.FINISHED)
        note = "result ready: processing ended"
        if entry.action == "return_result":
            note = "result returned without a prior resolve: processing ended here"
        self.line(entry, "finish", note)

    def close(self, at: datetime, closure: Closure) -> None:
        if self.running_since is not None:
            self.worked += self.calendar.working_time_between(self.running_since, at)
        self.running_since = self.paused_since = None
        self.open_pauses.clear()
        self.closure, self.closed_at = closure, at
        self._end_step(at)

    def frozen(self) -> Clock:
        return Clock(
            calendar=self.calendar,
            due_at=self.due_at,
            shown_due_at=self.shown_due_at,
            allowance=self.allowance,
            started_at=self.terms.received_at,
            running_since=self.running_since,
            paused_since=self.paused_since,
            open_pauses=frozenset(self.open_pauses),
            worked=self.worked,
            closure=self.closure,
            closed_at=self.closed_at,
            supplement_requests=self.supplement_requests,
            extensions=self.extensions,
            steps=tuple(self.steps),
            current_step=self.current_step,
            ledger=tuple(self.ledger),
        )


def replay(terms: Terms, entries: Sequence[Entry], calendar: WorkCalendar, policy: Policy) -> Clock:
    """The clock after ``entries``, applied in ``sequence`` order (duplicates once).

    A result returned after the result was ready is recorded but does not move the end
    of processing: the statistics use the time of 9 when both exist.
    """
    fold = _Fold(calendar, terms, policy)
    fold.start()
    seen: set[int] = set()
    for entry in sorted(entries, key=lambda e: e.sequence):
        if entry.sequence in seen or entry.sequence == RECEPTION_SEQUENCE:
            continue
        seen.add(entry.sequence)
        fold.apply(entry)
    return fold.frozen()


@dataclass(frozen=True, slots=True)
class Folded:
    """A clock and the instants the tracker keeps of it, computed once under one policy:
    ``due_soon_at`` is ``clock.due_soon_at(policy)``, ``thresholds`` is
    ``clock.thresholds(policy)``."""

    clock: Clock
    due_soon_at: datetime | None
    thresholds: tuple[Threshold, ...]

    def next_deadline(self, emitted: Iterable[tuple[str, int]]) -> datetime | None:
        """``clock.next_deadline(policy, emitted)``."""
        return earliest_pending(self.thresholds, emitted)


def fold(terms: Terms, entries: Sequence[Entry], calendar: WorkCalendar, policy: Policy) -> Folded:
    """:func:`replay`, with the instants the tracker keeps of the clock."""
    clock = replay(terms, entries, calendar, policy)
    thresholds = tuple(clock.thresholds(policy))
    due_soon = (t.at for t in thresholds if t.kind == "due_soon" and t.step == DOSSIER_STEP)
    # the dossier's due-soon flag is at its due-soon instant; without one (a zero window,
    # a paused or closed clock) ``due_soon_at`` says which it is
    due_soon_at = next(due_soon, None) or clock.due_soon_at(policy)
    return Folded(clock, due_soon_at, thresholds)
