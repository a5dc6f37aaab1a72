"""``motcua due-date`` and ``motcua calendar``: the due time and the special-days table.

Edits go to ``<var_dir>/calendar-<province>.json``, layered over the shipped data.
Every bad argument prints one line on stderr and exits with code 2.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from shared.calendar import (
    DayKind,
    Duration,
    ProvinceOverrides,
    SpecialDay,
    default_calendar,
    overrides_path,
    parse_rows,
    province_table,
    read_overrides,
    write_overrides,
)
from shared.calendar.edits import known_years, with_days, without_day
from shared.settings import get_settings

Province = Annotated[str, typer.Option("--province", help="Province whose calendar to use.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{text!r} is not a date YYYY-MM-DD")


def _overrides(province: str) -> tuple[Path, ProvinceOverrides]:
    try:
        path = overrides_path(get_settings().var_dir, province)
        return path, read_overrides(path)
    except ValueError as error:
        _fail(str(error))


def _accepting(overrides: ProvinceOverrides, rows: list[SpecialDay]) -> ProvinceOverrides:
    """``overrides`` with ``rows``; a row may open the year after the known ones."""
    try:
        edited = with_days(overrides, rows)
    except ValueError as error:
        _fail(str(error))
    before, after = known_years(overrides), known_years(edited)
    if after.stop > before.stop:
        typer.echo(f"the calendar now knows {after.start}-{after.stop - 1}")
    return edited


def due_date(
    start: Annotated[str, typer.Argument(help="Reception time, ISO 8601 with offset.")],
    duration: Annotated[str, typer.Argument(help="Amount, e.g. 3 or 0.5.")],
    unit: Annotated[
        str,
        typer.Argument(help="working_days, working_hours, calendar_days, same_day or none."),
    ],
    province: Province = "default",
) -> None:
    """Print the due time (ngày hẹn trả) in ISO 8601 with the +07:00 offset."""
    try:
        received = datetime.fromisoformat(start)
    except ValueError:
        _fail(f"START {start!r} is not an ISO 8601 time, e.g. 2026-03-02T10:00:00+07:00")
    if received.utcoffset() is None:
        _fail(f"START {start!r} needs a UTC offset, e.g. 2026-03-02T10:00:00+07:00")
    try:
        due = default_calendar(province).due_at(received, Duration(duration, unit))
    except ValueError as error:
        _fail(str(error))
    typer.echo("none" if due is None else due.isoformat())


def list_days(
    year: Annotated[int | None, typer.Option("--year", help="Only this year.")] = None,
    province: Province = "default",
) -> None:
    """List the effective special days: date, kind, description, source (tab-separated)."""
    _, overrides = _overrides(province)
    known, table = province_table(overrides)
    if year is not None and year not in known:
        _fail(f"year {year} is outside the known years {known.start}-{known.stop - 1}")
    for row in table:
        if row.day.year in known and year in (None, row.day.year):
            typer.echo(f"{row.day.isoformat()}\t{row.kind}\t{row.description}\t{row.source}")


def add_day(
    day: Annotated[str, typer.Argument(metavar="DATE", help="YYYY-MM-DD")],
    kind: Annotated[str, typer.Argument(metavar="KIND", help="off or makeup_workday")],
    description: Annotated[str, typer.Argument(metavar="DESCRIPTION")],
    source: Annotated[str, typer.Option("--source", help="Where the day comes from.")],
    province: Province = "default",
) -> None:
    """Add or replace the special day on DATE."""
    if kind not in set(DayKind):
        _fail(f"KIND {kind!r} must be off or makeup_workday")
    if not description.strip() or not source.strip():
        _fail("DESCRIPTION and --source must not be empty")
    row = SpecialDay(_parse_date(day), DayKind(kind), description.strip(), source.strip())
    path, overrides = _overrides(province)
    write_overrides(path, _accepting(overrides, [row]))
    typer.echo(f"added {row.day.isoformat()} {row.kind} to {path}")


def remove_day(
    day: Annotated[str, typer.Argument(metavar="DATE", help="YYYY-MM-DD")],
    province: Province = "default",
) -> None:
    """Return DATE to the weekly pattern."""
    removed = _parse_date(day)
    path, overrides = _overrides(province)
    try:
        write_overrides(path, without_day(overrides, removed))
    except ValueError as error:
        _fail(str(error))
    typer.echo(f"removed {removed.isoformat()} from {path}")


def import_days(
    file: Annotated[Path, typer.Argument(help="CSV (date,kind,description,source) or JSON.")],
    province: Province = "default",
) -> None:
    """Add or replace every row of FILE."""
    try:
        rows = parse_rows(file.read_text(encoding="utf-8"), str(file))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        _fail(str(error))
    if not rows:
        _fail(f"{file} has no rows")
    path, overrides = _overrides(province)
    write_overrides(path, _accepting(overrides, rows))
    typer.echo(f"imported {len(rows)} rows into {path}")


def register(app: typer.Typer) -> None:
    """Add ``due-date`` and the ``calendar`` group to the motcua command line."""
    app.command("due-date")(due_date)
    calendar = typer.Typer(help="The special-days table (days off, make-up working days).")
    calendar.command("list")(list_days)
    calendar.command("add")(add_day)
    calendar.command("remove")(remove_day)
    calendar.command("import")(import_days)
    app.add_typer(calendar, name="calendar")
