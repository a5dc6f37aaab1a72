"""The screens (``/app/*``, ``/tra-cuu``) in real headless Chromium, on the real stack: the
broker and the five services as processes, the gateway in this process, as ``motcua up``
runs them.

Every page is checked for console errors and with axe-core (vendored in
``tests/browser/vendor``, MPL-2.0): no serious or critical violation. With
``MOTCUA_SCREENSHOTS=1`` each screen is saved to ``docs/screens/<name>.png`` (1366×768),
the pictures the README shows.

The stack's clock starts on a working Wednesday at 09:00 in Vietnam, and the screens take
"today" from the services' clock (``GET /api/v1/public/time``), so nothing depends on when
the test runs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from motcua.gateway import create_gateway
from motcua.keys_cli import DEV_UNIT
from motcua.screens import PAGES, PRINT_HANDLER, SECURITY_HEADERS
from motcua.stack import Stack
from services.intake import domain
from services.intake.keys import create_key
from shared.auth import Role
from shared.calendar import VN_TZ
from tests.factories import api_key_header
from tests.integration.conftest import started_stack

By = pytest.importorskip("selenium.webdriver.common.by").By
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait
_exceptions = pytest.importorskip("selenium.common.exceptions")
NoSuchElementException = _exceptions.NoSuchElementException
StaleElementReferenceException = _exceptions.StaleElementReferenceException

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SHOTS = ROOT / "docs" / "screens"
OFFICE = "000.00.02.H56"  # where the test's routing rule sends every dossier
OTHER_OFFICE = "000.00.03.H56"
PHONE = "0912345678"
PROCEDURE = "2.000635"

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Desk:
    """The running stack, the gateway's URL and a key of each role the screens need."""

    stack: Stack
    base: str
    counter: str
    kiosk: str
    office: str
    other_office: str


@pytest.fixture(scope="module")
def desk(
    tmp_path_factory: pytest.TempPathFactory, served: Callable[[FastAPI], str]
) -> Iterator[Desk]:
    with started_stack(tmp_path_factory.mktemp("screens") / "var", {}) as stack:
        settings = stack.settings()

        async def keys() -> list[str]:
            return [
                await create_key(settings, Role.COUNTER, DEV_UNIT),
                await create_key(settings, Role.KIOSK, DEV_UNIT),
                await create_key(settings, Role.OFFICE, OFFICE),
                await create_key(settings, Role.OFFICE, OTHER_OFFICE),
            ]

        made = asyncio.run(keys())
        for key in made:
            stack.wait_for_key(key, 60.0)
        assert stack.admin_key is not None
        rule = httpx.post(
            f"{stack.services['routing'].url}/api/v1/rules",
            json={"rule": {"priority": 5, "office": OFFICE}},
            headers=api_key_header(stack.admin_key),
            timeout=30,
        )
        assert rule.is_success, rule.text
        gateway = create_gateway({n: s.url for n, s in stack.services.items()}, settings)
        yield Desk(stack, served(gateway), *made)


@pytest.fixture(scope="module")
def chromium(browser: Any) -> Any:
    browser.set_window_size(1366, 768)
    return browser


# --------------------------------------------------------------------------- helpers


def until(browser: Any, check: Callable[[Any], Any], seconds: float = 20) -> Any:
    """``check``'s first truthy answer; an element gone stale meanwhile (a list the page
    redrew) is looked for again, like a missing one."""
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(browser, seconds, poll_frequency=0.1, ignored_exceptions=ignored).until(
        check
    )


def click(browser: Any, css: str) -> None:
    """Click the element ``css`` finds, finding it again if the page redrew it first."""
    until(browser, lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True)


def visible(browser: Any, element_id: str) -> bool:
    return bool(browser.find_element(By.ID, element_id).is_displayed())


def text(browser: Any, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def type_into(browser: Any, element_id: str, value: str) -> None:
    field = browser.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


def sign_in(browser: Any, url: str, key: str, unit: str) -> None:
    """Open ``url`` signed out, check that only the sign-in shows, and sign in. The tab's
    session is cleared on a page of the same origin that runs no script first: a screen
    opened with an earlier test's session would start calling the API with its key."""
    origin = "/".join(url.split("/")[:3])
    browser.get(f"{origin}/app/static/screens.css")
    browser.execute_script("sessionStorage.clear()")
    browser.get_log("browser")  # the stylesheet's tab asks for a favicon: not the screens'
    browser.get(url)
    until(browser, lambda d: visible(d, "signin"))
    assert not visible(browser, "app")  # a signed-out screen shows only the sign-in
    type_into(browser, "signin-key", key)
    type_into(browser, "signin-unit", unit)
    browser.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    until(browser, lambda d: visible(d, "app"))
    assert key not in browser.current_url


def serious_violations(browser: Any) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now."""
    if not browser.execute_script("return typeof window.axe !== 'undefined'"):
        browser.execute_script(AXE.read_text("utf-8"))
    found = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations"
        "  .filter(v => v.impact === 'serious' || v.impact === 'critical')"
        "  .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))"
        "  .catch(e => done(['axe failed: ' + e]));"
    )
    return list(found)


def console_errors(browser: Any) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def check_page(browser: Any, name: str, *, shown: str | None = None) -> None:
    """No console error, no serious accessibility violation; a screenshot if asked for
    (of the page's top, or with the element ``shown`` scrolled to its bottom)."""
    assert console_errors(browser) == []
    assert serious_violations(browser) == []
    if os.environ.get("MOTCUA_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.execute_script("window.scrollTo(0, 0)")
        if shown is not None:
            browser.execute_script(
                "document.getElementById(arguments[0]).scrollIntoView({block: 'end'})", shown
            )
        browser.save_screenshot(str(SHOTS / f"{name}.png"))


def stack_day(stack: Stack) -> str:
    """The services' date in Vietnam (YYYY-MM-DD)."""
    return stack.now().astimezone(VN_TZ).date().isoformat()


def receive_by_api(d: Desk) -> str:
    body = {
        "procedure_code": PROCEDURE,
        "channel": "counter",
        "receiving_unit": DEV_UNIT,
        "applicant": {"name": "Trần Thị B", "phone": PHONE},
    }
    answer = httpx.post(
        f"{d.base}/api/v1/dossiers", json=body, headers=api_key_header(d.counter), timeout=30
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["code"])


def public_due_text(d: Desk, code: str) -> str:
    answer = httpx.post(
        f"{d.base}/api/v1/public/lookup", json={"code": code, "phone": PHONE}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["due_text"])


# --------------------------------------------------------------------------- tests


def test_the_pages_are_served_by_the_gateway_with_no_store_and_a_strict_policy(
    desk: Desk,
) -> None:
    for path in PAGES:
        answer = httpx.get(desk.base + path, timeout=10)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/html")
        for header, value in SECURITY_HEADERS.items():
            assert answer.headers[header] == value
        assert "http://" not in answer.text  # nothing fetched from elsewhere (no CDN)
        assert "https://" not in answer.text
    assert httpx.get(f"{desk.base}/app/static/common.js", timeout=10).status_code == 200
    assert httpx.get(f"{desk.base}/app/nothing", timeout=10).status_code == 404


def test_the_screens_know_the_actions_as_intake_does(desk: Desk, chromium: Any) -> None:
    chromium.get(f"{desk.base}/app/counter")
    table = chromium.execute_script("return window.motcua.ACTIONS")
    assert set(table) == {c.value for c in domain.Command}
    for command in domain.Command:
        sources, _target = domain.TRANSITIONS[command]
        entry = table[command.value]
        assert set(entry["from"]) == {s.value for s in sources}, command
        assert set(entry["roles"]) == set(domain.COMMAND_ROLES[command]), command
        assert entry["reason"] == (command in domain.REASON_REQUIRED), command


def test_a_clerk_receives_a_dossier_opens_its_slip_and_sees_it_today(
    desk: Desk, chromium: Any
) -> None:
    b = chromium
    b.get(f"{desk.base}/app/counter")
    b.execute_script("sessionStorage.clear()")
    b.get(f"{desk.base}/app/counter")
    until(b, lambda d: visible(d, "signin"))
    check_page(b, "signin")
    sign_in(b, f"{desk.base}/app/counter", desk.counter, DEV_UNIT)
    until(
        b,
        lambda d: (
            d.execute_script("return document.querySelectorAll('#procedures option').length") > 0
        ),
    )

    type_into(b, "procedure", PROCEDURE)
    type_into(b, "applicant-name", "Nguyễn Văn A")
    type_into(b, "applicant-phone", PHONE)
    type_into(b, "documents", "Tờ khai đăng ký khai sinh\nGiấy chứng sinh")
    b.find_element(By.CSS_SELECTOR, "#receive-form button[type=submit]").click()
    until(b, lambda d: visible(d, "received"))
    code = text(b, "received-code")
    assert code.startswith(f"{DEV_UNIT}-")

    b.find_element(By.ID, "slip-html").click()
    until(b, lambda d: visible(d, "slip"))
    b.switch_to.frame(b.find_element(By.ID, "slip"))
    slip = until(b, lambda d: d.find_element(By.TAG_NAME, "body").text)
    b.switch_to.default_content()
    assert code in slip
    assert public_due_text(desk, code) in slip  # the due time, as the slip prints it

    # the day of the list is the services' (a Wednesday), not the browser's
    assert b.find_element(By.ID, "today-date").get_attribute("value") == stack_day(desk.stack)
    row = f"#today tr[data-code='{code}']"
    until(b, lambda d: d.find_elements(By.CSS_SELECTOR, row))
    click(b, f"{row} button")
    until(b, lambda d: d.find_elements(By.ID, "dossier-status"))
    assert text(b, "dossier-status") == "Đã tiếp nhận"
    shown = {
        e.get_attribute("data-action")
        for e in b.find_elements(By.CSS_SELECTOR, "#dossier button[data-action]")
    }
    legal = {
        c.value
        for c, (sources, _) in domain.TRANSITIONS.items()
        if domain.DossierStatus.RECEIVED in sources and "counter" in domain.COMMAND_ROLES[c]
    }
    assert shown == legal
    assert desk.counter not in b.current_url
    check_page(b, "counter")


def test_a_kiosk_ticket_is_called_at_the_counter_and_shown_on_the_board(
    desk: Desk, chromium: Any
) -> None:
    b = chromium
    first = b.current_window_handle
    b.switch_to.new_window("tab")
    sign_in(b, f"{desk.base}/app/board", desk.kiosk, DEV_UNIT)
    until(b, lambda d: d.execute_script("return document.body.dataset.live") == "true")
    board = b.current_window_handle

    b.switch_to.new_window("tab")
    sign_in(b, f"{desk.base}/app/kiosk", desk.kiosk, DEV_UNIT)
    check_page(b, "kiosk-pick")
    b.find_element(By.CSS_SELECTOR, "#fields button[data-field='Hộ tịch']").click()
    until(b, lambda d: visible(d, "ticket"))
    number = text(b, "ticket-number")
    assert number.startswith("A-")
    assert "H56-01" in text(b, "ticket-counters")
    assert text(b, "ticket-ahead") == "Số người đang chờ trước bạn: 0"
    check_page(b, "kiosk")
    b.find_element(By.ID, "ticket-again").click()
    b.find_element(By.CSS_SELECTOR, "#fields button[data-field='Hộ tịch']").click()
    until(b, lambda d: visible(d, "ticket") and text(d, "ticket-number") != number)
    assert text(b, "ticket-ahead") == "Số người đang chờ trước bạn: 1"  # the first ticket

    b.switch_to.new_window("tab")
    sign_in(b, f"{desk.base}/app/counter", desk.counter, DEV_UNIT)
    b.execute_script("document.getElementById('counter-id').value = 'H56-01'")
    b.find_element(By.ID, "call-next").click()
    until(b, lambda d: number in text(d, "queue-message"))

    b.switch_to.window(board)
    cell = "#board tr[data-counter='H56-01'] td.number"
    until(b, lambda d: d.find_element(By.CSS_SELECTOR, cell).text == number, seconds=5)
    check_page(b, "board")
    for handle in b.window_handles:
        if handle != first:
            b.switch_to.window(handle)
            b.close()
    b.switch_to.window(first)


def wait_for_clock(d: Desk, code: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        answer = httpx.get(
            f"{d.base}/api/v1/sla/{code}", headers=api_key_header(d.office), timeout=10
        )
        if answer.status_code == 200:
            return
        time.sleep(0.3)
    pytest.fail(f"no clock for {code} within {within} s")


def worklist_codes(b: Any) -> set[str]:
    """The codes in the worklist, read in one script (the list may be redrawn meanwhile:
    elements found one call earlier can be gone)."""
    script = "return [...document.querySelectorAll('#work tbody tr')].map(r => r.dataset.code)"
    return set(b.execute_script(script))


def shows_after_refresh(b: Any, code: str) -> bool:
    if code in worklist_codes(b):
        return True
    b.find_element(By.ID, "work-refresh").click()
    time.sleep(0.3)
    return False


def test_an_office_resolves_its_dossier_and_the_citizen_sees_it_ready(
    desk: Desk, chromium: Any
) -> None:
    b = chromium
    code = receive_by_api(desk)
    wait_for_clock(desk, code)

    sign_in(b, f"{desk.base}/app/office", desk.other_office, OTHER_OFFICE)
    until(b, lambda d: "hồ sơ" in text(d, "work-message").lower())
    assert code not in worklist_codes(b)  # another office's dossier is not shown

    b.find_element(By.ID, "signout").click()
    sign_in(b, f"{desk.base}/app/office", desk.office, OFFICE)
    until(b, lambda d: shows_after_refresh(d, code), seconds=60)
    day = stack_day(desk.stack)
    assert text(b, "work-today") == "Hôm nay: " + "/".join(reversed(day.split("-")))
    # due at 17:00 the day it was received (a same-day procedure): "today" by the services'
    # clock, whatever the browser's says
    assert b.find_elements(By.CSS_SELECTOR, f"#work tr[data-code='{code}'] [data-due-today]")
    click(b, f"#work tr[data-code='{code}'] button")
    until(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#ledger tbody tr td + td"))
    check_page(b, "office")
    b.find_element(By.CSS_SELECTOR, "#dossier button[data-action='resolve']").click()
    until(b, lambda d: text(d, "dossier-status") == "Đã có kết quả")
    until(b, lambda d: code not in worklist_codes(d))

    b.get(f"{desk.base}/tra-cuu")
    check_page(b, "tra-cuu-form")
    type_into(b, "lookup-code", code)
    type_into(b, "lookup-phone", PHONE)
    b.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    until(b, lambda d: visible(d, "result"))
    assert text(b, "result-status") == domain.STATUS_TEXT[domain.DossierStatus.RESOLVED]
    assert visible(b, "result-ready")
    assert text(b, "result-due") == public_due_text(desk, code)
    check_page(b, "tra-cuu")


PHONE_SIZE = (390, 844)


@contextmanager
def phone_sized(browser: Any) -> Iterator[None]:
    """The browser at a phone's size in portrait for the block, then back to 1366×768."""
    browser.set_window_size(*PHONE_SIZE)
    try:
        yield
    finally:
        browser.set_window_size(1366, 768)


def fits_without_sideways_scroll(browser: Any) -> None:
    width = browser.execute_script("return window.innerWidth")
    assert width <= PHONE_SIZE[0] + 20, width  # the window is a phone's
    scroll = browser.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= width, (scroll, width)


def test_the_kiosk_fits_a_phone(desk: Desk, chromium: Any) -> None:
    b = chromium
    with phone_sized(b):
        sign_in(b, f"{desk.base}/app/kiosk", desk.kiosk, DEV_UNIT)
        until(b, lambda d: d.find_elements(By.CSS_SELECTOR, "#fields button"))
        fits_without_sideways_scroll(b)
        assert serious_violations(b) == []
        b.find_element(By.CSS_SELECTOR, "#fields button[data-field='Đất đai']").click()
        until(b, lambda d: visible(d, "ticket"))
        assert text(b, "ticket-number").startswith("B-")
        assert text(b, "ticket-ahead").startswith("Số người đang chờ trước bạn: ")
        fits_without_sideways_scroll(b)
        check_page(b, "kiosk-phone")


def test_the_look_up_fits_a_phone_and_says_what_a_supplement_needs(
    desk: Desk, chromium: Any
) -> None:
    b = chromium
    code = receive_by_api(desk)
    missing = "Bản sao giấy khai sinh của người được cấp trích lục"
    asked = httpx.post(
        f"{desk.base}/api/v1/dossiers/{code}/actions",
        json={"action": "request_supplement", "reason": missing},
        headers=api_key_header(desk.counter),
        timeout=30,
    )
    assert asked.status_code == 200, asked.text
    with phone_sized(b):
        b.get(f"{desk.base}/tra-cuu")
        fits_without_sideways_scroll(b)
        assert serious_violations(b) == []
        type_into(b, "lookup-code", code)
        type_into(b, "lookup-phone", PHONE)
        b.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
        until(b, lambda d: visible(d, "result"))
        assert visible(b, "result-bring")
        assert text(b, "result-supplement") == missing
        fits_without_sideways_scroll(b)
        check_page(b, "tra-cuu-phone")


# --------------------------------------------------------------------------- ratings


@pytest.fixture(scope="module")
def rated() -> Counter[str]:
    """Every rating this module's tests had recorded, by level: what notify's report of
    the day must count."""
    return Counter()


def act_as_admin(d: Desk, code: str, action: str) -> None:
    assert d.stack.admin_key is not None
    answer = httpx.post(
        f"{d.base}/api/v1/dossiers/{code}/actions",
        json={"action": action},
        headers=api_key_header(d.stack.admin_key),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def with_result(d: Desk, *, returned: bool = False) -> str:
    """A dossier received at the counter and resolved (and returned, if asked): rateable."""
    code = receive_by_api(d)
    act_as_admin(d, code, "resolve")
    if returned:
        act_as_admin(d, code, "return_result")
    return code


def rate_on_screen(b: Any, level: str, comment: str = "", code: str | None = None) -> str:
    """Fill the rating form of the page (the code too, on the kiosk), send it and answer
    the message that replaces the previous one."""
    if code is not None:
        type_into(b, "rate-code", code)
    b.find_element(By.CSS_SELECTOR, f"label[for='rate-level-{level}']").click()
    if comment:
        type_into(b, "rate-comment", comment)
    b.execute_script("document.getElementById('rate-message').textContent = ''")
    b.find_element(By.ID, "rate-send").click()
    return str(until(b, lambda d: text(d, "rate-message")))


def only_refusals_logged(browser: Any, path: str, statuses: set[int]) -> None:
    """Chromium logs each answer with an error status as a console error: the refusals
    the test asked for are the only ones (no script error among them); drains the log."""
    logged = console_errors(browser)
    assert logged, "the refusals were not answered with their status"
    for message in logged:
        found = re.search(r"(/api/v1/\S+) - Failed to load resource: .* status of (\d+)", message)
        assert found is not None, message
        assert (found[1], int(found[2]) in statuses) == (path, True), message


def test_a_citizen_rates_a_dossier_at_the_kiosk_once_and_after_its_result(
    desk: Desk, chromium: Any, rated: Counter[str]
) -> None:
    b = chromium
    done = with_result(desk)
    pending = receive_by_api(desk)
    sign_in(b, f"{desk.base}/app/kiosk", desk.kiosk, DEV_UNIT)
    b.find_element(By.ID, "rate-open").click()
    until(b, lambda d: visible(d, "rate"))
    assert not visible(b, "pick")

    said = rate_on_screen(b, "rat_hai_long", "Cán bộ hướng dẫn tận tình", code=done)
    assert said == f"Cảm ơn bạn! Đánh giá “Rất hài lòng” cho hồ sơ {done} đã được ghi nhận."
    rated["rat_hai_long"] += 1
    assert b.find_element(By.ID, "rate-code").get_attribute("value") == ""  # ready for the next
    check_page(b, "kiosk-rating")

    said = rate_on_screen(b, "hai_long", code=done)
    assert said == f"Hồ sơ {done} đã được đánh giá rồi. Mỗi hồ sơ chỉ đánh giá một lần."
    said = rate_on_screen(b, "hai_long", code=pending)
    assert said == (
        f"Hồ sơ {pending} chưa có kết quả (hiện: Đã tiếp nhận). "
        "Bạn có thể đánh giá sau khi hồ sơ có kết quả."
    )
    unknown = f"{DEV_UNIT}-261202-9999"
    said = rate_on_screen(b, "hai_long", code=unknown)
    assert said == (
        f"Không tìm thấy hồ sơ {unknown} tại đơn vị này. Xin kiểm tra lại mã trên phiếu hẹn."
    )
    only_refusals_logged(b, "/api/v1/ratings", {404, 409})
    check_page(b, "kiosk-rating-refused")
    b.find_element(By.ID, "rate-back").click()
    until(b, lambda d: visible(d, "pick"))

    with phone_sized(b):
        b.find_element(By.ID, "rate-open").click()
        until(b, lambda d: visible(d, "rate"))
        fits_without_sideways_scroll(b)
        check_page(b, "kiosk-rating-phone")


def test_the_citizen_rates_a_returned_dossier_from_the_look_up(
    desk: Desk, chromium: Any, rated: Counter[str]
) -> None:
    b = chromium
    pending = receive_by_api(desk)
    b.get(f"{desk.base}/tra-cuu")
    type_into(b, "lookup-code", pending)
    type_into(b, "lookup-phone", PHONE)
    b.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    until(b, lambda d: visible(d, "result"))
    assert not visible(b, "rate")  # nothing to rate before the result

    code = with_result(desk, returned=True)
    type_into(b, "lookup-code", code)
    b.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    until(b, lambda d: visible(d, "rate") and text(d, "result-code") == code)
    assert text(b, "result-status") == domain.STATUS_TEXT[domain.DossierStatus.RETURNED]
    check_page(b, "tra-cuu-rating-form", shown="rate")
    said = rate_on_screen(b, "hai_long", "Nhận kết quả đúng hẹn")
    assert said == f"Cảm ơn bạn! Đánh giá “Hài lòng” cho hồ sơ {code} đã được ghi nhận."
    rated["hai_long"] += 1
    assert not visible(b, "rate-form")  # once per dossier: the form goes away
    check_page(b, "tra-cuu-rating", shown="rate")


def satisfaction_of_the_day(d: Desk) -> dict[str, Any]:
    day = stack_day(d.stack)
    answer = httpx.get(
        f"{d.base}/api/v1/reports/sla",
        params={"from": day, "to": day, "satisfaction": "true"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    rows = {row["key"]: row["satisfaction"] for row in report["rows"]}
    return {"total": report["total"]["satisfaction"], "unit": rows.get(DEV_UNIT)}


def test_notifys_report_counts_the_ratings(desk: Desk, rated: Counter[str]) -> None:
    """One more rating (không hài lòng, through the kiosk's API), then the day's report
    counts every rating of this module, by level, in the total and in the unit's row."""
    code = with_result(desk)
    given = httpx.post(
        f"{desk.base}/api/v1/ratings",
        json={"code": code, "level": "khong_hai_long"},
        headers=api_key_header(desk.kiosk),
        timeout=30,
    )
    assert given.status_code == 201, given.text
    rated["khong_hai_long"] += 1
    wanted = {level: rated[level] for level in ("rat_hai_long", "hai_long", "khong_hai_long")}

    def counted(block: dict[str, Any] | None) -> dict[str, int] | None:
        return None if block is None else {level: block[level] for level in wanted}

    deadline = time.monotonic() + 60
    seen = satisfaction_of_the_day(desk)
    while counted(seen["total"]) != wanted and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = satisfaction_of_the_day(desk)
    assert counted(seen["total"]) == wanted
    assert counted(seen["unit"]) == wanted  # every rating here is of the unit's dossiers
    total = seen["total"]
    assert total["rated"] == sum(wanted.values())
    share = round(100 * wanted["khong_hai_long"] / total["rated"], 2)
    assert total["dissatisfied_share"] == pytest.approx(share)


def board_number(browser: Any, counter: str) -> str:
    cell = f"#board tr[data-counter='{counter}'] td.number"
    return str(browser.find_element(By.CSS_SELECTOR, cell).text)


def test_the_board_reconnects_by_itself_when_its_stream_drops(desk: Desk, chromium: Any) -> None:
    """Runs last: it stops intake (the board's stream ends) and starts it again."""
    b = chromium
    sign_in(b, f"{desk.base}/app/board", desk.kiosk, DEV_UNIT)

    def live(d: Any) -> bool:
        return bool(d.execute_script("return document.body.dataset.live") == "true")

    until(b, live)
    desk.stack.kill_service("intake")
    until(b, lambda d: not live(d), seconds=30)
    desk.stack.start_service("intake")
    desk.stack.wait_ready(90, ("intake",))
    until(b, live, seconds=60)  # connected again, nobody touched the page
    ticket = httpx.post(
        f"{desk.base}/api/v1/queue/tickets",
        json={"field": "Chứng thực"},
        headers=api_key_header(desk.kiosk),
        timeout=30,
    )
    assert ticket.status_code == 201, ticket.text
    called = httpx.post(
        f"{desk.base}/api/v1/queue/counters/H56-02/call-next",
        headers=api_key_header(desk.counter),
        timeout=30,
    )
    assert called.status_code == 200, called.text
    number = called.json()["number"]
    until(b, lambda d: board_number(d, "H56-02") == number, seconds=10)


def test_the_policy_allows_the_slips_print_handler_by_its_hash() -> None:
    digest = base64.b64encode(hashlib.sha256(b"window.print()").digest()).decode()
    assert f"sha256-{digest}" == PRINT_HANDLER
    slip = (ROOT / "services" / "intake" / "slip.html.j2").read_text("utf-8")
    handlers = re.findall(r'\son[a-z]+="([^"]*)"', slip)
    assert handlers == ["window.print()"]
