"""``/dashboard`` in a real headless Chromium, served by notify in-process on loopback.

Notify runs under uvicorn in a thread (its broker points at a closed port: the page and the
report need only its database). Facts are seeded through the report projection, then the
page must show the figures ``/api/v1/reports/dashboard`` returns, with no console error.

Facts and notify's clock start at one fixed instant, midday of a mid-month Wednesday in
Vietnam (the dashboard's "today" is notify's clock's date there): the test cannot straddle
a midnight or a month's end, whenever it runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.notify.api import create_app
from services.notify.reports import TABLES, ReportProjection
from shared.db import Database
from shared.events import (
    Channel,
    DossierReceived,
    Envelope,
    Payload,
    SlaFinished,
    SlaWarning,
    TimeLimit,
)
from shared.settings import Settings

UNIT_A = "000.00.00.H56"
UNIT_B = "000.00.01.H56"
NOW = datetime(2025, 6, 18, 5, 0, tzinfo=UTC)  # 12:00 in Vietnam, Wednesday 18 June 2025

By = pytest.importorskip("selenium.webdriver.common.by").By
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait


def clock_from(start: datetime) -> Callable[[], datetime]:
    """A clock that reads ``start`` now and runs on at the real pace from there."""
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def wrap(payload: Payload, code: str) -> Envelope:
    return Envelope.wrap(payload, occurred_at=NOW, source="test", dossier_code=code)


def received(code: str, unit: str, at: datetime, due: datetime) -> Envelope:
    return wrap(
        DossierReceived(
            procedure_code="2.000635",
            channel=Channel.COUNTER,
            receiving_unit=unit,
            received_at=at,
            due_at=due,
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        code,
    )


def seed_events(now: datetime) -> list[Envelope]:
    day = timedelta(days=1)
    finished = SlaFinished(
        outcome="early",
        finished_at=now,
        due_at=now + 2 * day,
        supplement_requests=0,
        extended=False,
        office=UNIT_A,
        procedure_code="2.000635",
        receiving_unit=UNIT_A,
        channel=Channel.COUNTER,
    )
    warning = SlaWarning(
        kind="due_soon", office=UNIT_B, due_at=now + 3 * day, working_hours_left=4.0, at=now
    )
    apology = SlaWarning(
        kind="apology_needed", office=UNIT_B, due_at=now + day, working_hours_left=2.0, at=now
    )
    return [
        received(f"{UNIT_A}-000001-0001", UNIT_A, now, now + 2 * day),
        wrap(finished, f"{UNIT_A}-000001-0001"),
        received(f"{UNIT_A}-000001-0002", UNIT_A, now - 10 * day, now - 5 * day),
        received(f"{UNIT_B}-000001-0001", UNIT_B, now, now + 3 * day),
        wrap(warning, f"{UNIT_B}-000001-0001"),
        received(f"{UNIT_B}-000001-0002", UNIT_B, now - 2 * day, now + day),
        wrap(apology, f"{UNIT_B}-000001-0002"),
    ]


async def seed(settings: Settings) -> None:
    db = Database(settings.database_url_for("notify"))
    await db.create_tables(TABLES)
    async with db.transaction() as session:
        await ReportProjection().apply(session, seed_events(NOW))
    await db.dispose()


@pytest.fixture(scope="module")
def notify_url(
    tmp_path_factory: pytest.TempPathFactory,
    closed_port: int,
    served: Callable[[FastAPI], str],
) -> str:
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("notify"),
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port}",
        kafka_create_topics=False,
    )
    asyncio.run(seed(settings))
    return served(create_app(settings, clock=clock_from(NOW)))


def cells(browser: Any, table: str) -> dict[str, list[str]]:
    rows = browser.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    return {
        row.get_attribute("data-key"): [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        for row in rows
    }


def shown(block: dict[str, Any]) -> list[str]:
    def rate(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    return [
        str(block["received"]["total"]),
        str(block["finished"]["total"]),
        str(block["open"]["total"]),
        str(block["open"]["overdue"]),
        rate(block["on_time_rate"]),
        rate(block["rate_766"]),
    ]


def test_dashboard_shows_the_api_figures_without_console_errors(
    notify_url: str, browser: Any
) -> None:
    browser.get(f"{notify_url}/dashboard")
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.body.dataset.loaded") == "true"
    )
    api = httpx.get(f"{notify_url}/api/v1/reports/dashboard", timeout=10).json()
    assert browser.title == "Bảng theo dõi giải quyết hồ sơ"
    assert api["generated_at"].startswith("2025-06-18T12:")  # notify reads the test's clock

    month = cells(browser, "month")
    assert set(month) == {UNIT_A, UNIT_B, "total"}
    for row in api["month"]["rows"]:
        assert month[row["key"]][1:] == shown(row)
    assert month["total"][1:] == shown(api["month"]["total"])
    assert month[UNIT_A][5] == "100.00"  # one finished early, against a hand count
    today = cells(browser, "today")
    assert today["total"][1:] == shown(api["today"]["total"])

    assert list(cells(browser, "overdue")) == [d["code"] for d in api["overdue"]]
    assert [d["code"] for d in api["overdue"]] == [f"{UNIT_A}-000001-0002"]
    assert list(cells(browser, "due-soon")) == [f"{UNIT_B}-000001-0001"]

    heading = browser.find_element(By.XPATH, "//table[@id='needs-apology']/preceding-sibling::h2")
    assert heading.text == "Cần thư xin lỗi (Mẫu 04)"
    assert [d["code"] for d in api["needs_apology"]] == [f"{UNIT_B}-000001-0002"]
    apology = cells(browser, "needs-apology")
    assert list(apology) == [f"{UNIT_B}-000001-0002"]
    code, office, due = apology[f"{UNIT_B}-000001-0002"]
    assert (code, office) == (f"{UNIT_B}-000001-0002", UNIT_B)
    assert "19/6/2025" in due  # 12:00 Thursday 19 June in Vietnam, as vi-VN writes it

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
