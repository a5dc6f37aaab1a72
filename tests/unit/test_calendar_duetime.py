"""Worked examples and the conventions of the due time (shared/calendar)."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from shared.calendar import (
    HOURS_0700,
    VN_TZ,
    CalendarRangeError,
    DayKind,
    Duration,
    DurationUnit,
    SpecialDay,
    WorkCalendar,
    build_calendar,
    format_slip_time,
)

CAL = build_calendar()
WD = DurationUnit.WORKING_DAYS


def vn(text: str) -> datetime:
    """A Vietnam time from "YYYY-MM-DD HH:MM"."""
    return datetime.fromisoformat(text).replace(tzinfo=VN_TZ)


@pytest.mark.parametrize(
    ("received", "duration", "due"),
    [
        ("2026-06-02 09:00", Duration(2, WD), "2026-06-04 09:00"),
        ("2026-06-05 15:00", Duration(1, WD), "2026-06-08 15:00"),
        ("2026-06-04 17:45", Duration(0.5, WD), "2026-06-05 11:30"),
        ("2026-06-03 14:59", Duration(0, DurationUnit.SAME_DAY), "2026-06-03 17:00"),
        ("2026-06-03 15:00", Duration(0, DurationUnit.SAME_DAY), "2026-06-04 17:00"),
        ("2026-04-23 10:00", Duration(3, WD), "2026-04-29 10:00"),
        ("2026-06-01 08:00", Duration(2, WD), "2026-06-03 08:00"),
        ("2026-03-02 10:00", Duration(3, WD), "2026-03-05 10:00"),
    ],
)
def test_worked_examples(received: str, duration: Duration, due: str) -> None:
    assert CAL.due_at(vn(received), duration) == vn(due)


def test_supplement_example_pause_and_restart() -> None:
    used = CAL.working_time_between(vn("2026-06-01 08:00"), vn("2026-06-01 14:00"))
    waited = CAL.working_time_between(vn("2026-06-01 14:00"), vn("2026-06-04 10:00"))
    assert used == timedelta(hours=4.5)
    assert waited == timedelta(hours=21.5)
    assert CAL.add_working_time(vn("2026-06-03 08:00"), waited) == vn("2026-06-05 15:00")
    assert CAL.add_working_time(vn("2026-06-04 10:00"), timedelta(hours=11.5)) == vn(
        "2026-06-05 15:00"
    )
    assert CAL.add_working_time(vn("2026-06-04 10:00"), timedelta(hours=16)) == vn(
        "2026-06-08 10:00"
    )


@pytest.mark.parametrize(
    ("at", "start"),
    [
        ("2026-06-02 18:30", "2026-06-03 07:30"),  # evening → next working morning
        ("2026-06-02 17:00", "2026-06-03 07:30"),  # a period excludes its end
        ("2026-06-02 06:00", "2026-06-02 07:30"),  # before the morning start
        ("2026-06-02 11:30", "2026-06-02 13:00"),  # lunch break → afternoon start
        ("2026-06-02 12:15", "2026-06-02 13:00"),
        ("2026-06-02 10:00", "2026-06-02 10:00"),  # working time: unchanged
        ("2026-06-06 10:00", "2026-06-08 07:30"),  # Saturday → Monday
        ("2026-04-24 17:30", "2026-04-28 07:30"),  # Friday evening, Mon 27/04 off
    ],
)
def test_start_outside_working_time_moves_to_next_working_start(at: str, start: str) -> None:
    assert CAL.next_working_start(vn(at)) == vn(start)
    assert CAL.due_at(vn(at), Duration(0, WD)) == vn(start)


def test_working_time_running_out_at_a_period_end_is_that_end() -> None:
    assert CAL.due_at(vn("2026-06-02 07:30"), Duration(1, WD)) == vn("2026-06-02 17:00")
    assert CAL.due_at(vn("2026-06-02 07:30"), Duration(0.5, WD)) == vn("2026-06-02 11:30")
    hours = Duration(3, DurationUnit.WORKING_HOURS)
    assert CAL.due_at(vn("2026-06-02 14:00"), hours) == vn("2026-06-02 17:00")
    assert CAL.due_at(vn("2026-06-05 13:00"), Duration(1, WD)) == vn("2026-06-08 11:30")


def test_working_hours_and_half_days() -> None:
    assert CAL.due_at(vn("2026-06-02 10:00"), Duration(2.5, DurationUnit.WORKING_HOURS)) == vn(
        "2026-06-02 14:00"
    )
    assert CAL.due_at(vn("2026-06-02 10:00"), Duration(1.5, WD)) == vn("2026-06-03 15:30")


@pytest.mark.parametrize(
    ("received", "days", "due"),
    [
        ("2026-06-02 09:00", 3, "2026-06-05 09:00"),  # lands on a working day
        ("2026-06-02 09:00", 4, "2026-06-08 09:00"),  # Saturday → Monday, same clock
        ("2026-04-20 14:00", 10, "2026-05-04 14:00"),  # Thu 30/04 → Fri 01/05 off → Monday
        ("2026-06-02 18:00", 1, "2026-06-04 07:30"),  # counts from the next working start
        ("2026-01-05 09:00", 5, "2026-01-10 09:00"),  # Sat 10/01 is a make-up working day
    ],
)
def test_calendar_days(received: str, days: int, due: str) -> None:
    assert CAL.due_at(vn(received), Duration(days, DurationUnit.CALENDAR_DAYS)) == vn(due)


def test_calendar_days_must_be_whole() -> None:
    with pytest.raises(ValueError, match="whole number"):
        Duration(1.5, DurationUnit.CALENDAR_DAYS)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-06-03 06:00", "2026-06-03 17:00"),
        ("2026-06-05 16:00", "2026-06-08 17:00"),  # Friday after the cut-off → Monday
        ("2026-06-06 10:00", "2026-06-08 17:00"),  # Saturday → next working day
        ("2026-04-24 15:00", "2026-04-28 17:00"),  # next working day skips Mon 27/04
    ],
)
def test_same_day(received: str, due: str) -> None:
    assert CAL.due_at(vn(received), Duration(1, DurationUnit.SAME_DAY)) == vn(due)


def test_same_day_cut_off_is_a_setting() -> None:
    noon = build_calendar(same_day_cutoff=time(12, 0))
    same_day = Duration(1, DurationUnit.SAME_DAY)
    assert noon.due_at(vn("2026-06-03 11:59"), same_day) == vn("2026-06-03 17:00")
    assert noon.due_at(vn("2026-06-03 12:00"), same_day) == vn("2026-06-04 17:00")


def test_no_due_time() -> None:
    assert CAL.due_at(vn("2026-06-03 10:00"), Duration(0, DurationUnit.NONE)) is None


def test_the_other_daily_schedule_through_configuration() -> None:
    cal = build_calendar(hours=HOURS_0700)
    assert cal.next_working_start(vn("2026-06-02 12:00")) == vn("2026-06-02 13:30")
    assert cal.due_at(vn("2026-06-02 07:00"), Duration(0.5, WD)) == vn("2026-06-02 11:00")
    assert cal.due_at(vn("2026-06-02 07:00"), Duration(4.5, DurationUnit.WORKING_HOURS)) == vn(
        "2026-06-02 11:30"
    )
    assert cal.due_at(vn("2026-06-02 07:00"), Duration(1, WD)) == vn("2026-06-02 17:00")
    assert cal.due_at(vn("2026-06-02 09:00"), Duration(2, WD)) == vn("2026-06-04 09:00")
    assert cal.working_time_between(vn("2026-06-02 07:00"), vn("2026-06-02 17:00")) == (
        timedelta(hours=8)
    )


def test_inputs_in_any_zone_outputs_in_vietnam_time() -> None:
    utc_start = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam
    due = CAL.due_at(utc_start, Duration(2, WD))
    assert due == vn("2026-06-04 09:00")
    assert due is not None
    assert due.utcoffset() == timedelta(hours=7)


def test_naive_datetime_is_a_value_error_naming_the_argument() -> None:
    naive = datetime(2026, 6, 2, 9, 0)  # noqa: DTZ001
    aware = vn("2026-06-02 09:00")
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        CAL.due_at(naive, Duration(1, WD))
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        CAL.due_at(naive, Duration(0, DurationUnit.NONE))
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        CAL.next_working_start(naive)
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        CAL.working_time_between(aware, naive)
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        CAL.add_working_time(naive, timedelta(hours=1))


def test_working_time_between_is_negative_backwards() -> None:
    assert CAL.working_time_between(vn("2026-06-02 10:00"), vn("2026-06-02 09:00")) == (
        -timedelta(hours=1)
    )


def test_negative_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        CAL.add_working_time(vn("2026-06-02 10:00"), -timedelta(hours=1))
    with pytest.raises(ValueError, match=">= 0"):
        Duration(-1, WD)


def test_crossing_new_year_uses_next_years_table() -> None:
    # Thu 31/12/2026 10:00 + 2 wd skips Fri 01/01/2027 and the weekend.
    assert CAL.due_at(vn("2026-12-31 10:00"), Duration(2, WD)) == vn("2027-01-05 10:00")
    # Tue 30/12/2025 + 3 wd skips Thu 01/01 and Fri 02/01/2026 (the swapped day off).
    assert CAL.due_at(vn("2025-12-30 10:00"), Duration(3, WD)) == vn("2026-01-06 10:00")


def test_beyond_the_known_years_is_an_explicit_error() -> None:
    with pytest.raises(CalendarRangeError, match="2027-12-31"):
        CAL.due_at(vn("2027-12-28 10:00"), Duration(5, WD))
    with pytest.raises(CalendarRangeError, match="2028-01-03"):
        CAL.due_at(vn("2028-01-03 10:00"), Duration(1, WD))
    with pytest.raises(CalendarRangeError, match="2023-12-29"):
        CAL.is_working_day(date(2023, 12, 29))
    with pytest.raises(CalendarRangeError, match="2027-12-31"):
        CAL.due_at(vn("2027-12-31 16:00"), Duration(1, DurationUnit.SAME_DAY))
    assert issubclass(CalendarRangeError, ValueError)


def test_the_last_known_day_still_computes() -> None:
    assert CAL.due_at(vn("2027-12-31 13:00"), Duration(0.5, WD)) == vn("2027-12-31 17:00")


def test_a_makeup_day_uses_the_configured_makeup_hours() -> None:
    table = [SpecialDay(date(2026, 6, 6), DayKind.MAKEUP_WORKDAY, "test", "test")]
    cal = WorkCalendar(table, first_year=2026, last_year=2026)
    assert cal.is_working_day(date(2026, 6, 6))
    assert cal.due_at(vn("2026-06-05 15:00"), Duration(1, WD)) == vn("2026-06-06 15:00")


def test_slip_rendering() -> None:
    assert format_slip_time(vn("2026-03-05 10:00")) == "10 giờ 00 phút, ngày 05 tháng 03 năm 2026"
    utc = datetime(2026, 3, 5, 1, 5, tzinfo=UTC)
    assert format_slip_time(utc) == "08 giờ 05 phút, ngày 05 tháng 03 năm 2026"
    with pytest.raises(ValueError, match="timezone-aware"):
        format_slip_time(datetime(2026, 3, 5, 10, 0))  # noqa: DTZ001
