"""The seed catalogue: enough real procedures, and chains that add up to the time limit."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from importlib import resources

import pytest

from shared.calendar import VN_TZ, DurationUnit, WorkCalendar, build_calendar
from shared.catalogue import Procedure, seed_catalogue
from shared.chain import fit_step

CALENDAR = build_calendar()
WORKING_UNITS = {DurationUnit.WORKING_DAYS: Decimal(8), DurationUnit.WORKING_HOURS: Decimal(1)}


def test_the_seed_has_at_least_30_procedures_across_the_fields() -> None:
    catalogue = seed_catalogue()
    assert len(catalogue.procedures) >= 30
    fields = {p.field for p in catalogue.procedures.values()}
    for needed in ("Hộ tịch", "Chứng thực", "Đất đai", "Hoạt động xây dựng", "Bảo trợ xã hội"):
        assert needed in fields
    assert any("hộ kinh doanh" in f for f in fields)
    assert all(p.source.strip() for p in catalogue.procedures.values())


def test_intake_facing_api_still_works() -> None:
    birth = seed_catalogue().get("1.001193")
    assert birth is not None
    assert birth.duration_for(online=False).unit is DurationUnit.SAME_DAY


def working_procedures() -> list[Procedure]:
    return [p for p in seed_catalogue().procedures.values() if p.duration.unit in WORKING_UNITS]


@pytest.mark.parametrize("procedure", working_procedures(), ids=lambda p: p.code)
def test_step_hours_add_up_to_the_time_limit(procedure: Procedure) -> None:
    limit = procedure.duration.value * WORKING_UNITS[procedure.duration.unit]
    assert sum(step.hours for step in procedure.steps) == limit


def plan(
    calendar: WorkCalendar, start: datetime, hours: Sequence[Decimal]
) -> list[tuple[datetime, datetime]]:
    """(start, due) of every step when each starts as soon as the previous is due, each
    given its own hours (``shared.chain.fit_step`` without a dossier due time)."""
    schedule = []
    for index in range(len(hours)):
        due = fit_step(calendar, start, hours[index:], None).due_at
        schedule.append((start, due))
        start = due
    return schedule


LIEN_THONG = ["1.010801", "1.007073", "1.012795", "1.012790"]


@pytest.mark.parametrize("code", LIEN_THONG)
@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ),  # a Monday morning
        datetime(2026, 4, 24, 16, 30, tzinfo=VN_TZ),  # Friday before 30/4 and 1/5
        datetime(2026, 2, 12, 14, 0, tzinfo=VN_TZ),  # just before Tết 2026
    ],
)
def test_lien_thong_chain_due_times_end_at_the_dossier_due_time(code: str, start: datetime) -> None:
    procedure = seed_catalogue().get(code)
    assert procedure is not None
    assert len(procedure.steps) >= 2
    schedule = plan(CALENDAR, start, [step.hours for step in procedure.steps])
    assert schedule[-1][1] == CALENDAR.due_at(start, procedure.duration_for(online=False))
    for (_, due), (next_start, _) in itertools.pairwise(schedule):
        assert next_start == due
    assert all(step_start < due for step_start, due in schedule)


def _raw_entries() -> list[dict[str, object]]:
    """The seed file's entries as written (``seed_catalogue`` keys them by code, which
    would hide a repeated code)."""
    raw = json.loads(resources.files("shared.data").joinpath("procedures.json").read_text("utf-8"))
    entries: list[dict[str, object]] = raw["procedures"]
    return entries


def test_no_two_seed_entries_share_a_code_and_every_code_is_national() -> None:
    codes = [str(e["code"]) for e in _raw_entries()]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert [c for c in codes if not re.fullmatch(r"[12]\.\d{6}", c)] == []
    unsourced = [e["code"] for e in _raw_entries() if "code" not in str(e["source"])]
    assert unsourced == [], "every source says where its code comes from (or that it is unverified)"


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("1.004222", "thường trú"),
        ("1.001612", "thành lập hộ kinh doanh"),
        ("1.001570", "Tạm ngừng"),
        ("1.001266", "Chấm dứt"),
        ("1.000689", "kết hợp nhận cha, mẹ, con"),
        ("1.001731", "mai táng"),
    ],
)
def test_corrected_codes_name_their_procedure(code: str, words: str) -> None:
    procedure = seed_catalogue().get(code)
    assert procedure is not None
    assert words in procedure.name
    assert "public procedure data" in procedure.source


@pytest.mark.parametrize("wrong", ["1.004194", "2.000575", "2.000719", "2.000549", "2.000528"])
def test_codes_of_other_procedures_are_gone(wrong: str) -> None:
    assert seed_catalogue().get(wrong) is None


def test_permanent_residence_limit_and_fees() -> None:
    residence = seed_catalogue().get("1.004222")
    assert residence is not None
    assert (residence.duration.value, residence.duration.unit) == (7, DurationUnit.WORKING_DAYS)
    assert residence.fee_for(online=False) == 20_000
    assert residence.fee_for(online=True) == 10_000
    disability = seed_catalogue().get("1.001699")
    assert disability is not None
    assert (disability.duration.value, disability.duration.unit) == (25, DurationUnit.WORKING_DAYS)
