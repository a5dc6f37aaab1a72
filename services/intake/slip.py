"""The receipt and appointment slip (Giấy tiếp nhận hồ sơ và hẹn trả kết quả, Mẫu 01 of
Thông tư 03/2025/TT-VPCP), as printable HTML and as an A4 PDF.

Pure rendering: a ``Slip`` in, text or bytes out. The PDF embeds Roboto, shipped by the
PyPI package ``font-roboto`` (Apache-2.0), which has every Vietnamese glyph. The QR code
holds the public look-up address of the dossier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path

import segno
from fpdf import FPDF, XPos, YPos

from services.intake.pages import template
from shared.calendar import DurationUnit, format_slip_time

_UNIT_WORDS = {
    DurationUnit.WORKING_DAYS: "ngày làm việc",
    DurationUnit.WORKING_HOURS: "giờ làm việc",
    DurationUnit.CALENDAR_DAYS: "ngày",
}


@dataclass(frozen=True, slots=True)
class Slip:
    """Everything printed on the slip. The applicant's name and phone are personal data:
    they are printed for the citizen and go nowhere else."""

    code: str
    unit_name: str
    procedure_name: str
    applicant_name: str
    applicant_phone: str | None
    documents: list[str]
    time_limit: str
    received_at: datetime
    due_at: datetime | None
    lookup_url: str

    @property
    def received_text(self) -> str:
        """The reception time written out."""
        return format_slip_time(self.received_at)

    @property
    def due_text(self) -> str:
        """The due time written out, or why there is none."""
        if self.due_at is None:
            return "Không quy định thời hạn"
        return format_slip_time(self.due_at)


def time_limit_text(value: Decimal, unit: DurationUnit) -> str:
    """A time limit in words: "3 ngày làm việc", "Trong ngày"."""
    if unit is DurationUnit.SAME_DAY:
        return "Trong ngày"
    if unit not in _UNIT_WORDS:
        return "Không quy định"
    number = f"{value.normalize():f}".replace(".", ",")
    return f"{number} {_UNIT_WORDS[unit]}"


@lru_cache(maxsize=1)
def unit_names() -> dict[str, str]:
    """Names of receiving units by agency code (``units.json``)."""
    raw = resources.files("services.intake").joinpath("units.json").read_text("utf-8")
    names: dict[str, str] = json.loads(raw)["units"]
    return names


def unit_name(code: str) -> str:
    """The unit's name, or its code when the list does not know it."""
    return unit_names().get(code, f"Đơn vị {code}")


def render_html(slip: Slip) -> str:
    """The slip as a printable HTML page, QR code inline as SVG."""
    qr_svg = segno.make(slip.lookup_url, error="m").svg_inline(scale=3, omitsize=False)
    return template("slip.html.j2").render(slip=slip, qr_svg=qr_svg)


def _font_file() -> Path:
    return Path(str(resources.files("font_roboto").joinpath("files", "Roboto-Regular.ttf")))


def _bold_font_file() -> Path:
    return Path(str(resources.files("font_roboto").joinpath("files", "Roboto-Bold.ttf")))


_MARGIN = 20.0  # mm, left, right and bottom, as the HTML slip's @page
_TOP = 15.0  # mm
_LINE = 6.5  # mm, one line of 11 pt body text
_INDENT = 6.0  # mm, the document list's numbers
_NUMBER = 8.0  # mm, room for "20."
_QR = 35.0  # mm, the QR code's side
_GAP = 8.0  # mm, between the body and the QR code, and between it and its caption


class _SlipPdf(FPDF):
    """An A4 slip in Roboto with page breaks on: every page opens with the unit and the
    national motto, and every page after the first also with the dossier code, so that a
    loose second page still says whose it is."""

    def __init__(self, slip: Slip) -> None:
        super().__init__(format="A4")
        self.slip = slip
        self.set_margins(_MARGIN, _TOP, _MARGIN)
        self.set_auto_page_break(auto=True, margin=_MARGIN)
        self.add_font("Roboto", "", str(_font_file()))
        self.add_font("Roboto", "B", str(_bold_font_file()))

    @property
    def text_width(self) -> float:
        """Width between the left and right margins."""
        return self.w - self.l_margin - self.r_margin

    def header(self) -> None:
        """Unit and motto side by side (each column wraps on its own), then, after the
        first page, the dossier code; the cursor ends at the left margin below them all."""
        half = self.text_width / 2
        top = self.get_y()
        self.set_font("Roboto", "B", 11)
        self.multi_cell(half, 6, self.slip.unit_name.upper(), align="C")
        left_bottom = self.get_y()
        self.set_xy(self.l_margin + half, top)
        self.multi_cell(
            half,
            6,
            "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc",
            align="C",
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
        )
        self.set_y(max(left_bottom, self.get_y()) + 4)
        if self.page > 1:
            self.set_font("Roboto", "", 9)
            self.cell(0, 5, f"Mã hồ sơ: {self.slip.code} (tiếp theo)", align="R")
            self.ln(8)

    def paragraph(self, text: str, *, style: str = "") -> None:
        """``text`` wrapped between the margins, left-aligned, on as many lines and pages
        as it needs; the cursor ends at the left margin of the next line."""
        self.set_font("Roboto", style, 11)
        self.multi_cell(0, _LINE, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def numbered(self, index: int, text: str) -> None:
        """One list item with a hanging indent: its number never sits alone at the foot
        of a page, its wrapped lines align under the first word."""
        self.set_font("Roboto", "", 11)
        if self.will_page_break(_LINE):
            self.add_page()
        self.set_x(self.l_margin + _INDENT)
        self.cell(_NUMBER, _LINE, f"{index}.", new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.multi_cell(0, _LINE, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render_pdf(slip: Slip) -> bytes:
    """The slip as an A4 PDF holding everything the HTML slip holds.

    Invariant: every character lies inside the page margins; every document is listed,
    and a long list flows onto further pages, each opening with the header; the QR code
    and the signature block are never split from each other.
    """
    pdf = _SlipPdf(slip)
    pdf.add_page()
    pdf.set_font("Roboto", "B", 14)
    pdf.multi_cell(0, 8, "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ", align="C", new_x=XPos.LMARGIN)
    pdf.set_font("Roboto", "", 11)
    pdf.multi_cell(0, 7, f"Mã hồ sơ: {slip.code}", align="C", new_x=XPos.LMARGIN)
    pdf.ln(5)

    pdf.paragraph(f"{slip.unit_name} tiếp nhận hồ sơ của: {slip.applicant_name}")
    pdf.paragraph(f"Số điện thoại: {slip.applicant_phone or '—'}")
    pdf.paragraph(f"Nội dung yêu cầu giải quyết: {slip.procedure_name}")
    pdf.paragraph("Thành phần hồ sơ:")
    for index, name in enumerate(slip.documents, start=1):
        pdf.numbered(index, name)
    pdf.paragraph("Số lượng hồ sơ: 01 bộ")
    pdf.paragraph(f"Thời hạn giải quyết theo quy định: {slip.time_limit}")
    pdf.paragraph(f"Thời gian nhận hồ sơ: {slip.received_text}")
    pdf.paragraph(f"Thời gian trả kết quả giải quyết hồ sơ: {slip.due_text}", style="B")
    pdf.paragraph(f"Nhận kết quả tại: {slip.unit_name}")

    if pdf.will_page_break(_GAP + _QR):
        pdf.add_page()
    top = pdf.get_y() + _GAP
    half = pdf.text_width / 2
    _draw_qr(pdf, slip.lookup_url, x=pdf.l_margin, y=top, size=_QR)
    pdf.set_xy(pdf.l_margin + _QR + _GAP, top)
    pdf.set_font("Roboto", "", 9)
    pdf.multi_cell(half - _QR - _GAP, 5, "Quét mã để tra cứu tình trạng hồ sơ", align="L")
    pdf.set_xy(pdf.l_margin + half, top)
    pdf.set_font("Roboto", "B", 11)
    pdf.multi_cell(half, 6, "NGƯỜI TIẾP NHẬN\n(Ký và ghi rõ họ tên)", align="C")
    return bytes(pdf.output())


def _draw_qr(pdf: FPDF, data: str, *, x: float, y: float, size: float) -> None:
    """Draw a QR code as filled squares (vector, no image library needed)."""
    matrix = segno.make(data, error="m").matrix
    quiet = 2
    cells = len(matrix) + 2 * quiet
    module = size / cells
    pdf.set_fill_color(0, 0, 0)
    for row_index, row in enumerate(matrix):
        for col_index, dark in enumerate(row):
            if dark:
                pdf.rect(
                    x + (col_index + quiet) * module,
                    y + (row_index + quiet) * module,
                    module,
                    module,
                    style="F",
                )
