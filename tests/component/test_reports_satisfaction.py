"""The report's satisfaction block and index 5.4 of 766, counted by hand.

On ``test_reports_sla``'s fixture, unit A in March 2026 handled 8 dossiers (4 finished,
4 open at the end), 5 of them late for 766 (A3 and A8 overdue, A5 late, A7 and A11 with
two supplement requests): late share 5/8 = 62.5 %. Unit B handled 1, overdue. The
ratings below give unit A in March 4 ratings (A1, finished in February, rated in March
counts: ratings count on the day they are given; A11's is in April): 2 rất hài lòng,
1 hài lòng, 1 không hài lòng, so 25 % not satisfied and index 5.4 = 100 − 62.5 − 25 =
12.50. The total: late 6/9, not satisfied 1/4 → 100 − 66.67 − 25 = 8.33 (rounded once).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from services.notify import app as notify_app
from services.notify import process as notify_process
from services.notify.reports.domain import Counts
from services.notify.reports.satisfaction import Satisfaction, index_5_4, late_share
from shared.events import Channel, Envelope, RatingChannel, RatingGiven, SatisfactionLevel
from shared.settings import Settings
from tests.component.test_reports_sla import (
    FIXTURE,
    MARCH,
    TODAY,
    UNIT_A,
    UNIT_B,
    FakeClock,
    a,
    at,
    feed,
    get_dashboard,
    get_report,
    wrap,
)

V, S, N = (
    SatisfactionLevel.VERY_SATISFIED,
    SatisfactionLevel.SATISFIED,
    SatisfactionLevel.NOT_SATISFIED,
)


def rated(code: str, level: SatisfactionLevel, day: str, unit: str = UNIT_A) -> Envelope:
    return wrap(
        RatingGiven(
            level=level,
            channel=RatingChannel.KIOSK,
            at=at(day, 16),
            procedure_code="2.000635",
            receiving_unit=unit,
            dossier_channel=Channel.COUNTER,
        ),
        code,
    )


RATINGS = [
    rated(a(1), V, "2026-03-01"),
    rated(a(2), S, "2026-03-05"),
    rated(a(4), V, "2026-03-11"),
    rated(a(5), N, "2026-03-13"),
    rated(a(11), N, "2026-04-01"),  # April: not in March
]


@pytest.fixture
async def notifier(tmp_path: Path) -> notify_app.Notifier:
    built = notify_process.build(Settings(var_dir=tmp_path), clock=FakeClock(TODAY)).notifier
    await built.runtime.db.create_tables(built.runtime.tables)
    return built


def block(rated_: tuple[int, int, int], late: float | None, dissatisfied: float | None,
          index: float | None) -> dict[str, object]:  # fmt: skip
    very, satisfied, not_satisfied = rated_
    return {
        "rated": very + satisfied + not_satisfied,
        "rat_hai_long": very,
        "hai_long": satisfied,
        "khong_hai_long": not_satisfied,
        "late_share": late,
        "dissatisfied_share": dissatisfied,
        "index_5_4": index,
    }


async def test_march_satisfaction_matches_the_hand_count(notifier: notify_app.Notifier) -> None:
    await feed(notifier, [*FIXTURE, *RATINGS])
    body = (await get_report(notifier, **MARCH, satisfaction="true")).json()
    rows = {r["key"]: r["satisfaction"] for r in body["rows"]}
    assert rows[UNIT_A] == block((2, 1, 1), 62.5, 25.0, 12.5)
    assert rows[UNIT_B] == block((0, 0, 0), 100.0, None, None)
    assert body["total"]["satisfaction"] == block((2, 1, 1), 66.67, 25.0, 8.33)
    plain = (await get_report(notifier, **MARCH)).json()
    assert "satisfaction" not in plain["total"]  # the Biểu 06 contract is unchanged


async def test_a_repeated_or_second_rating_counts_once(notifier: notify_app.Notifier) -> None:
    await feed(notifier, [*FIXTURE, *RATINGS])
    await feed(notifier, [*RATINGS, rated(a(2), N, "2026-03-20")])  # a second one: ignored
    body = (await get_report(notifier, **MARCH, satisfaction="true")).json()
    assert body["total"]["satisfaction"] == block((2, 1, 1), 66.67, 25.0, 8.33)


async def test_every_grouping_has_the_same_ratings(notifier: notify_app.Notifier) -> None:
    await feed(notifier, [*FIXTURE, *RATINGS])
    for group_by, key in (("field", "Hộ tịch"), ("procedure", "2.000635"), ("level", "xa")):
        params = {**MARCH, "group_by": group_by, "satisfaction": "true"}
        body = (await get_report(notifier, **params)).json()
        [row] = body["rows"]
        assert row["key"] == key, group_by
        assert row["satisfaction"]["rated"] == 4, group_by
        assert body["total"]["satisfaction"]["index_5_4"] == 8.33, group_by


async def test_csv_xlsx_and_dashboard_show_the_block(notifier: notify_app.Notifier) -> None:
    await feed(notifier, [*FIXTURE, *RATINGS])
    as_csv = await get_report(notifier, **MARCH, format="csv", satisfaction="true")
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0][-1] == "Chỉ số 5.4 theo 766 (%)"
    assert lines[1][-5:] == ["4", "2", "1", "1", "12.50"]
    assert lines[2][-5:] == ["0", "0", "0", "0", ""]
    assert lines[3][-5:] == ["4", "2", "1", "1", "8.33"]
    as_xlsx = await get_report(notifier, **MARCH, format="xlsx", satisfaction="true")
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == lines[0]
    assert rows[1][-5:] == [4, 2, 1, 1, 12.5]
    assert rows[3][-5:] == [4, 2, 1, 1, 8.33]

    dashboard = await get_dashboard(notifier)  # April: A11's rating only
    month = {r["key"]: r for r in dashboard["satisfaction"]["rows"]}
    assert (month[UNIT_A]["rated"], month[UNIT_A]["khong_hai_long"]) == (1, 1)
    assert dashboard["satisfaction"]["total"]["rated"] == 1


def test_the_index_is_exact_then_rounded_and_never_below_zero() -> None:
    counts = Counts(early=1, late=3, finished_ok_766=1)  # 3 of 4 handled late
    assert late_share(counts) == Decimal("75.00")
    assert index_5_4(counts, Satisfaction(very_satisfied=1, not_satisfied=2)) == Decimal("0.00")
    one_third = Counts(early=2, late=1, finished_ok_766=2)  # late 33.333… %
    assert index_5_4(one_third, Satisfaction(satisfied=3)) == Decimal("66.67")
    assert index_5_4(one_third, Satisfaction()) is None  # nothing rated: N/A
    assert index_5_4(Counts(), Satisfaction(satisfied=1)) is None  # nothing handled: N/A
