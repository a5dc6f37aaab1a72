"""The report as CSV and XLSX: the same columns as the JSON, Vietnamese headers.

Rates are written with two decimals, and empty where there is nothing to count ("N/A").
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
        writer.writerow("" if v is None else v for v in cells)
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
    for column in ("O", "P"):
        for cell in sheet[column][1:]:
            cell.number_format = "0.00"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
