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

from services.notify.reports import domain, satisfaction
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


def table_rows(
    report: Report, *, rated: bool = False
) -> Iterator[list[str | int | Decimal | None]]:
    """Every row of the report, then the total, as cells; with ``rated``, each followed
    by its satisfaction block (``satisfaction.HEADERS``)."""
    for row in report.rows:
        extra = satisfaction.cells(row.counts, report.satisfaction.get(row.key)) if rated else []
        yield [*_cells(row.key, row.label, row.counts), *extra]
    extra = satisfaction.cells(report.total, report.total_satisfaction) if rated else []
    yield [*_cells("", TOTAL_LABEL, report.total), *extra]


def headers(*, rated: bool = False) -> list[str]:
    """The header line; with ``rated``, the satisfaction block's columns after the rest."""
    return [*HEADERS, *satisfaction.HEADERS] if rated else list(HEADERS)


def to_csv(report: Report, *, rated: bool = False) -> str:
    """CSV with a header line (UTF-8 with BOM when written, so spreadsheets read it); with
    ``rated``, the satisfaction block's columns too."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers(rated=rated))
    for cells in table_rows(report, rated=rated):
        writer.writerow("" if v is None else as_text(v) if isinstance(v, str) else v for v in cells)
    return out.getvalue()


def to_xlsx(report: Report, *, rated: bool = False) -> bytes:
    """An XLSX workbook, one sheet: headers, rows, total; numbers as numbers; with
    ``rated``, the satisfaction block's columns too."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Biểu 06"
    sheet.append(headers(rated=rated))
    for cells in table_rows(report, rated=rated):
        sheet.append([float(v) if isinstance(v, Decimal) else v for v in cells])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # text, even "=…": openpyxl took it for a formula
    for column in ("O", "P", "U") if rated else ("O", "P"):  # the rates (U: index 5.4)
        for cell in sheet[column][1:]:
            cell.number_format = "0.00"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
