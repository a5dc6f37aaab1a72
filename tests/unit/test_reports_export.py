"""The report's CSV and XLSX: a name that looks like a formula stays text."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from services.notify.reports import domain, export
from services.notify.reports.query import Report, Row

FORMULA = '=HYPERLINK("http://evil.example","click")'


def report(label: str) -> Report:
    return Report(
        period=domain.Period(date(2026, 3, 1), date(2026, 3, 31), date(2026, 4, 2)),
        group_by="unit",
        rows=[Row("-1+1", label, domain.Counts(early=1))],
        total=domain.Counts(early=1),
    )


@pytest.mark.parametrize("label", [FORMULA, "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_a_formula_looking_cell_is_text_in_the_csv(label: str) -> None:
    lines = list(csv.reader(io.StringIO(export.to_csv(report(label)), newline="")))
    assert lines[1][:2] == ["'-1+1", "'" + label]
    assert lines[1][7] == "1"  # numbers (here: early) are not touched


def test_a_formula_looking_cell_is_text_in_the_xlsx() -> None:
    sheet = load_workbook(io.BytesIO(export.to_xlsx(report(FORMULA)))).active
    assert sheet is not None
    key, label = sheet["A2"], sheet["B2"]
    assert (label.value, label.data_type) == (FORMULA, "s")
    assert (key.value, key.data_type) == ("-1+1", "s")
    assert sheet["H2"].value == 1
    assert sheet["H2"].data_type == "n"


def test_plain_text_is_unchanged() -> None:
    assert export.as_text("Phòng Tư pháp") == "Phòng Tư pháp"
    assert export.as_text("000.00.00.H56") == "000.00.00.H56"
