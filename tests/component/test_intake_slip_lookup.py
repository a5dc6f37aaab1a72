"""The appointment slip (HTML and PDF) and the citizen's public look-up."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from services.intake.settings import IntakeSettings
from tests.component.test_intake_api import FakeClock, Keys, intake_client
from tests.factories import dossier_body


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[TestClient, Keys]]:
    options = IntakeSettings(
        public_base_url="https://motcua.example/", lookup_burst=4, lookup_per_minute=0.001
    )
    with intake_client(tmp_path, FakeClock(), options) as pair:
        yield pair


def receive(client: TestClient, keys: Keys, **overrides: object) -> str:
    response = client.post("/api/v1/dossiers", json=dossier_body(**overrides), headers=keys.admin)
    assert response.status_code == 201, response.text
    code: str = response.json()["code"]
    return code


def test_html_slip_has_code_due_time_unit_and_qr(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    code = receive(client, keys, receiving_unit="000.00.00.H49")
    response = client.get(f"/api/v1/dossiers/{code}/slip", headers=keys.admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert code in html
    assert "17 giờ 00 phút, ngày 02 tháng 06 năm 2026" in html  # due, written out
    assert "09 giờ 00 phút, ngày 02 tháng 06 năm 2026" in html  # received
    assert "Ủy ban nhân dân tỉnh Quảng Ninh" in html
    assert "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ" in html
    assert "<svg" in html
    assert "Nguyễn Văn A" in html  # printed for the citizen


def test_html_escapes_what_the_counter_typed(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    code = receive(client, keys, documents=["<script>x</script>"])
    html = client.get(f"/api/v1/dossiers/{code}/slip", headers=keys.counter).text
    assert "<script>x" not in html
    assert "&lt;script&gt;" in html


def test_pdf_slip_opens_and_lists_every_document(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    documents = [f"Giấy tờ số {i}" for i in range(1, 41)]
    code = receive(client, keys, documents=documents)
    response = client.get(f"/api/v1/dossiers/{code}/slip?format=pdf", headers=keys.counter)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    pages = PdfReader(io.BytesIO(response.content)).pages
    assert len(pages) == 2  # the list flows on, under the header again
    texts = [" ".join(page.extract_text().split()) for page in pages]
    assert all("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text for text in texts)
    text = " ".join(texts)
    assert code in text
    assert "17 giờ 00 phút, ngày 02 tháng 06 năm 2026" in text
    assert all(f"{i}. {name}" in text for i, name in enumerate(documents, start=1))


def test_no_slip_before_reception(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    code = receive(client, keys, channel="online")
    response = client.get(f"/api/v1/dossiers/{code}/slip", headers=keys.counter)
    assert response.status_code == 409
    assert client.get(f"/api/v1/dossiers/{code}/slip").status_code == 401


LOOKUP = "/api/v1/public/lookup"


def look_up(client: TestClient, code: str, phone: str) -> httpx.Response:
    answer: httpx.Response = client.post(LOOKUP, json={"code": code, "phone": phone})
    return answer


def test_public_look_up_needs_the_applicants_phone(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    code = receive(client, keys)
    local = look_up(client, code, "0912345678")
    assert local.status_code == 200
    assert local.json() == {
        "code": code,
        "status": "received",
        "national_status": 2,
        "due_at": "2026-06-02T17:00:00+07:00",
        "status_text": "Đã tiếp nhận",
        "due_text": "17 giờ 00 phút, ngày 02 tháng 06 năm 2026",
    }
    assert look_up(client, code, "+84912345678").status_code == 200
    wrong = look_up(client, code, "0987654321")
    unknown = look_up(client, "000.00.00.H56-260101-9999", "0912345678")
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()  # tells nobody whether the code exists


def test_public_look_up_takes_only_a_code_and_a_phone(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    code = receive(client, keys)
    for body in (
        {"code": code},
        {"code": code, "phone": "0912345678", "name": "x"},
        {"code": "not a code", "phone": "0912345678"},
        {"code": code, "phone": "0912345678' OR 1=1"},
        {"code": code, "phone": "0" * 21},
    ):
        assert client.post(LOOKUP, json=body).status_code == 422, body
    # the slip's QR code leads to a page that asks for the phone and posts it: a phone in
    # the URL (the old form, and so in access logs) is not used
    page = client.get(f"/api/v1/public/dossiers/{code}", params={"phone": "0912345678"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'value="{code}"' in page.text
    assert "0912345678" not in page.text
    assert '"/api/v1/public/lookup"' in page.text
    blank = client.get('/api/v1/public/dossiers/"><script>alert(1)<')
    assert blank.status_code == 200
    assert "<script>alert" not in blank.text
    assert 'value=""' in blank.text


def test_public_look_up_is_rate_limited_per_client(env: tuple[TestClient, Keys]) -> None:
    client, keys = env
    codes = [receive(client, keys) for _ in range(5)]
    # wrong phones on different codes: only the client's bucket (4) runs out
    answers = [look_up(client, code, "0900000000").status_code for code in codes]
    assert answers == [404, 404, 404, 404, 429]
    limited = look_up(client, codes[0], "0912345678")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1


def test_wrong_phones_lock_the_code_for_every_client(tmp_path: Path) -> None:
    options = IntakeSettings(lookup_burst=100, lookup_failures_per_code=3)
    with intake_client(tmp_path, FakeClock(), options) as (client, keys):
        code = receive(client, keys)
        other = receive(client, keys)
        # the right phone is no guess: it never counts against the code
        assert [look_up(client, code, "0912345678").status_code for _ in range(5)] == [200] * 5
        guesses = [look_up(client, code, f"090000000{i}").status_code for i in range(4)]
        assert guesses == [404, 404, 404, 429]
        locked = look_up(client, code, "0912345678")  # the right phone too, while locked
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) > 60 * 60 / 3 - 5
        assert look_up(client, other, "0912345678").status_code == 200
        # an unknown code locks alike: a 429 tells nobody whether the code exists
        unknown = "000.00.00.H56-260101-9999"
        assert [look_up(client, unknown, "0912345678").status_code for _ in range(4)] == [
            404,
            404,
            404,
            429,
        ]
