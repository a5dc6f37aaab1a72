"""``motcua due-date`` and ``motcua calendar`` through a Typer app of their own."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from motcua.calendar_cli import register
from shared.calendar import default_calendar
from shared.settings import get_settings

APP = typer.Typer()
register(APP)


@pytest.fixture(autouse=True)
def var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MOTCUA_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    default_calendar.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    default_calendar.cache_clear()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(APP, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "printed"),
    [
        (("2026-03-02T10:00:00+07:00", "3", "working_days"), "2026-03-05T10:00:00+07:00"),
        (("2026-03-02T03:00:00Z", "3", "working_days"), "2026-03-05T10:00:00+07:00"),
        (("2026-04-23T10:00:00+07:00", "3", "working_days"), "2026-04-29T10:00:00+07:00"),
        (("2026-06-04T17:45:00+07:00", "0.5", "working_days"), "2026-06-05T11:30:00+07:00"),
        (("2026-06-03T15:00:00+07:00", "1", "same_day"), "2026-06-04T17:00:00+07:00"),
        (("2026-06-02T09:00:00+07:00", "4", "calendar_days"), "2026-06-08T09:00:00+07:00"),
        (("2026-06-02T09:00:00+07:00", "0", "none"), "none"),
    ],
)
def test_due_date(args: tuple[str, str, str], printed: str) -> None:
    assert run("due-date", *args) == (0, printed + "\n", "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("yesterday", "3", "working_days"), "not an ISO 8601 time"),
        (("2026-03-02T10:00:00", "3", "working_days"), "needs a UTC offset"),
        (("2026-03-02T10:00:00+07:00", "three", "working_days"), "not a number"),
        (("--", "2026-03-02T10:00:00+07:00", "-1", "working_days"), ">= 0"),
        (("2026-03-02T10:00:00+07:00", "3", "weeks"), "unknown duration unit"),
        (("2026-03-02T10:00:00+07:00", "1.5", "calendar_days"), "whole number"),
        (("2027-12-28T10:00:00+07:00", "5", "working_days"), "2027-12-31"),
        (("2026-03-02T10:00:00+07:00", "3", "working_days", "--province", "../x"), "province"),
    ],
)
def test_due_date_bad_argument_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    code, out, err = run("due-date", *args)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert message in err


def test_list_shows_the_shipped_table_with_sources() -> None:
    code, out, _ = run("calendar", "list", "--year", "2026")
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert all(len(fields) == 4 and fields[3] for fields in lines)
    assert lines[2][:2] == ["2026-01-10", "makeup_workday"]
    assert {fields[0][:4] for fields in lines} == {"2026"}
    assert run("calendar", "list", "--year", "2030")[0] == 2


def test_add_then_due_date_sees_it_then_remove(var_dir: Path) -> None:
    code, _, _ = run(
        "calendar",
        "add",
        "2026-03-03",
        "off",
        "Ngày nghỉ thử",
        "--source",
        "QĐ thử",
        "--province",
        "hanoi",
    )
    assert code == 0
    assert (var_dir / "calendar-hanoi.json").exists()
    default_calendar.cache_clear()
    due = ("due-date", "2026-03-02T10:00:00+07:00", "3", "working_days")
    assert run(*due, "--province", "hanoi")[1] == "2026-03-06T10:00:00+07:00\n"
    assert run(*due)[1] == "2026-03-05T10:00:00+07:00\n"
    assert run("calendar", "remove", "2026-03-03", "--province", "hanoi")[0] == 0
    default_calendar.cache_clear()
    assert run(*due, "--province", "hanoi")[1] == "2026-03-05T10:00:00+07:00\n"


def test_remove_a_shipped_day_and_add_it_back() -> None:
    assert run("calendar", "remove", "2026-11-24")[0] == 0
    assert "2026-11-24" not in run("calendar", "list", "--year", "2026")[1]
    assert run("calendar", "remove", "2026-11-24")[0] == 2
    add = ("calendar", "add", "2026-11-24", "off", "Ngày Văn hóa Việt Nam", "--source", "NQ")
    assert run(*add)[0] == 0
    assert "2026-11-24\toff\tNgày Văn hóa Việt Nam\tNQ" in run("calendar", "list")[1]


def test_import_opens_the_next_year_only(tmp_path: Path) -> None:
    rows = tmp_path / "2028.csv"
    rows.write_text(
        "date,kind,description,source\n2028-01-26,off,Tết Nguyên Đán,Thông báo thử\n",
        encoding="utf-8",
    )
    code, out, _ = run("calendar", "import", str(rows))
    assert code == 0
    assert "now knows 2024-2028" in out
    assert "2028-01-26\toff" in run("calendar", "list", "--year", "2028")[1]
    far = tmp_path / "2030.csv"
    far.write_text("date,kind,description,source\n2030-01-01,off,x,y\n", encoding="utf-8")
    code, _, err = run("calendar", "import", str(far))
    assert code == 2
    assert "only the next year, 2029" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "2026-13-01", "off", "x", "--source", "y"), "not a date"),
        (("add", "2026-03-03", "holiday", "x", "--source", "y"), "off or makeup_workday"),
        (("add", "2026-03-03", "off", "x", "--source", " "), "must not be empty"),
        (("add", "2023-03-03", "off", "x", "--source", "y"), "outside 2024-2027"),
        (("remove", "2026-03-03"), "not a special day"),
        (("import", "/nonexistent.csv"), "No such file"),
    ],
)
def test_calendar_bad_argument_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    code, _, err = run("calendar", *args)
    assert code == 2
    assert err.count("\n") == 1
    assert message in err
