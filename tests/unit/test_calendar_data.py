"""The shipped special-days table and a province's edits layered over it."""

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from shared.calendar import (
    DayKind,
    ProvinceOverrides,
    SpecialDay,
    build_calendar,
    load_calendar,
    overrides_path,
    parse_rows,
    province_table,
    read_overrides,
    shipped_data,
    write_overrides,
)

CAL = build_calendar()
OFF = DayKind.OFF
MAKEUP = DayKind.MAKEUP_WORKDAY


def days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(n) for n in range((end - start).days + 1)]


OFFICIAL_DAYS_OFF = [
    # 2024
    date(2024, 1, 1),
    *days("2024-02-08", "2024-02-09"),
    *days("2024-02-12", "2024-02-14"),
    date(2024, 4, 18),
    *days("2024-04-29", "2024-05-01"),
    *days("2024-09-02", "2024-09-03"),
    # 2025
    date(2025, 1, 1),
    *days("2025-01-27", "2025-01-31"),
    date(2025, 4, 7),
    *days("2025-04-30", "2025-05-02"),
    *days("2025-09-01", "2025-09-02"),
    # 2026
    *days("2026-01-01", "2026-01-02"),
    *days("2026-02-16", "2026-02-20"),
    date(2026, 4, 27),
    *days("2026-04-30", "2026-05-01"),
    *days("2026-08-31", "2026-09-02"),
]
MAKEUP_SATURDAYS = [date(2024, 5, 4), date(2025, 4, 26), date(2026, 1, 10), date(2026, 8, 22)]


@pytest.mark.parametrize("day", OFFICIAL_DAYS_OFF, ids=str)
def test_official_weekday_off(day: date) -> None:
    assert day.weekday() < 5
    assert not CAL.is_working_day(day)


@pytest.mark.parametrize("day", MAKEUP_SATURDAYS, ids=str)
def test_makeup_saturdays_are_working_days(day: date) -> None:
    assert day.weekday() == 5
    assert CAL.is_working_day(day)


def test_only_listed_weekdays_are_off_in_2024_to_2026() -> None:
    """No weekday off beyond the official schedule (and 24/11/2026, from the library)."""
    extra = {date(2026, 11, 24)}
    for day in days("2024-01-01", "2026-12-31"):
        expected = day.weekday() < 5 and day not in {*OFFICIAL_DAYS_OFF, *extra}
        assert CAL.is_working_day(day) == (expected or day in MAKEUP_SATURDAYS), day


def test_every_row_has_a_source_and_the_known_years_are_explicit() -> None:
    years, table = province_table(ProvinceOverrides())
    assert years == range(2024, 2028)
    assert all(row.source.strip() for row in table)
    assert CAL.known_years == years
    shipped = shipped_data()
    assert {row.day for row in shipped.rows} == {date(2026, 1, 2), date(2026, 1, 10)}


def test_library_swaps_become_makeup_days_with_their_source() -> None:
    _, table = province_table(ProvinceOverrides())
    by_day = {row.day: row for row in table}
    assert by_day[date(2024, 5, 4)].kind is MAKEUP
    assert "thay cho ngày 04/05/2024" in by_day[date(2024, 5, 4)].source
    assert by_day[date(2026, 4, 27)].kind is OFF


def test_overrides_file_round_trip_and_layering(tmp_path: Path) -> None:
    path = overrides_path(tmp_path, "hanoi")
    assert read_overrides(path) == ProvinceOverrides()
    extra = SpecialDay(date(2026, 6, 5), OFF, "Ngày nghỉ địa phương", "Quyết định thử")
    edits = ProvinceOverrides().with_rows([extra]).without(date(2026, 11, 24), in_base=True)
    write_overrides(path, edits)
    assert read_overrides(path) == edits
    cal = load_calendar("hanoi", tmp_path)
    assert not cal.is_working_day(date(2026, 6, 5))
    assert cal.is_working_day(date(2026, 11, 24))
    assert load_calendar("other", tmp_path).is_working_day(date(2026, 6, 5))


def test_a_province_can_open_the_next_year() -> None:
    tet = SpecialDay(date(2028, 1, 26), OFF, "Tết Nguyên Đán", "decree")
    cal = build_calendar(ProvinceOverrides(last_year=2028).with_rows([tet]))
    assert cal.known_years == range(2024, 2029)
    assert not cal.is_working_day(date(2028, 1, 26))


def test_province_names_cannot_escape_the_var_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="province"):
        overrides_path(tmp_path, "../etc")


def test_parse_rows_csv_and_json_and_errors() -> None:
    csv_text = "date,kind,description,source\n2027-02-11,off,Tết,QĐ 1\n"
    json_text = json.dumps(
        {"rows": [{"date": "2027-02-11", "kind": "off", "description": "Tết", "source": "QĐ 1"}]}
    )
    expected = [SpecialDay(date(2027, 2, 11), OFF, "Tết", "QĐ 1")]
    assert parse_rows(csv_text, "x.csv") == expected
    assert parse_rows(json_text, "x.json") == expected
    with pytest.raises(ValueError, match="lacks source"):
        parse_rows("date,kind,description,source\n2027-02-11,off,Tết,\n", "x.csv")
    with pytest.raises(ValueError, match="not off or makeup_workday"):
        parse_rows("date,kind,description,source\n2027-02-11,holiday,Tết,QĐ\n", "x.csv")
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_rows("{", "x.json")
