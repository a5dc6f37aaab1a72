"""The early / on-time / late report (Biểu 06/VPCP/KSTT and the 766 rate), as pure rules.

A dossier is a ``Fact``; what it adds to the pre-aggregated counts is
``contributions(fact)``, a multiset of keys. Every change to a fact moves the counts by
``contributions(after) - contributions(before)``, so the incremental aggregates always
equal the sum of the contributions of every fact, which is exactly what ``recompute``
rebuilds. Nothing here does I/O or reads the clock.

Days are Vietnam dates (Asia/Ho_Chi_Minh). Two kinds of counts exist:

- *by day* (``DayKey``): per dimension, key, day and measure: received (online, counter or
  post), finished (early, on time, late, and "good for 766"), closed without a result
  (withdrawn or refused: excluded from every rate), and received / closed with more than
  one supplement request;
- *by due day* (``DueKey``): per dimension, key, due day and closing day (``OPEN_DAY``
  while open): every received dossier, and those with more than one supplement request.
  Open dossiers at any past day ``L`` are those with closing day after ``L``, so the
  overdue ones at the end of a period are counted without scanning dossiers.

Invariants a fact's contributions keep (so the identities used by the query hold):
a dossier counts only once it is received; its closing day and due day are never before
its reception day (a stray earlier timestamp is clamped to the reception day).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from shared.calendar import VN_TZ
from shared.catalogue import level_at

Dimension = Literal["unit", "field", "procedure", "level", "channel"]
DIMENSIONS: tuple[Dimension, ...] = ("unit", "field", "procedure", "level", "channel")
UNIT_FIELD = "unit_field"
"""The extra dimension behind the per-(unit, field) gauges; key ``<unit>|<field>``."""
ALL_DIMENSIONS: tuple[str, ...] = (*DIMENSIONS, UNIT_FIELD)

OPEN_DAY = date(9999, 12, 31)
"""Closing day of a dossier still open; due day of a dossier with no due time."""

# Measures by day.
RECV_ONLINE = "recv_online"
RECV_COUNTER_POST = "recv_counter_post"
FIN_EARLY = "fin_early"
FIN_ON_TIME = "fin_on_time"
FIN_LATE = "fin_late"
FIN_OK_766 = "fin_ok_766"  # finished early or on time with at most one supplement request
EXCLUDED = "excluded"  # withdrawn or refused after reception: closed, in no rate
RECV_SUPP2 = "recv_supp2"  # received, more than one supplement request
CLOSED_SUPP2 = "closed_supp2"  # closed (any way), more than one supplement request
# Measures by due day.
DUE_ALL = "all"
DUE_SUPP2 = "supp2"

Outcome = Literal["early", "on_time", "late"]
_FINISHED_MEASURE: dict[str, str] = {"early": FIN_EARLY, "on_time": FIN_ON_TIME, "late": FIN_LATE}


@dataclass(frozen=True, slots=True)
class DayKey:
    """A count by (dimension, key, day, measure)."""

    dim: str
    key: str
    day: date
    measure: str


@dataclass(frozen=True, slots=True)
class DueKey:
    """A count by (dimension, key, due day, closing day, measure)."""

    dim: str
    key: str
    due_day: date
    closed_day: date
    measure: str


Contribution = Counter[DayKey | DueKey]


@dataclass(slots=True)
class Fact:
    """What the report knows of one dossier (its fact row), built from events.

    ``withdrawn_at``: withdrawn or refused after reception; ignored once finished (a
    finished dossier cannot be withdrawn). ``due_at`` is the latest dossier-level due time
    the SLA clock announced (an apology's new date does not change it).
    """

    code: str
    unit: str = ""
    field: str = ""
    procedure: str = ""
    level: str = ""
    channel: str = ""
    received_at: datetime | None = None
    due_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = None
    supplement_requests: int = 0
    withdrawn_at: datetime | None = None

    def keys(self) -> dict[str, str]:
        """The fact's key in every dimension."""
        return {
            "unit": self.unit,
            "field": self.field,
            "procedure": self.procedure,
            "level": self.level,
            "channel": self.channel,
            UNIT_FIELD: f"{self.unit}|{self.field}",
        }


def vn_day(moment: datetime) -> date:
    """The Vietnam date of an aware instant."""
    return moment.astimezone(VN_TZ).date()


def start_of(day: date) -> datetime:
    """Midnight of a Vietnam date, as an aware instant."""
    return datetime.combine(day, time(0), tzinfo=VN_TZ)


def contributions(fact: Fact) -> Contribution:
    """What one dossier adds to the aggregates (nothing until it is received)."""
    out: Contribution = Counter()
    if fact.received_at is None:
        return out
    received = vn_day(fact.received_at)
    measures: list[tuple[date, str]] = [
        (received, RECV_ONLINE if fact.channel == "online" else RECV_COUNTER_POST)
    ]
    multi = fact.supplement_requests > 1
    if multi:
        measures.append((received, RECV_SUPP2))
    closed = OPEN_DAY
    if fact.finished_at is not None and fact.outcome in _FINISHED_MEASURE:
        closed = max(vn_day(fact.finished_at), received)
        measures.append((closed, _FINISHED_MEASURE[fact.outcome]))
        if fact.outcome != "late" and not multi:
            measures.append((closed, FIN_OK_766))
    elif fact.withdrawn_at is not None:
        closed = max(vn_day(fact.withdrawn_at), received)
        measures.append((closed, EXCLUDED))
    if multi and closed != OPEN_DAY:
        measures.append((closed, CLOSED_SUPP2))
    due = OPEN_DAY if fact.due_at is None else max(vn_day(fact.due_at), received)
    due_measures = [DUE_ALL, DUE_SUPP2] if multi else [DUE_ALL]
    for dim, key in fact.keys().items():
        for day, measure in measures:
            out[DayKey(dim, key, day, measure)] += 1
        for measure in due_measures:
            out[DueKey(dim, key, due, closed, measure)] += 1
    return out


def delta(before: Iterable[Fact], after: Iterable[Fact]) -> dict[DayKey | DueKey, int]:
    """The change to the aggregates when facts move from ``before`` to ``after`` (no zeros)."""
    total: Counter[DayKey | DueKey] = Counter()
    for fact in after:
        total.update(contributions(fact))
    for fact in before:
        total.subtract(contributions(fact))
    return {k: n for k, n in total.items() if n}


def aggregate(facts: Iterable[Fact]) -> dict[DayKey | DueKey, int]:
    """The aggregates of a set of facts from scratch (what ``recompute`` stores)."""
    return delta((), facts)


# --- the period and the rows ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A report period ``[first, last]`` of Vietnam dates, judged at ``judged_on``.

    Open dossiers are judged at the end of the period, or now if that is earlier:
    ``last_counted`` is the last day whose events count (``min(last, today)``) and a
    dossier open then is overdue when its due date is before ``overdue_before``: the day
    after the period for a past period (still open at the end of its due date is
    overdue), today for a running one (due today is still within time, by date).
    """

    first: date
    last: date
    today: date

    @property
    def last_counted(self) -> date:
        """The last day whose events the report counts."""
        return min(self.last, self.today)

    @property
    def overdue_before(self) -> date:
        """An open dossier due before this date is overdue."""
        return self.last + timedelta(days=1) if self.last < self.today else self.today


@dataclass(slots=True)
class Counts:
    """One row's numbers (Biểu 06 columns plus what the 766 rate needs)."""

    carried_over: int = 0
    new_online: int = 0
    new_counter_post: int = 0
    early: int = 0
    on_time: int = 0
    late: int = 0
    finished_ok_766: int = 0
    excluded: int = 0
    open_total: int = 0
    overdue: int = 0
    open_within_multi_supplement: int = 0

    @property
    def received(self) -> int:
        """Carried over plus new."""
        return self.carried_over + self.new_online + self.new_counter_post

    @property
    def finished(self) -> int:
        """Finished in the period."""
        return self.early + self.on_time + self.late

    @property
    def within_time(self) -> int:
        """Open at the end of the period and not overdue."""
        return self.open_total - self.overdue

    def add(self, other: Counts) -> None:
        """Add another row's counts to this one (for the total)."""
        for name in Counts.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def percent(numerator: int, denominator: int) -> Decimal | None:
    """``numerator / denominator × 100`` to two decimals (half up); ``None`` when 0/0."""
    if denominator == 0:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


def on_time_rate(counts: Counts) -> Decimal | None:
    """(early + on time) ÷ finished × 100."""
    return percent(counts.early + counts.on_time, counts.finished)


def rate_766(counts: Counts) -> Decimal | None:
    """The 766 rate: (finished early or on time + open within time) ÷ (finished + open).

    A dossier with more than one supplement request counts as late, finished or open.
    Withdrawn and refused dossiers are in neither part.
    """
    good = counts.finished_ok_766 + counts.within_time - counts.open_within_multi_supplement
    return percent(good, counts.finished + counts.open_total)


def counts_from(
    in_period: Mapping[str, int],
    after_period: Mapping[str, int],
    open_now: Mapping[str, int],
    overdue_at_end: Mapping[str, int],
) -> Counts:
    """One key's row from its sums (each by measure).

    ``in_period``: by-day measures summed over the period's days; ``after_period``: over
    the days after it; ``open_now``: by-due measures of dossiers open now;
    ``overdue_at_end``: of dossiers still open after the period's last counted day and
    due before ``Period.overdue_before``. Identities used: open at day X = open now −
    (received − closed) after X; carried over = open at the day before the period.
    """

    def net(sums: Mapping[str, int]) -> int:
        received = sums.get(RECV_ONLINE, 0) + sums.get(RECV_COUNTER_POST, 0)
        closed = sum(sums.get(m, 0) for m in (FIN_EARLY, FIN_ON_TIME, FIN_LATE, EXCLUDED))
        return received - closed

    def net_multi(sums: Mapping[str, int]) -> int:
        return sums.get(RECV_SUPP2, 0) - sums.get(CLOSED_SUPP2, 0)

    open_end = open_now.get(DUE_ALL, 0) - net(after_period)
    multi_open_end = open_now.get(DUE_SUPP2, 0) - net_multi(after_period)
    counts = Counts(
        carried_over=open_end - net(in_period),
        new_online=in_period.get(RECV_ONLINE, 0),
        new_counter_post=in_period.get(RECV_COUNTER_POST, 0),
        early=in_period.get(FIN_EARLY, 0),
        on_time=in_period.get(FIN_ON_TIME, 0),
        late=in_period.get(FIN_LATE, 0),
        finished_ok_766=in_period.get(FIN_OK_766, 0),
        excluded=in_period.get(EXCLUDED, 0),
        open_total=open_end,
        overdue=overdue_at_end.get(DUE_ALL, 0),
    )
    counts.open_within_multi_supplement = multi_open_end - overdue_at_end.get(DUE_SUPP2, 0)
    return counts


def is_empty(counts: Counts) -> bool:
    """Nothing received, finished, closed or open in the period: the row is left out."""
    return not (counts.received or counts.finished or counts.excluded or counts.open_total)


LEVEL_LABELS = {"tinh": "Cấp tỉnh", "xa": "Cấp xã", "huyen": "Cấp huyện", "": "Chưa xác định"}
CHANNEL_LABELS = {"online": "Trực tuyến", "counter": "Trực tiếp", "post": "Bưu chính công ích"}


def level_of(levels: list[str], received_at: datetime) -> str:
    """A dossier's level as routing tells it (``shared.catalogue.level_at``); ``""``
    when the procedure and reception date do not tell it."""
    return level_at(levels, received_at) or ""
