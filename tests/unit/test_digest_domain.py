"""The digest's pure rules: periods and their labels, when a digest falls due, figures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest

from services.notify.digest import domain
from services.notify.reports.domain import Counts
from shared.calendar import VN_TZ, load_calendar

AT = time(7, 30)


def weekdays_only(day: date) -> bool:
    return day.weekday() < 5


@pytest.fixture(scope="module")
def is_working_day(tmp_path_factory: pytest.TempPathFactory) -> Callable[[date], bool]:
    return load_calendar("default", Path(tmp_path_factory.mktemp("var"))).is_working_day


def test_months_and_iso_weeks_have_labels_that_parse_back() -> None:
    october = domain.parse_period("2026-10")
    assert (october.first, october.last, october.label) == (
        date(2026, 10, 1),
        date(2026, 10, 31),
        "2026-10",
    )
    assert october.title == "tháng 10/2026"
    week = domain.parse_period("2026-W43")
    assert (week.first, week.last, week.label) == (
        date(2026, 10, 19),
        date(2026, 10, 25),
        "2026-W43",
    )
    assert week.title == "tuần 43/2026"
    assert domain.parse_period(week.label) == week
    # An ISO week belongs to the year of its Thursday: 2026-12-29 is in 2026-W53.
    assert domain.period_containing(date(2027, 1, 1), "week").label == "2026-W53"


@pytest.mark.parametrize("label", ["2026-13", "2026-W54", "26-10", "2026-10-01", ""])
def test_a_label_that_is_no_period_is_refused(label: str) -> None:
    with pytest.raises(ValueError, match="not a period"):
        domain.parse_period(label)


def test_previous_period_crosses_the_year() -> None:
    assert domain.previous_period(date(2027, 1, 15), "month").label == "2026-12"
    assert domain.previous_period(date(2026, 3, 2), "week").label == "2026-W09"
    assert domain.previous_period(date(2026, 3, 1), "week").label == "2026-W08"


def test_digest_is_due_at_the_set_time_of_the_first_working_day(
    is_working_day: Callable[[date], bool],
) -> None:
    august = domain.parse_period("2026-08")
    # 31 August and 1-2 September 2026 are days off (National Day): due on the 3rd.
    assert domain.send_time(august, AT, is_working_day) == datetime(2026, 9, 3, 7, 30, tzinfo=VN_TZ)
    # 1 October 2026 is a Thursday: due that morning.
    assert domain.send_time(domain.parse_period("2026-09"), AT, weekdays_only) == datetime(
        2026, 10, 1, 7, 30, tzinfo=VN_TZ
    )


def test_due_period_waits_for_the_send_time_then_stays_due() -> None:
    before = datetime(2026, 10, 1, 7, 29, tzinfo=VN_TZ)
    assert domain.due_period(before, "month", AT, weekdays_only) is None
    at = datetime(2026, 10, 1, 7, 30, tzinfo=VN_TZ)
    assert domain.due_period(at, "month", AT, weekdays_only) == domain.parse_period("2026-09")
    later = datetime(2026, 10, 20, 12, 0, tzinfo=VN_TZ)
    assert domain.due_period(later, "month", AT, weekdays_only) == domain.parse_period("2026-09")


def test_due_period_reads_now_in_vietnam_time() -> None:
    # 00:30 UTC on 1 October is 07:30 in Vietnam.
    utc = datetime.fromisoformat("2026-10-01T00:30:00+00:00")
    assert domain.due_period(utc, "month", AT, weekdays_only) == domain.parse_period("2026-09")
    assert domain.due_period(utc.replace(minute=29), "month", AT, weekdays_only) is None


def test_weekly_digest_is_due_on_monday() -> None:
    monday = datetime(2026, 10, 26, 7, 30, tzinfo=VN_TZ)
    assert domain.due_period(monday, "week", AT, weekdays_only) == domain.parse_period("2026-W43")
    sunday = datetime(2026, 10, 25, 23, 0, tzinfo=VN_TZ)
    assert domain.due_period(sunday, "week", AT, weekdays_only) == domain.parse_period("2026-W42")


def test_key_names_unit_and_period() -> None:
    assert domain.digest_key("000.00.00.H56", domain.parse_period("2026-W43")) == (
        "digest:000.00.00.H56:2026-W43"
    )


def test_figures_carry_the_report_rates_with_a_decimal_comma() -> None:
    counts = Counts(
        carried_over=1,
        new_counter_post=4,
        early=1,
        on_time=1,
        late=1,
        finished_ok_766=2,
        open_total=2,
        overdue=1,
    )
    shown = domain.figures(counts)
    assert (shown.received, shown.new, shown.finished, shown.within_time) == (5, 4, 3, 1)
    assert (shown.on_time_rate, shown.rate_766) == ("66,67%", "60,00%")
    assert domain.figures(Counts()).on_time_rate == "—"
    assert domain.rate_text(Decimal("100.00")) == "100,00%"


@pytest.mark.parametrize(
    ("unit", "name", "email", "problem"),
    [
        ("U1", "Nguyễn Văn A", "a@example.vn", None),
        ("", "A", "a@example.vn", "unit"),
        ("U" * 61, "A", "a@example.vn", "unit"),
        ("U1", "", "a@example.vn", "name"),
        ("U1", "A", "not-an-address", "e-mail"),
        ("U1", "A", "a@" + "b" * 250 + ".vn", "e-mail"),
    ],
)
def test_head_records_are_checked_without_repeating_them(
    unit: str, name: str, email: str, problem: str | None
) -> None:
    found = domain.head_problem(unit, name, email)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
        assert email not in found
