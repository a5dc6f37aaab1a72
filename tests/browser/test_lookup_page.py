"""The citizen's look-up page (where a slip's QR code leads) in a real headless Chromium,
served by intake in-process on loopback (its broker points at a closed port: receiving a
dossier and looking it up need only intake's database).

The page is read as a citizen reads it: the code is filled in from the URL, the phone is
typed, and what shows is the status and due time in Vietnamese, or what a wrong phone
means. Intake's clock is fixed (a working Tuesday morning), so the due time shown is the
same whenever the test runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.intake.api import create_app
from services.intake.keys import create_key
from shared.auth import Role
from shared.calendar import VN_TZ
from shared.settings import Settings
from tests.factories import api_key_header, dossier_body

By = pytest.importorskip("selenium.webdriver.common.by").By
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait

NOW = datetime(2026, 6, 2, 9, 0, tzinfo=VN_TZ)
PHONE = "0912345678"


@pytest.fixture(scope="module")
def received(
    tmp_path_factory: pytest.TempPathFactory,
    closed_port: int,
    served: Callable[[FastAPI], str],
) -> tuple[str, dict[str, Any]]:
    """Intake's base URL, and a dossier it received at a counter (over HTTP, as a clerk's
    screen sends it), as the look-up API answers it."""
    settings = Settings(
        var_dir=tmp_path_factory.mktemp("intake"),
        kafka_bootstrap_servers=f"127.0.0.1:{closed_port}",
        kafka_create_topics=False,
    )
    url = served(create_app(settings, clock=lambda: NOW))
    admin = api_key_header(asyncio.run(create_key(settings, Role.ADMIN, "*")))
    with httpx.Client(base_url=url, timeout=30) as client:
        answer = client.post(
            "/api/v1/dossiers",
            json=dossier_body(applicant={"name": "Nguyễn Văn A", "phone": PHONE}),
            headers=admin,
        )
        assert answer.status_code == 201, answer.text
        code = answer.json()["code"]
        found = client.post("/api/v1/public/lookup", json={"code": code, "phone": PHONE})
    assert found.status_code == 200, found.text
    return url, found.json()


def look_up(browser: Any, url: str, code: str, phone: str) -> None:
    """Open the QR code's page for ``code``, type ``phone``, press the button."""
    browser.get(f"{url}/api/v1/public/dossiers/{code}")
    assert browser.find_element(By.ID, "code").get_attribute("value") == code
    browser.find_element(By.ID, "phone").send_keys(phone)
    browser.find_element(By.ID, "submit").click()


def test_the_qr_page_shows_status_and_due_time_for_the_applicants_phone(
    received: tuple[str, dict[str, Any]], browser: Any
) -> None:
    url, dossier = received
    browser.get_log("browser")  # drop what earlier pages logged
    look_up(browser, url, dossier["code"], "+84" + PHONE[1:])  # written either way
    result = WebDriverWait(browser, 15).until(
        lambda d: (
            d.find_element(By.ID, "result")
            if d.find_element(By.ID, "result").is_displayed()
            else None
        ),
        "no result shown",
    )
    assert browser.title == "Tra cứu tình trạng hồ sơ"
    assert browser.find_element(By.ID, "result-code").text == dossier["code"]
    assert browser.find_element(By.ID, "result-status").text == "Đã tiếp nhận"
    due = browser.find_element(By.ID, "result-due").text
    assert due == dossier["due_text"] == "17 giờ 00 phút, ngày 02 tháng 06 năm 2026"
    assert "Thời gian hẹn trả kết quả" in result.text
    assert not browser.find_element(By.ID, "error").is_displayed()
    assert PHONE[1:] not in browser.current_url
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_a_wrong_phone_is_told_plainly_and_shows_nothing_of_the_dossier(
    received: tuple[str, dict[str, Any]], browser: Any
) -> None:
    url, dossier = received
    look_up(browser, url, dossier["code"], "0987654321")
    error = WebDriverWait(browser, 15).until(
        lambda d: (
            d.find_element(By.ID, "error")
            if d.find_element(By.ID, "error").is_displayed()
            else None
        ),
        "no error shown",
    )
    assert error.text.startswith("Không tìm thấy hồ sơ có mã và số điện thoại này.")
    assert not browser.find_element(By.ID, "result").is_displayed()
    assert "Đã tiếp nhận" not in browser.find_element(By.TAG_NAME, "body").text
