"""``/dashboard`` in a real headless Chromium, as the stack serves it: notify and the portal
in-process on loopback behind the entry point (``motcua.gateway``), all same origin.

Notify and the portal run under uvicorn in threads (their broker points at a closed port:
the page, the report and the portal's summary need only their databases). Facts are seeded
through the report projection and rows into the portal's ledger, then the page must show
the figures ``/api/v1/reports/dashboard`` and ``/api/v1/portal/summary`` return, with no
console error. The page served by notify alone (no portal to ask) and a portal that is not
configured are checked too: the section says so, the rest of the page is whole.

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

from motcua.gateway import create_gateway
from services.notify.api import create_app
from services.notify.reports import TABLES, ReportProjection
from services.portal import store as portal_store
from services.portal.api import create_app as create_portal_app
from services.portal.settings import PortalSettings
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
from shared.migrations import upgrade
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


PORTAL_ROWS = (  # (code, unit, acknowledged, failed, minutes the state waits)
    (f"{UNIT_A}-000001-0001", UNIT_A, True, False, 0),
    (f"{UNIT_A}-000001-0002", UNIT_A, False, False, 45),
    (f"{UNIT_B}-000001-0001", UNIT_B, False, True, 120),
)


async def seed_portal(settings: Settings) -> None:
    """Unit A: one synced, one pending for 45 minutes; unit B: one failed (since 2 hours)."""
    db = Database(settings.database_url_for("portal"))
    await upgrade(db, "portal")
    async with db.transaction() as session:
        for code, unit, acked, failed, minutes in PORTAL_ROWS:
            row = portal_store.PortalDossier(
                code=code, receiving_unit=unit, created=acked, failed=failed
            )
            session.add(row)
            await session.flush()
            at = NOW - timedelta(minutes=minutes)
            status = portal_store.SENT if acked else portal_store.PENDING
            session.add(
                portal_store.PortalState(
                    code=code, step=0, national_status=2, at=at, status=status, created_at=at
                )
            )
    await db.dispose()


def broker_less(tmp_path_factory: pytest.TempPathFactory, name: str, closed_port: int) -> Settings:
    return Settings(
        var_dir=tmp_path_factory.mktemp(name),
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port}",
        kafka_create_topics=False,
    )


@pytest.fixture(scope="module")
def notify_alone_url(
    tmp_path_factory: pytest.TempPathFactory,
    closed_port: int,
    served: Callable[[FastAPI], str],
) -> str:
    """Notify by itself: the page has no portal summary to ask."""
    settings = broker_less(tmp_path_factory, "notify", closed_port)
    asyncio.run(seed(settings))
    return served(create_app(settings, clock=clock_from(NOW)))


def portal_url(
    tmp_path_factory: pytest.TempPathFactory,
    closed_port: int,
    served: Callable[[FastAPI], str],
    portal: PortalSettings,
) -> str:
    settings = broker_less(tmp_path_factory, "portal", closed_port)
    asyncio.run(seed_portal(settings))
    return served(create_portal_app(settings, portal=portal, clock=clock_from(NOW)))


@pytest.fixture(scope="module")
def notify_url(
    tmp_path_factory: pytest.TempPathFactory,
    closed_port: int,
    served: Callable[[FastAPI], str],
    notify_alone_url: str,
) -> str:
    """The entry point, routing to notify and to a configured portal (its address is a
    closed port: the seeded rows lack the facts to be sent, nothing is tried)."""
    configured = PortalSettings(url=f"http://127.0.0.1:{closed_port}")
    portal = portal_url(tmp_path_factory, closed_port, served, configured)
    return served(create_gateway({"notify": notify_alone_url, "portal": portal}))


@pytest.fixture(scope="module")
def unconfigured_url(
    tmp_path_factory: pytest.TempPathFactory,
    closed_port: int,
    served: Callable[[FastAPI], str],
    notify_alone_url: str,
) -> str:
    """The entry point, routing to notify and to a portal without MOTCUA_PORTAL_URL."""
    portal = portal_url(tmp_path_factory, closed_port, served, PortalSettings(url=None))
    return served(create_gateway({"notify": notify_alone_url, "portal": portal}))


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


def portal_shown(browser: Any) -> None:
    WebDriverWait(browser, 20).until(
        lambda d: (
            d.execute_script("return document.body.dataset.portal") in ("loaded", "unavailable")
        )
    )


def test_the_portal_row_shows_the_summary_per_unit(notify_url: str, browser: Any) -> None:
    browser.get(f"{notify_url}/dashboard")
    portal_shown(browser)
    summary = httpx.get(f"{notify_url}/api/v1/portal/summary", timeout=10).json()
    heading = browser.find_element(By.XPATH, "//table[@id='portal-sync']/preceding-sibling::h2")
    assert heading.text == "Đồng bộ Cổng DVCQG"
    rows = cells(browser, "portal-sync")
    assert set(rows) == {UNIT_A, UNIT_B, "total"}
    # Against a hand count of PORTAL_ROWS: synced, pending, failed, oldest wait in minutes.
    assert rows[UNIT_A][1:4] == ["1", "1", "0"]
    assert rows[UNIT_B][1:4] == ["0", "0", "1"]
    assert rows["total"][1:4] == ["1", "1", "1"]
    for unit in summary["units"]:
        assert rows[unit["unit"]][4] == str(unit["oldest_pending_minutes"])
    assert int(rows[UNIT_A][4]) in (45, 46)  # the clock runs on from NOW while the page loads
    assert not browser.find_element(By.ID, "portal-note").is_displayed()
    assert "000001" not in browser.find_element(By.ID, "portal-sync").text  # no dossier code
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_an_unconfigured_portal_is_said_beside_its_figures(
    unconfigured_url: str, browser: Any
) -> None:
    browser.get(f"{unconfigured_url}/dashboard")
    portal_shown(browser)
    note = browser.find_element(By.ID, "portal-note")
    assert note.is_displayed()
    assert "chưa cấu hình cổng dvcqg" in note.text.lower()
    assert cells(browser, "portal-sync")["total"][1:4] == ["1", "1", "1"]  # the ledger still fills
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_without_a_portal_the_section_says_so_and_the_page_is_whole(
    notify_alone_url: str, browser: Any
) -> None:
    browser.get(f"{notify_alone_url}/dashboard")
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.body.dataset.loaded") == "true"
    )
    portal_shown(browser)
    assert browser.execute_script("return document.body.dataset.portal") == "unavailable"
    note = browser.find_element(By.ID, "portal-note")
    assert "chưa có dữ liệu đồng bộ" in note.text.lower()
    assert not browser.find_element(By.ID, "portal-sync").is_displayed()
    assert set(cells(browser, "month")) == {UNIT_A, UNIT_B, "total"}  # the rest is unaffected
    assert not browser.find_element(By.ID, "error").is_displayed()
    # The browser records the summary's 404 itself (source "network"); no script error.
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert [e["source"] for e in errors] == ["network"]
    assert "/api/v1/portal/summary" in errors[0]["message"]
