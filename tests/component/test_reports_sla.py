"""The report end to end in one process: events through notify's consumer (in-memory
broker, real SQLite), then the report over HTTP, as JSON, CSV and XLSX.

The fixture is counted by hand (see ``EXPECTED_A``): carried-over dossiers, a dossier
finished after the period (open and overdue at its end), a withdrawal, two supplement
requests, a unit with nothing in the period, and a finished event arriving before the
received event of its dossier.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from openpyxl import load_workbook
from prometheus_client import REGISTRY
from sqlmodel import select

from services.notify import app as notify_app
from services.notify import process as notify_process
from services.notify.reports import ReportProjection, recompute
from services.notify.reports.api import Reports, router
from services.notify.reports.store import NeedsApology, ReportDay, ReportDue
from shared.auth import Authenticator, Role
from shared.calendar import VN_TZ
from shared.events import (
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    Envelope,
    Payload,
    SlaFinished,
    SlaWarning,
    TimeLimit,
)
from shared.keys_sync import key_lookup
from shared.service import answer_refusals
from shared.settings import Settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_SLA
from tests.factories import grant_key

UNIT_A = "000.00.00.H56"
UNIT_B = "000.00.01.H56"
UNIT_C = "000.00.02.H56"
TODAY = datetime(2026, 4, 10, 10, 0, tzinfo=VN_TZ)


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=VN_TZ)


def wrap(payload: Payload, code: str) -> Envelope:
    return Envelope.wrap(payload, occurred_at=TODAY, source="test", dossier_code=code)


def received(
    code: str, unit: str, day: str, due: str | None, channel: Channel = Channel.COUNTER
) -> Envelope:
    return wrap(
        DossierReceived(
            procedure_code="2.000635",
            channel=channel,
            receiving_unit=unit,
            received_at=at(day),
            due_at=at(due) if due else None,
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        code,
    )


def finished(
    code: str, unit: str, day: str, due: str, outcome: str, *, supplements: int = 0
) -> Envelope:
    return wrap(
        SlaFinished.model_validate(
            {
                "outcome": outcome,
                "finished_at": at(day, 15),
                "due_at": at(due),
                "supplement_requests": supplements,
                "extended": False,
                "office": unit,
                "procedure_code": "2.000635",
                "receiving_unit": unit,
                "channel": "counter",
            }
        ),
        code,
    )


def action(code: str, kind: DossierAction, day: str, sequence: int) -> Envelope:
    return wrap(
        DossierActionRecorded(
            action=kind, sequence=sequence, at=at(day, 10), status="x", national_status=8
        ),
        code,
    )


def warning(
    code: str, kind: str, due: str, *, step: int | None = None, office: str = UNIT_A
) -> Envelope:
    return wrap(
        SlaWarning.model_validate(
            {
                "kind": kind,
                "step": step,
                "office": office,
                "due_at": at(due),
                "working_hours_left": 2.0,
                "at": TODAY,
            }
        ),
        code,
    )


def a(n: int) -> str:
    return f"{UNIT_A}-2603{n:02d}-0001"


FIXTURE: list[Envelope] = [
    # A1: received and finished before March: in no column of March.
    received(a(1), UNIT_A, "2026-02-20", "2026-02-25"),
    finished(a(1), UNIT_A, "2026-02-24", "2026-02-25", "early"),
    # A2: carried over, finished early in March.
    received(a(2), UNIT_A, "2026-02-25", "2026-03-03"),
    finished(a(2), UNIT_A, "2026-03-02", "2026-03-03", "early"),
    # A3: carried over, still open, overdue at the end of March.
    received(a(3), UNIT_A, "2026-02-26", "2026-03-02"),
    # A4: new online, on time.
    received(a(4), UNIT_A, "2026-03-05", "2026-03-10", Channel.ONLINE),
    finished(a(4), UNIT_A, "2026-03-10", "2026-03-10", "on_time"),
    # A5: new at the counter, late; its finished event comes before its received event.
    finished(a(5), UNIT_A, "2026-03-12", "2026-03-09", "late"),
    received(a(5), UNIT_A, "2026-03-06", "2026-03-09"),
    # A6: new by post, open within time at the end of March (due 3 April), overdue by 10 April.
    received(a(6), UNIT_A, "2026-03-20", "2026-04-03", Channel.POST),
    # A7: open within time but two supplement requests: late for 766.
    received(a(7), UNIT_A, "2026-03-25", "2026-04-05"),
    action(a(7), DossierAction.REQUEST_SUPPLEMENT, "2026-03-26", 1),
    action(a(7), DossierAction.SUBMIT_SUPPLEMENT, "2026-03-27", 2),
    action(a(7), DossierAction.REQUEST_SUPPLEMENT, "2026-03-28", 3),
    # A8: finished after the period (2 April): open and overdue at the end of March.
    received(a(8), UNIT_A, "2026-03-28", "2026-03-31"),
    finished(a(8), UNIT_A, "2026-04-02", "2026-03-31", "late"),
    # A9: withdrawn: received, then in no rate.
    received(a(9), UNIT_A, "2026-03-10", "2026-03-20"),
    action(a(9), DossierAction.WITHDRAW, "2026-03-15", 1),
    # A10: received in April, due today (10 April): within time today.
    received(a(10), UNIT_A, "2026-04-02", "2026-04-10"),
    # A11: finished "early" but with two supplement requests: late for 766 only.
    received(a(11), UNIT_A, "2026-03-11", "2026-03-20"),
    finished(a(11), UNIT_A, "2026-03-18", "2026-03-20", "early", supplements=2),
    # B1: received in January, never finished: carried over and overdue.
    received(f"{UNIT_B}-260110-0001", UNIT_B, "2026-01-10", "2026-01-15"),
    # C1: all in January: unit C has an empty March and is left out.
    received(f"{UNIT_C}-260105-0001", UNIT_C, "2026-01-05", "2026-01-08"),
    finished(f"{UNIT_C}-260105-0001", UNIT_C, "2026-01-06", "2026-01-08", "early"),
]


def block(
    received: tuple[int, int, int],
    finished: tuple[int, int, int],
    open_: tuple[int, int],
    excluded: int,
    rates: tuple[float | None, float | None],
) -> dict[str, Any]:
    carried, online, counter_post = received
    early, on_time, late = finished
    within, overdue = open_
    on_time_rate, r766 = rates
    return {
        "received": {
            "total": carried + online + counter_post,
            "carried_over": carried,
            "new_online": online,
            "new_counter_post": counter_post,
        },
        "finished": {
            "total": early + on_time + late,
            "early": early,
            "on_time": on_time,
            "late": late,
        },
        "open": {"total": within + overdue, "within_time": within, "overdue": overdue},
        "withdrawn_or_refused": excluded,
        "on_time_rate": on_time_rate,
        "rate_766": r766,
    }


# Counted by hand. March, unit A: carried over A2, A3; new online A4; new counter/post A5,
# A6, A7, A8, A9, A11; finished early A2, A11, on time A4, late A5; withdrawn A9; open at
# the end A3 (overdue), A6, A7 (within), A8 (overdue). On time: 3 / 4 = 75.00.
# 766: good = A2, A4 (A11 has two supplements) + A6 (A7 has two) = 3; of 4 + 4 → 37.50.
EXPECTED_A = block((2, 1, 6), (2, 1, 1), (2, 2), 1, (75.0, 37.5))
# Unit B: carried over and overdue; nothing finished: on-time rate null, 766: 0 / 1.
EXPECTED_B = block((1, 0, 0), (0, 0, 0), (0, 1), 0, (None, 0.0))
# Total: good 3 of 4 finished + 5 open → 33.33.
EXPECTED_TOTAL = block((3, 1, 6), (2, 1, 1), (2, 3), 1, (75.0, 33.33))
# April up to today, unit A: carried over A3, A6, A7, A8; new A10; finished A8 late; open
# now A3, A6, A7 overdue (due before today), A10 due today: within time.
# 766: good = A10 → 1 of 1 + 4 = 20.00.
EXPECTED_A_APRIL = block((4, 0, 1), (0, 0, 1), (1, 3), 0, (0.0, 20.0))


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def notifier(tmp_path: Path) -> notify_app.Notifier:
    built = notify_process.build(Settings(var_dir=tmp_path), clock=FakeClock(TODAY)).notifier
    await built.runtime.db.create_tables(built.runtime.tables)
    return built


async def feed(notifier: notify_app.Notifier, events: list[Envelope]) -> None:
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        for event in events:
            topic = DOSSIER_SLA if event.type.startswith("sla.") else DOSSIER_LIFECYCLE
            await broker.publish(event.encode(), topic.name, key=event.key)


def client(notifier: notify_app.Notifier) -> httpx.AsyncClient:
    """The reports' endpoints, called without a key (the reports are public)."""
    app = FastAPI()
    answer_refusals(app)  # as create_http_app does
    reports = Reports(notifier.runtime, clock=FakeClock(TODAY))
    app.include_router(router(reports, Authenticator(key_lookup(notifier.runtime.db))))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def get_report(notifier: notify_app.Notifier, **params: str) -> httpx.Response:
    async with client(notifier) as http:
        return await http.get("/api/v1/reports/sla", params=params)


MARCH = {"from": "2026-03-01", "to": "2026-03-31", "group_by": "unit"}


async def test_march_by_unit_matches_the_hand_count(notifier: notify_app.Notifier) -> None:
    await feed(notifier, FIXTURE)
    answer = await get_report(notifier, **MARCH)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"from", "to", "group_by", "rows", "total"}
    assert (body["from"], body["to"], body["group_by"]) == ("2026-03-01", "2026-03-31", "unit")
    assert [r["key"] for r in body["rows"]] == [UNIT_A, UNIT_B]
    assert body["rows"][0] == {"key": UNIT_A, "label": UNIT_A, **EXPECTED_A}
    assert body["rows"][1] == {"key": UNIT_B, "label": UNIT_B, **EXPECTED_B}
    assert body["total"] == EXPECTED_TOTAL


async def test_running_period_judges_open_dossiers_now(notifier: notify_app.Notifier) -> None:
    await feed(notifier, FIXTURE)
    body = (
        await get_report(notifier, **{**MARCH, "from": "2026-04-01", "to": "2026-04-30"})
    ).json()
    row_a = next(r for r in body["rows"] if r["key"] == UNIT_A)
    assert {k: row_a[k] for k in EXPECTED_A_APRIL} == EXPECTED_A_APRIL


async def test_redelivered_events_count_once(notifier: notify_app.Notifier) -> None:
    await feed(notifier, FIXTURE)
    await feed(notifier, FIXTURE)
    body = (await get_report(notifier, **MARCH)).json()
    assert body["total"] == EXPECTED_TOTAL


async def test_other_groupings_have_the_same_total(notifier: notify_app.Notifier) -> None:
    await feed(notifier, FIXTURE)
    for group_by, keys in (
        ("channel", ["counter", "online", "post"]),
        ("level", ["xa"]),
        ("field", ["Hộ tịch"]),
        ("procedure", ["2.000635"]),
    ):
        body = (await get_report(notifier, **{**MARCH, "group_by": group_by})).json()
        assert [r["key"] for r in body["rows"]] == keys, group_by
        assert body["total"] == EXPECTED_TOTAL, group_by
    by_channel = (await get_report(notifier, **{**MARCH, "group_by": "channel"})).json()
    assert by_channel["rows"][0]["label"] == "Trực tiếp"


async def test_a_period_with_nothing_gives_null_rates(notifier: notify_app.Notifier) -> None:
    await feed(notifier, FIXTURE)
    body = (
        await get_report(notifier, **{**MARCH, "from": "2025-01-01", "to": "2025-01-31"})
    ).json()
    assert body["rows"] == []
    assert body["total"] == block((0, 0, 0), (0, 0, 0), (0, 0), 0, (None, None))


async def test_recompute_agrees_with_the_incremental_counts(
    notifier: notify_app.Notifier,
) -> None:
    await feed(notifier, FIXTURE)

    async def snapshot() -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        async with notifier.runtime.db.sessions() as session:
            days = (await session.exec(select(ReportDay))).all()
            dues = (await session.exec(select(ReportDue))).all()
        return (
            {(r.dim, r.key, r.day, r.measure, r.n) for r in days if r.n},
            {(r.dim, r.key, r.due_day, r.closed_day, r.measure, r.n) for r in dues if r.n},
        )

    incremental = await snapshot()
    assert incremental[0]
    assert incremental[1]
    async with notifier.runtime.db.transaction() as session:
        assert await recompute(session, batch=3) == 13
    assert await snapshot() == incremental


async def test_recompute_over_http_needs_an_admin_key(notifier: notify_app.Notifier) -> None:
    await feed(notifier, FIXTURE)
    viewer = await grant_key(notifier.runtime.db, Role.VIEWER)
    admin = await grant_key(notifier.runtime.db, Role.ADMIN)
    async with client(notifier) as http:
        assert (await http.post("/api/v1/reports/recompute")).status_code == 401
        refused = await http.post("/api/v1/reports/recompute", headers=viewer)
        assert refused.status_code == 403
        done = await http.post("/api/v1/reports/recompute", headers=admin)
    assert done.status_code == 200
    assert done.json() == {"facts": 13}
    assert (await get_report(notifier, **MARCH)).json()["total"] == EXPECTED_TOTAL


async def test_csv_and_xlsx_have_the_same_numbers(notifier: notify_app.Notifier) -> None:
    await feed(notifier, FIXTURE)
    as_csv = await get_report(notifier, **MARCH, format="csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0][:3] == ["Mã", "Tên", "Tiếp nhận: tổng"]
    assert lines[1][:6] == [UNIT_A, UNIT_A, "9", "2", "1", "6"]
    assert lines[1][-2:] == ["75.00", "37.50"]
    assert lines[2][-2:] == ["", "0.00"]
    assert lines[3][1] == "Tổng cộng"
    assert lines[3][-2:] == ["75.00", "33.33"]

    as_xlsx = await get_report(notifier, **MARCH, format="xlsx")
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == lines[0]
    assert rows[1][:14] == [UNIT_A, UNIT_A, 9, 2, 1, 6, 4, 2, 1, 1, 4, 2, 2, 1]
    assert rows[1][14:] == [75.0, 37.5]
    assert rows[2][14:] == [None, 0.0]
    assert rows[3][14:] == [75.0, 33.33]


async def test_bad_period_is_refused(notifier: notify_app.Notifier) -> None:
    answer = await get_report(notifier, **{**MARCH, "from": "2026-04-01"})
    assert answer.status_code == 422
    answer = await get_report(notifier, **{**MARCH, "group_by": "applicant"})
    assert answer.status_code == 422
    for name, bad in (("to", "9999-12-31"), ("from", "1900-01-01")):
        answer = await get_report(notifier, **{**MARCH, name: bad})
        assert answer.status_code == 422
        [problem] = answer.json()["detail"]
        assert problem["loc"] == ["query", name]


async def test_gauges_hold_this_months_rates(notifier: notify_app.Notifier) -> None:
    await feed(notifier, FIXTURE)
    reports = Reports(notifier.runtime, clock=FakeClock(TODAY))
    await reports.refresh_gauges()
    value = REGISTRY.get_sample_value("motcua_rate_766", {"unit": UNIT_A, "field": "Hộ tịch"})
    assert value == 20.0
    assert (
        REGISTRY.get_sample_value("motcua_on_time_rate", {"unit": UNIT_A, "field": "Hộ tịch"})
        == 0.0
    )
    assert (
        REGISTRY.get_sample_value("motcua_rate_766", {"unit": UNIT_C, "field": "Hộ tịch"}) is None
    )


async def get_dashboard(notifier: notify_app.Notifier) -> dict[str, Any]:
    async with client(notifier) as http:
        answer = await http.get("/api/v1/reports/dashboard")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def codes(items: list[dict[str, Any]]) -> list[str]:
    return [item["code"] for item in items]


async def test_an_apology_warning_lists_the_dossier_until_it_closes(
    notifier: notify_app.Notifier,
) -> None:
    await feed(notifier, FIXTURE)
    await feed(
        notifier,
        [
            warning(a(10), "apology_needed", "2026-04-10"),  # due today: not yet overdue
            warning(a(7), "apology_needed", "2026-04-05"),  # overdue by now: not listed
            warning(a(6), "apology_needed", "2026-04-14", step=0),  # one step's flag only
            received(a(12), UNIT_A, "2026-04-08", "2026-04-13"),
            warning(a(12), "apology_needed", "2026-04-13", office="STP"),
            warning(a(12), "due_soon", "2026-04-13", office="STP"),
        ],
    )
    body = await get_dashboard(notifier)
    assert body["needs_apology"] == [
        {"code": a(10), "office": UNIT_A, "due_at": "2026-04-10T09:00:00+07:00"},
        {"code": a(12), "office": "STP", "due_at": "2026-04-13T09:00:00+07:00"},
    ]
    assert codes(body["due_soon"]) == [a(12)]  # a table of its own: each kind kept apart
    assert a(7) in codes(body["overdue"])

    await feed(
        notifier,
        [
            finished(a(10), UNIT_A, "2026-04-10", "2026-04-10", "on_time"),
            action(a(12), DossierAction.WITHDRAW, "2026-04-10", 1),
        ],
    )
    body = await get_dashboard(notifier)
    assert body["needs_apology"] == []
    assert body["due_soon"] == []
    async with notifier.runtime.db.sessions() as session:
        left = (await session.exec(select(NeedsApology.code))).all()
    assert left == [a(7)]  # still open, so kept; the dashboard shows it as overdue instead


async def test_a_warning_read_after_the_closing_event_lists_nothing(
    notifier: notify_app.Notifier,
) -> None:
    """Events cross topics in any order: sla's warning may come after the withdrawal, in
    the same batch or a later one, and after the finish."""
    await feed(
        notifier,
        [
            received(a(12), UNIT_A, "2026-04-08", "2026-04-13"),
            action(a(12), DossierAction.WITHDRAW, "2026-04-09", 1),
            received(a(13), UNIT_A, "2026-04-08", "2026-04-13"),
            finished(a(13), UNIT_A, "2026-04-09", "2026-04-13", "early"),
        ],
    )
    await feed(
        notifier,
        [
            warning(a(12), "apology_needed", "2026-04-13"),
            warning(a(13), "apology_needed", "2026-04-13"),
        ],
    )
    async with notifier.runtime.db.transaction() as session:
        await ReportProjection().apply(
            session,
            [
                received(a(14), UNIT_A, "2026-04-08", "2026-04-13"),
                warning(a(14), "apology_needed", "2026-04-13"),
                action(a(14), DossierAction.REFUSE, "2026-04-09", 1),
            ],
        )
    body = await get_dashboard(notifier)
    assert body["needs_apology"] == []
