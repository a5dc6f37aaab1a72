"""The report's satisfaction block (mức độ hài lòng): ratings per level, and index 5.4 of
Decision 766/QĐ-TTg, per row of the report and in its total.

Index 5.4 = 100 % − the share of late dossiers − the share rated không hài lòng, where

- the *late share* is the complement of the 766 on-time rate of the same row
  (``domain.rate_766``): dossiers finished late in the period, still open and overdue at
  its end, or with more than one supplement request (late whatever the dates), over the
  dossiers finished in the period plus those open at its end — DOMAIN.md's 766 formula
  ("dossiers received and handled in the period", withdrawn and refused ones in neither
  part), so the two figures of the report never disagree on what "late" is;
- the *dissatisfied share* is the ratings không hài lòng over every rating given in the
  period (by the day it was given, Vietnam date): a dossier is rated once, after its
  result, often in a later period than the one it finished in, so the ratings are their
  own population rather than a subset of the finished dossiers.

Both are exact fractions; the index is rounded once, to two decimals (half up), and
never below 0. It is ``None`` ("N/A") when either share has nothing to count (no dossier
handled, or no rating given). Nothing here does I/O but :func:`apply_ratings`, which
folds ``rating.given`` events into ``report_rating`` in the inbox transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from services.notify.reports import domain
from services.notify.reports.store import facts_of
from services.notify.store.ratings import LevelCounts, add_ratings
from shared.catalogue import Catalogue
from shared.events import Envelope, RatingGiven, SatisfactionLevel
from shared.handlers import Handlers

LEVEL_LABELS = {
    SatisfactionLevel.VERY_SATISFIED: "Rất hài lòng",
    SatisfactionLevel.SATISFIED: "Hài lòng",
    SatisfactionLevel.NOT_SATISFIED: "Không hài lòng",
}


@dataclass(slots=True)
class Satisfaction:
    """The ratings of one row (or the total), by level."""

    very_satisfied: int = 0
    satisfied: int = 0
    not_satisfied: int = 0

    @property
    def rated(self) -> int:
        """Ratings given in the period."""
        return self.very_satisfied + self.satisfied + self.not_satisfied

    def add(self, other: Satisfaction) -> None:
        """Add another row's ratings (for the total)."""
        self.very_satisfied += other.very_satisfied
        self.satisfied += other.satisfied
        self.not_satisfied += other.not_satisfied

    @classmethod
    def of(cls, by_level: Mapping[str, int]) -> Satisfaction:
        """From counts by ``SatisfactionLevel`` value (unknown levels are ignored)."""
        return cls(
            very_satisfied=by_level.get(SatisfactionLevel.VERY_SATISFIED.value, 0),
            satisfied=by_level.get(SatisfactionLevel.SATISFIED.value, 0),
            not_satisfied=by_level.get(SatisfactionLevel.NOT_SATISFIED.value, 0),
        )


def by_key(counts: LevelCounts) -> dict[str, Satisfaction]:
    """Each dimension key's ratings from the store's counts."""
    return {key: Satisfaction.of(levels) for key, levels in counts.items()}


def _late(counts: domain.Counts) -> tuple[int, int]:
    """(late, handled) as the 766 rate counts them (see the module)."""
    handled = counts.finished + counts.open_total
    good = counts.finished_ok_766 + counts.within_time - counts.open_within_multi_supplement
    return handled - good, handled


def _rounded(value: Fraction) -> Decimal:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def late_share(counts: domain.Counts) -> Decimal | None:
    """Late dossiers ÷ dossiers handled (finished in the period + open at its end) × 100;
    ``None`` when none was handled."""
    late, handled = _late(counts)
    return domain.percent(late, handled)


def dissatisfied_share(ratings: Satisfaction) -> Decimal | None:
    """Ratings không hài lòng ÷ ratings given in the period × 100; ``None`` without any."""
    return domain.percent(ratings.not_satisfied, ratings.rated)


def index_5_4(counts: domain.Counts, ratings: Satisfaction) -> Decimal | None:
    """100 − late share − dissatisfied share (exact, rounded once, at least 0); ``None``
    when either share has nothing to count."""
    late, handled = _late(counts)
    if handled == 0 or ratings.rated == 0:
        return None
    value = (
        100 - Fraction(100 * late, handled) - Fraction(100 * ratings.not_satisfied, ratings.rated)
    )
    return _rounded(max(value, Fraction(0)))


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def block_json(counts: domain.Counts, ratings: Satisfaction | None) -> dict[str, Any]:
    """The satisfaction block of one row (or the total) in the report's JSON."""
    given = ratings or Satisfaction()
    return {
        "rated": given.rated,
        SatisfactionLevel.VERY_SATISFIED.value: given.very_satisfied,
        SatisfactionLevel.SATISFIED.value: given.satisfied,
        SatisfactionLevel.NOT_SATISFIED.value: given.not_satisfied,
        "late_share": _number(late_share(counts)),
        "dissatisfied_share": _number(dissatisfied_share(given)),
        "index_5_4": _number(index_5_4(counts, given)),
    }


HEADERS = [
    "Đánh giá: tổng",
    "Đánh giá: rất hài lòng",
    "Đánh giá: hài lòng",
    "Đánh giá: không hài lòng",
    "Chỉ số 5.4 theo 766 (%)",
]
"""The block's columns in the CSV and XLSX, after the report's own."""


def cells(counts: domain.Counts, ratings: Satisfaction | None) -> list[int | Decimal | None]:
    """The block's cells of one row (or the total), in ``HEADERS``' order."""
    given = ratings or Satisfaction()
    return [
        given.rated,
        given.very_satisfied,
        given.satisfied,
        given.not_satisfied,
        index_5_4(counts, given),
    ]


# --- events in ----------------------------------------------------------------------------


async def apply_ratings(
    session: AsyncSession, events: Sequence[Envelope], catalogue: Callable[[], Catalogue]
) -> None:
    """Fold the batch's ``rating.given`` events into ``report_rating`` (in the caller's
    transaction). The dossier's field and level come from its report fact when notify
    has one (as the rest of the report counts it), else from the catalogue."""
    rated: dict[str, RatingGiven] = {}

    def given(rating: RatingGiven, envelope: Envelope) -> None:
        if envelope.dossier_code:  # the first rating of a dossier is the one kept
            rated.setdefault(envelope.dossier_code, rating)

    fold: Handlers[None] = Handlers()
    fold.add(RatingGiven, given)
    fold.run(events)
    if not rated:
        return
    facts = await facts_of(session, set(rated))
    known = catalogue()
    rows: list[dict[str, object]] = []
    for code, rating in rated.items():
        fact = facts.get(code)
        procedure = known.get(rating.procedure_code)
        field = fact.field if fact is not None and fact.field else None
        level = fact.level if fact is not None and fact.level else None
        if procedure is not None:
            field = field or procedure.field
            level = level or domain.level_of(list(procedure.levels), rating.at)
        rows.append(
            {
                "code": code,
                "satisfaction": rating.level.value,
                "rated_at": rating.at,
                "rated_on": domain.vn_day(rating.at),
                "unit": rating.receiving_unit,
                "field": field or "",
                "procedure": rating.procedure_code,
                "level": level or "",
                "channel": rating.dossier_channel.value,
            }
        )
    await add_ratings(session, rows)
