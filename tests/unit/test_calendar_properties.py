"""Properties of the due time over the whole shipped table (hypothesis)."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import (
    HOURS_0700,
    VN_TZ,
    Duration,
    DurationUnit,
    WorkCalendar,
    build_calendar,
)

CALENDARS = [build_calendar(), build_calendar(hours=HOURS_0700)]
SPAN_START = datetime(2024, 1, 1, tzinfo=VN_TZ)
SPAN_MINUTES = 60 * 24 * (365 * 3 + 250)  # up to early September 2027, well inside the table

calendars = st.sampled_from(CALENDARS)
starts = st.builds(
    lambda minutes, seconds, zone: (
        SPAN_START + timedelta(minutes=minutes, seconds=seconds)
    ).astimezone(zone),
    st.integers(0, SPAN_MINUTES),
    st.integers(0, 59),
    st.sampled_from([VN_TZ, UTC, timezone(timedelta(hours=-5))]),
)
amounts = st.builds(timedelta, minutes=st.integers(1, 60 * 8 * 40))
working_durations = st.builds(
    Duration,
    st.integers(0, 80).map(lambda halves: halves / 2),
    st.sampled_from([DurationUnit.WORKING_DAYS, DurationUnit.WORKING_HOURS]),
)


def periods_of(cal: WorkCalendar, moment: datetime) -> list[tuple[datetime, datetime]]:
    """The working periods of the day of ``moment``, as Vietnam times."""
    day = moment.date()
    if not cal.is_working_day(day):
        return []
    # The shipped make-up working days are all Saturdays.
    hours = cal.hours.makeup_day if day.weekday() >= 5 else cal.hours.weekly[day.weekday()]
    return [
        (
            datetime.combine(day, period.start, tzinfo=VN_TZ),
            datetime.combine(day, period.end, tzinfo=VN_TZ),
        )
        for period in hours
    ]


@settings(max_examples=300, deadline=None)
@given(calendars, starts, amounts)
def test_result_is_in_working_time_or_at_a_period_end(
    cal: WorkCalendar, start: datetime, amount: timedelta
) -> None:
    due = cal.add_working_time(start, amount)
    assert due.tzinfo is VN_TZ
    assert any(begin < due <= end for begin, end in periods_of(cal, due))


@settings(max_examples=200, deadline=None)
@given(calendars, starts, st.integers(0, 60))
def test_calendar_days_land_inside_working_time(
    cal: WorkCalendar, start: datetime, days: int
) -> None:
    due = cal.due_at(start, Duration(days, DurationUnit.CALENDAR_DAYS))
    assert due is not None
    assert any(begin <= due < end for begin, end in periods_of(cal, due))
    assert due.date() >= start.astimezone(VN_TZ).date() + timedelta(days)


@settings(max_examples=200, deadline=None)
@given(calendars, starts)
def test_same_day_is_the_end_of_a_working_day(cal: WorkCalendar, start: datetime) -> None:
    due = cal.due_at(start, Duration(0, DurationUnit.SAME_DAY))
    assert due is not None
    assert due == periods_of(cal, due)[-1][1]
    assert timedelta(0) <= due.date() - start.astimezone(VN_TZ).date() <= timedelta(days=10)


@settings(max_examples=300, deadline=None)
@given(calendars, starts, st.builds(timedelta, minutes=st.integers(0, 60 * 8 * 20)), amounts)
def test_adding_a_then_b_equals_adding_a_plus_b(
    cal: WorkCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    stepwise = cal.add_working_time(cal.add_working_time(start, first), second)
    assert stepwise == cal.add_working_time(start, first + second)


@settings(max_examples=300, deadline=None)
@given(calendars, starts, working_durations)
def test_elapsed_until_the_due_time_is_the_duration(
    cal: WorkCalendar, start: datetime, duration: Duration
) -> None:
    due = cal.due_at(start, duration)
    assert due is not None
    assert cal.working_time_between(start, due) == duration.working_time()


@settings(max_examples=200, deadline=None)
@given(calendars, starts, starts, starts)
def test_elapsed_time_adds_up_and_is_antisymmetric(
    cal: WorkCalendar, first: datetime, second: datetime, third: datetime
) -> None:
    between = cal.working_time_between
    assert between(first, second) + between(second, third) == between(first, third)
    assert between(first, second) == -between(second, first)
    if first <= second:
        assert between(first, second) >= timedelta(0)


@settings(max_examples=200, deadline=None)
@given(calendars, starts)
def test_next_working_start_is_idempotent_and_not_earlier(
    cal: WorkCalendar, start: datetime
) -> None:
    moved = cal.next_working_start(start)
    assert moved >= start
    assert cal.next_working_start(moved) == moved
    assert cal.working_time_between(start, moved) == timedelta(0)
