"""The report's pure rules: rounding, rates, the period, a dossier's contributions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from services.notify.reports import domain
from services.notify.reports.domain import DayKey, DueKey, Fact
from shared.calendar import VN_TZ


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=VN_TZ)


def test_percent_rounds_half_up_to_two_decimals_and_is_none_on_nothing() -> None:
    assert domain.percent(1, 800) == Decimal("0.13")  # 0.125: half up, not half even
    assert domain.percent(2, 3) == Decimal("66.67")
    assert domain.percent(0, 5) == Decimal("0.00")
    assert domain.percent(0, 0) is None


def test_rate_766_counts_multi_supplement_open_dossiers_late_and_ignores_withdrawn() -> None:
    counts = domain.Counts(
        early=2, on_time=1, late=1, finished_ok_766=2, open_total=4, overdue=2, excluded=7
    )
    counts.open_within_multi_supplement = 1
    assert domain.on_time_rate(counts) == Decimal("75.00")
    assert domain.rate_766(counts) == Decimal("37.50")  # (2 + 2 - 1) / (4 + 4)


def test_period_judges_open_dossiers_at_its_end_or_today() -> None:
    past = domain.Period(date(2026, 3, 1), date(2026, 3, 31), today=date(2026, 4, 10))
    assert (past.last_counted, past.overdue_before) == (date(2026, 3, 31), date(2026, 4, 1))
    running = domain.Period(date(2026, 4, 1), date(2026, 4, 30), today=date(2026, 4, 10))
    assert (running.last_counted, running.overdue_before) == (
        date(2026, 4, 10),
        date(2026, 4, 10),
    )


def test_a_dossier_not_yet_received_counts_nothing() -> None:
    fact = Fact(code="X", unit="U", finished_at=at("2026-03-02"), outcome="early")
    assert domain.contributions(fact) == {}


def test_contributions_of_a_finished_dossier_in_vietnam_days() -> None:
    fact = Fact(
        code="X",
        unit="U",
        field="F",
        procedure="P",
        level="xa",
        channel="online",
        # 23:30 UTC on 1 March is 06:30 on 2 March in Vietnam.
        received_at=datetime.fromisoformat("2026-03-01T23:30:00+00:00"),
        due_at=at("2026-03-05"),
        finished_at=at("2026-03-04"),
        outcome="early",
    )
    got = domain.contributions(fact)
    unit = {k: n for k, n in got.items() if k.dim == "unit"}
    assert unit == {
        DayKey("unit", "U", date(2026, 3, 2), domain.RECV_ONLINE): 1,
        DayKey("unit", "U", date(2026, 3, 4), domain.FIN_EARLY): 1,
        DayKey("unit", "U", date(2026, 3, 4), domain.FIN_OK_766): 1,
        DueKey("unit", "U", date(2026, 3, 5), date(2026, 3, 4), domain.DUE_ALL): 1,
    }
    assert {k.dim for k in got} == set(domain.ALL_DIMENSIONS)
    assert DayKey("unit_field", "U|F", date(2026, 3, 2), domain.RECV_ONLINE) in got


def test_delta_moves_an_open_dossier_to_finished() -> None:
    open_fact = Fact(
        code="X", unit="U", channel="counter", received_at=at("2026-03-02"), due_at=None
    )
    done = Fact(**{**{s: getattr(open_fact, s) for s in Fact.__slots__}})
    done.finished_at, done.outcome, done.supplement_requests = at("2026-03-03"), "late", 2
    change = {k: n for k, n in domain.delta([open_fact], [done]).items() if k.dim == "unit"}
    assert change == {
        DueKey("unit", "U", domain.OPEN_DAY, domain.OPEN_DAY, domain.DUE_ALL): -1,
        DueKey("unit", "U", domain.OPEN_DAY, date(2026, 3, 3), domain.DUE_ALL): 1,
        DueKey("unit", "U", domain.OPEN_DAY, date(2026, 3, 3), domain.DUE_SUPP2): 1,
        DayKey("unit", "U", date(2026, 3, 3), domain.FIN_LATE): 1,
        DayKey("unit", "U", date(2026, 3, 2), domain.RECV_SUPP2): 1,
        DayKey("unit", "U", date(2026, 3, 3), domain.CLOSED_SUPP2): 1,
    }


def test_withdrawn_dossier_closes_without_a_class_and_finishing_wins() -> None:
    fact = Fact(
        code="X",
        unit="U",
        channel="post",
        received_at=at("2026-03-02"),
        withdrawn_at=at("2026-03-01"),  # stray earlier time: clamped to reception day
    )
    unit = {k for k in domain.contributions(fact) if k.dim == "unit"}
    assert DayKey("unit", "U", date(2026, 3, 2), domain.EXCLUDED) in unit
    fact.finished_at, fact.outcome = at("2026-03-03"), "on_time"
    unit = {k for k in domain.contributions(fact) if k.dim == "unit"}
    assert not any(isinstance(k, DayKey) and k.measure == domain.EXCLUDED for k in unit)


def test_level_of_names_a_level_only_when_the_catalogue_and_date_give_one() -> None:
    assert domain.level_of(["xa"], at("2026-03-02")) == "xa"
    assert domain.level_of(["xa", "tinh"], at("2026-03-02")) == ""
    assert domain.level_of(["xa", "huyen"], at("2026-03-02")) == "xa"
    assert domain.level_of(["xa", "huyen"], at("2025-03-03")) == ""
