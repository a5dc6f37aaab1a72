"""The report as CSV and XLSX: the same columns as the JSON, Vietnamese headers.

Rates are written with two decimals, and empty where there is nothing to count ("N/A").

Codes and names come from the catalogue, which an administrator types: a text cell that
starts like a formula (``= + - @``, tab, carriage return) would run as one in a
spreadsheet (CSV injection, OWASP). In the CSV such a cell gets a leading apostrophe; in
the XLSX every text cell is stored as text, never as a formula, and keeps its value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

from openpyxl import Workbook

from services.notify.reports import domain
from services.notify.reports.query import Report

HEADERS = [
    "Mã",
    "Tên",
    "Tiếp nhận: tổng",
    "Tiếp nhận: kỳ trước chuyển sang",
    "Tiếp nhận: mới trực tuyến",
    "Tiếp nhận: mới trực tiếp, bưu chính",
    "Đã giải quyết: tổng",
    "Đã giải quyết: trước hạn",
    "Đã giải quyết: đúng hạn",
    "Đã giải quyết: quá hạn",
    "Đang giải quyết: tổng",
    "Đang giải quyết: trong hạn",
    "Đang giải quyết: quá hạn",
    "Rút, từ chối",
    "Tỉ lệ trước và đúng hạn (%)",
    "Tỉ lệ đúng hạn theo 766 (%)",
]
TOTAL_LABEL = "Tổng cộng"


def _cells(key: str, label: str, c: domain.Counts) -> list[str | int | Decimal | None]:
    return [
        key,
        label,
        c.received,
        c.carried_over,
        c.new_online,
        c.new_counter_post,
        c.finished,
        c.early,
        c.on_time,
        c.late,
        c.open_total,
        c.within_time,
        c.overdue,
        c.excluded,
        domain.on_time_rate(c),
        domain.rate_766(c),
    ]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet may read as the start of a formula (OWASP CSV injection)."""


def as_text(value: str) -> str:
    """``value`` with a leading apostrophe if a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def table_rows(report: Report) -> Iterator[list[str | int | Decimal | None]]:
    """Every row of the report, then the total, as cells."""
    for row in report.rows:
        yield _cells(row.key, row.label, row.counts)
    yield _cells("", TOTAL_LABEL, report.total)


def to_csv(report: Report) -> str:
    """CSV with a header line (UTF-8 with BOM when written, so spreadsheets read it)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    for cells in table_rows(report):
        writer.writerow("" if v is None else as_text(v) if isinstance(v, str) else v for v in cells)
    return out.getvalue()


def to_xlsx(report: Report) -> bytes:
    """An XLSX workbook, one sheet: headers, rows, total; numbers as numbers."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Biểu 06"
    sheet.append(HEADERS)
    for cells in table_rows(report):
        sheet.append([float(v) if isinstance(v, Decimal) else v for v in cells])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, even "=…": openpyxl took it for a formula
    for column in ("O", "P"):
        for cell in sheet[column][1:]:
            cell.number_format = "0.00"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
