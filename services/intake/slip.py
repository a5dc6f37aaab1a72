"""The receipt and appointment slip (Giấy tiếp nhận hồ sơ và hẹn trả kết quả, Mẫu 01 of
Thông tư 03/2025/TT-VPCP), as printable HTML and as a one-page A4 PDF.

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
from fpdf import FPDF
from jinja2 import Environment, Template

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


@lru_cache(maxsize=1)
def _template() -> Template:
    text = resources.files("services.intake").joinpath("slip.html.j2").read_text("utf-8")
    return Environment(autoescape=True).from_string(text)


def render_html(slip: Slip) -> str:
    """The slip as a printable HTML page, QR code inline as SVG."""
    qr_svg = segno.make(slip.lookup_url, error="m").svg_inline(scale=3, omitsize=False)
    return _template().render(slip=slip, qr_svg=qr_svg)


def _font_file() -> Path:
    return Path(str(resources.files("font_roboto").joinpath("files", "Roboto-Regular.ttf")))


def _bold_font_file() -> Path:
    return Path(str(resources.files("font_roboto").joinpath("files", "Roboto-Bold.ttf")))


def render_pdf(slip: Slip) -> bytes:
    """The slip as a one-page A4 PDF.

    Invariant: one page; long document lists are cut to what fits, with a count of
    the rest, rather than spilling onto a second page.
    """
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=False)
    pdf.add_font("Roboto", "", str(_font_file()))
    pdf.add_font("Roboto", "B", str(_bold_font_file()))
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    half = width / 2

    pdf.set_font("Roboto", "B", 11)
    top = pdf.get_y()
    pdf.multi_cell(half, 6, slip.unit_name.upper(), align="C")
    pdf.set_xy(pdf.l_margin + half, top)
    pdf.multi_cell(
        half, 6, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc", align="C"
    )
    pdf.ln(8)
    pdf.set_font("Roboto", "B", 14)
    pdf.cell(width, 8, "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ", align="C")
    pdf.ln(8)
    pdf.set_font("Roboto", "", 11)
    pdf.cell(width, 7, f"Mã hồ sơ: {slip.code}", align="C")
    pdf.ln(12)

    lines = [
        f"{slip.unit_name} tiếp nhận hồ sơ của: {slip.applicant_name}",
        f"Số điện thoại: {slip.applicant_phone or '—'}",
        f"Nội dung yêu cầu giải quyết: {slip.procedure_name}",
        "Thành phần hồ sơ:",
    ]
    for line in lines:
        pdf.multi_cell(width, 6.5, line)
    shown = slip.documents[:12]
    for index, name in enumerate(shown, start=1):
        pdf.multi_cell(width, 6, f"    {index}. {name[:120]}")
    if len(slip.documents) > len(shown):
        pdf.multi_cell(width, 6, f"    … và {len(slip.documents) - len(shown)} giấy tờ khác")
    for line in (
        "Số lượng hồ sơ: 01 bộ",
        f"Thời hạn giải quyết theo quy định: {slip.time_limit}",
        f"Thời gian nhận hồ sơ: {slip.received_text}",
    ):
        pdf.multi_cell(width, 6.5, line)
    pdf.set_font("Roboto", "B", 11)
    pdf.multi_cell(width, 6.5, f"Thời gian trả kết quả giải quyết hồ sơ: {slip.due_text}")
    pdf.set_font("Roboto", "", 11)
    pdf.multi_cell(width, 6.5, f"Nhận kết quả tại: {slip.unit_name}")

    qr_top = max(pdf.get_y() + 8, 200.0)
    _draw_qr(pdf, slip.lookup_url, x=pdf.l_margin, y=qr_top, size=35)
    pdf.set_xy(pdf.l_margin + 40, qr_top)
    pdf.set_font("Roboto", "", 9)
    pdf.multi_cell(half - 40, 5, "Quét mã để tra cứu tình trạng hồ sơ")
    pdf.set_xy(pdf.l_margin + half, qr_top)
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
