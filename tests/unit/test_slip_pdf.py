"""The slip's PDF: every field of the HTML slip, inside the margins of A4, over as many
pages as the document list needs."""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import segno
from pypdf import PdfReader
from pypdf.generic import ContentStream

from services.intake.slip import Slip, render_pdf

PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.skipif(
    PDFTOTEXT is None,
    reason="needs pdftotext from Debian's poppler-utils (apt-get install poppler-utils)",
)

PT_PER_MM = 72 / 25.4
PAGE_WIDTH, PAGE_HEIGHT = 210 * PT_PER_MM, 297 * PT_PER_MM  # A4
LEFT = RIGHT = BOTTOM = 20 * PT_PER_MM  # the printable area's margins
TOP = 15 * PT_PER_MM
TOLERANCE = 1.0  # pt: rounding in pdftotext's boxes, far below a glyph's width
MOTTO = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM Độc lập - Tự do - Hạnh phúc"

TYPICAL = Slip(
    code="000.00.00.H49-260602-0001",
    unit_name="Ủy ban nhân dân tỉnh Quảng Ninh",
    procedure_name="Đăng ký khai sinh có yếu tố nước ngoài",
    applicant_name="Nguyễn Thị Hoàng Phương Thảo",
    applicant_phone="0912345678",
    documents=["Tờ khai đăng ký khai sinh", "Giấy chứng sinh"],
    time_limit="3 ngày làm việc",
    received_at=datetime(2026, 6, 2, 2, 0, tzinfo=UTC),  # 09:00 in Vietnam
    due_at=datetime(2026, 6, 2, 10, 0, tzinfo=UTC),  # 17:00 in Vietnam
    lookup_url="https://motcua.example/tra-cuu/000.00.00.H49-260602-0001",
)
CROWDED = replace(
    TYPICAL,
    applicant_name=" ".join(["Tôn Nữ Hoàng Phương Thảo Ngọc Bích Khuê"] * 6),
    documents=[
        f"Bản sao giấy tờ số {i} chứng minh quan hệ nhân thân, có chứng thực hợp lệ"
        for i in range(1, 21)
    ],
)
UNBREAKABLE = replace(
    TYPICAL,
    unit_name="Ủy ban nhân dân xã Thượng Nhật, huyện Nam Đông, thành phố Huế, tỉnh Thừa Thiên",
    applicant_name="Đ" * 150,
    applicant_phone=None,
    documents=["Ư" * 200],
    due_at=None,
)


def page_texts(pdf: bytes) -> list[str]:
    """Each page's text with line breaks and runs of spaces folded into one space."""
    pages = PdfReader(io.BytesIO(pdf)).pages
    return [" ".join(page.extract_text().split()) for page in pages]


@dataclass(frozen=True)
class Word:
    page: int
    text: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float


def words(pdf: bytes, tmp_path: Path) -> list[Word]:
    """Every word of ``pdf`` with its box in points from the page's top left corner, as
    poppler's ``pdftotext -bbox`` lays them out."""
    assert PDFTOTEXT is not None
    source = tmp_path / "slip.pdf"
    source.write_bytes(pdf)
    out = subprocess.run(
        [PDFTOTEXT, "-bbox", str(source), "-"], capture_output=True, check=True, text=True
    ).stdout
    xhtml = "{http://www.w3.org/1999/xhtml}"
    pages = ET.fromstring(out).iter(f"{xhtml}page")
    return [
        Word(
            number,
            word.text or "",
            *(float(word.attrib[key]) for key in ("xMin", "yMin", "xMax", "yMax")),
        )
        for number, page in enumerate(pages, start=1)
        for word in page.iter(f"{xhtml}word")
    ]


def assert_inside_printable_area(pdf: bytes, tmp_path: Path) -> None:
    found = words(pdf, tmp_path)
    assert found
    outside = [
        word
        for word in found
        if word.x_min < LEFT - TOLERANCE
        or word.x_max > PAGE_WIDTH - RIGHT + TOLERANCE
        or word.y_min < TOP - TOLERANCE
        or word.y_max > PAGE_HEIGHT - BOTTOM + TOLERANCE
    ]
    assert outside == []


def qr_squares(pdf: bytes) -> list[tuple[float, float, float, float]]:
    """The filled rectangles of the last page (the QR code's modules) in points, x and y
    from the bottom left corner as PDF draws them."""
    reader = PdfReader(io.BytesIO(pdf))
    operations = ContentStream(reader.pages[-1].get_contents(), reader).operations
    return [
        (float(x), float(y), float(w), float(h))
        for operands, operator in operations
        if operator == b"re"
        for x, y, w, h in [operands]
    ]


def test_the_pdf_holds_every_field_of_the_slip() -> None:
    [text] = page_texts(render_pdf(TYPICAL))
    assert text == unicodedata.normalize("NFC", text)  # diacritics come out composed
    for field in (
        "ỦY BAN NHÂN DÂN TỈNH QUẢNG NINH",
        MOTTO,
        "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
        "Mã hồ sơ: 000.00.00.H49-260602-0001",
        "Ủy ban nhân dân tỉnh Quảng Ninh tiếp nhận hồ sơ của: Nguyễn Thị Hoàng Phương Thảo",
        "Số điện thoại: 0912345678",
        "Nội dung yêu cầu giải quyết: Đăng ký khai sinh có yếu tố nước ngoài",
        "Thành phần hồ sơ: 1. Tờ khai đăng ký khai sinh 2. Giấy chứng sinh",
        "Số lượng hồ sơ: 01 bộ",
        "Thời hạn giải quyết theo quy định: 3 ngày làm việc",
        "Thời gian nhận hồ sơ: 09 giờ 00 phút, ngày 02 tháng 06 năm 2026",
        "Thời gian trả kết quả giải quyết hồ sơ: 17 giờ 00 phút, ngày 02 tháng 06 năm 2026",
        "Nhận kết quả tại: Ủy ban nhân dân tỉnh Quảng Ninh",
        "Quét mã để tra cứu tình trạng hồ sơ",
        "NGƯỜI TIẾP NHẬN (Ký và ghi rõ họ tên)",
    ):
        assert field in text


def test_no_phone_and_no_due_time_are_said_so() -> None:
    [text] = page_texts(render_pdf(replace(TYPICAL, applicant_phone=None, due_at=None)))
    assert "Số điện thoại: —" in text
    assert "Thời gian trả kết quả giải quyết hồ sơ: Không quy định thời hạn" in text


def test_the_qr_code_is_the_look_up_address_inside_the_margins() -> None:
    dark = sum(sum(row) for row in segno.make(TYPICAL.lookup_url, error="m").matrix)
    squares = qr_squares(render_pdf(TYPICAL))
    assert len(squares) == dark
    for x, y, w, h in squares:  # PDF's y grows upwards; h is negative for fpdf's rects
        assert LEFT - TOLERANCE <= x <= x + w <= PAGE_WIDTH - RIGHT + TOLERANCE
        assert BOTTOM - TOLERANCE <= min(y, y + h) <= max(y, y + h) <= PAGE_HEIGHT - TOP


@needs_pdftotext
@pytest.mark.parametrize(
    "slip", [TYPICAL, CROWDED, UNBREAKABLE], ids=["typical", "crowded", "unbreakable"]
)
def test_no_word_lies_outside_the_printable_area(slip: Slip, tmp_path: Path) -> None:
    assert_inside_printable_area(render_pdf(slip), tmp_path)


def test_a_crowded_slip_lists_every_document_and_repeats_the_header() -> None:
    pages = page_texts(render_pdf(CROWDED))
    assert len(pages) == 2
    text = " ".join(pages)
    assert CROWDED.applicant_name in text
    for index, name in enumerate(CROWDED.documents, start=1):
        assert f"{index}. {name}" in text
    assert "17 giờ 00 phút, ngày 02 tháng 06 năm 2026" in text
    assert "NGƯỜI TIẾP NHẬN" in pages[-1]
    for page in pages:
        assert page.startswith(f"ỦY BAN NHÂN DÂN TỈNH QUẢNG NINH {MOTTO}")
    assert "Mã hồ sơ: 000.00.00.H49-260602-0001 (tiếp theo)" in pages[1]


def test_words_longer_than_a_line_are_broken_not_cut() -> None:
    text = "".join(" ".join(page_texts(render_pdf(UNBREAKABLE))).split())
    assert "Đ" * 150 in text
    assert "Ư" * 200 in text
