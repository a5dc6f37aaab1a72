"""Rows of the special-days table as files: the shipped overrides, a province's edits.

A province's edits live in ``<var_dir>/calendar-<province>.json`` and are layered over
the shipped table (the ``holidays`` library plus ``data/vn-overrides.json``): a row
replaces the row of the same date, a removed date falls back to the weekly pattern.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from shared.calendar.model import CalendarEditError, DayKind, SpecialDay

_PROVINCE = re.compile(r"[A-Za-z0-9_-]+")
ROW_FIELDS = ("date", "kind", "description", "source")


def row_from_mapping(raw: Mapping[str, Any], origin: str) -> SpecialDay:
    """A special day from ``{"date", "kind", "description", "source"}``;
    ``CalendarEditError`` if bad."""
    missing = [name for name in ROW_FIELDS if not str(raw.get(name) or "").strip()]
    if missing:
        raise CalendarEditError(f"{origin}: row {dict(raw)!r} lacks {', '.join(missing)}")
    try:
        day = date.fromisoformat(str(raw["date"]).strip())
    except ValueError:
        raise CalendarEditError(f"{origin}: {raw['date']!r} is not a date YYYY-MM-DD") from None
    try:
        kind = DayKind(str(raw["kind"]).strip())
    except ValueError:
        raise CalendarEditError(
            f"{origin}: kind {raw['kind']!r} is not off or makeup_workday"
        ) from None
    return SpecialDay(day, kind, str(raw["description"]).strip(), str(raw["source"]).strip())


def row_to_mapping(row: SpecialDay) -> dict[str, str]:
    """The JSON form of a row, the inverse of :func:`row_from_mapping`."""
    return {
        "date": row.day.isoformat(),
        "kind": row.kind.value,
        "description": row.description,
        "source": row.source,
    }


def parse_rows(text: str, origin: str) -> list[SpecialDay]:
    """Rows from a CSV file with a header ``date,kind,description,source`` or from JSON.

    JSON is a list of row objects or an object with a ``rows`` list; a name ending in
    ``.csv`` is read as CSV.
    """
    if origin.lower().endswith(".csv"):
        return [row_from_mapping(raw, origin) for raw in csv.DictReader(io.StringIO(text))]
    loaded = _load_json(text, origin)
    return _rows(loaded.get("rows") if isinstance(loaded, dict) else loaded, origin)


def _load_json(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CalendarEditError(
            f"{origin}: not valid JSON ({error.msg}, line {error.lineno})"
        ) from None


def _rows(raws: Any, origin: str) -> list[SpecialDay]:
    if not isinstance(raws, list) or not all(isinstance(raw, dict) for raw in raws):
        raise CalendarEditError(
            f"{origin}: expected a list of rows or an object with a 'rows' list"
        )
    return [row_from_mapping(raw, origin) for raw in raws]


@dataclass(frozen=True, slots=True)
class ProvinceOverrides:
    """A province's edits to the shipped table.

    Invariant: a date is in at most one of ``rows`` and ``removed``. ``last_year``, when
    set, extends the years the calendar knows beyond the shipped ones.
    """

    rows: tuple[SpecialDay, ...] = ()
    removed: tuple[date, ...] = ()
    last_year: int | None = None

    def with_rows(self, rows: Iterable[SpecialDay]) -> ProvinceOverrides:
        """These rows added, replacing rows and removals of the same dates."""
        new = {row.day: row for row in rows}
        kept = tuple(row for row in self.rows if row.day not in new)
        return replace(
            self,
            rows=tuple(sorted((*kept, *new.values()), key=lambda row: row.day)),
            removed=tuple(day for day in self.removed if day not in new),
        )

    def without(self, day: date, *, in_base: bool) -> ProvinceOverrides:
        """``day`` back to the weekly pattern; recorded as a removal if the base has it."""
        rows = tuple(row for row in self.rows if row.day != day)
        removed = tuple(sorted({*self.removed, day})) if in_base else self.removed
        return replace(self, rows=rows, removed=removed)

    def apply(self, base: Iterable[SpecialDay]) -> list[SpecialDay]:
        """The effective table: ``base`` with these edits, sorted by date."""
        table = {row.day: row for row in base}
        for day in self.removed:
            table.pop(day, None)
        table.update((row.day, row) for row in self.rows)
        return sorted(table.values(), key=lambda row: row.day)

    def to_json(self) -> str:
        """The file form, stable for diffs."""
        body: dict[str, Any] = {"last_year": self.last_year} if self.last_year else {}
        body["rows"] = [row_to_mapping(row) for row in self.rows]
        body["removed"] = [day.isoformat() for day in self.removed]
        return json.dumps(body, ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, origin: str) -> ProvinceOverrides:
        """Parse the file form; ``CalendarEditError`` naming ``origin`` if it is malformed."""
        loaded = _load_json(text, origin)
        if not isinstance(loaded, dict):
            raise CalendarEditError(f"{origin}: expected an object with 'rows' and 'removed'")
        last_year = loaded.get("last_year")
        if last_year is not None and not isinstance(last_year, int):
            raise CalendarEditError(f"{origin}: last_year must be a year, got {last_year!r}")
        try:
            removed = tuple(date.fromisoformat(day) for day in loaded.get("removed", []))
        except (TypeError, ValueError):
            raise CalendarEditError(f"{origin}: 'removed' must list dates YYYY-MM-DD") from None
        return cls(tuple(_rows(loaded.get("rows", []), origin)), removed, last_year)


def overrides_path(var_dir: Path, province: str) -> Path:
    """Where a province's edits live;
    ``CalendarEditError`` for a name that is not a plain word."""
    if not _PROVINCE.fullmatch(province):
        raise CalendarEditError(f"province {province!r} must be letters, digits, '-' or '_'")
    return var_dir / f"calendar-{province}.json"


def read_overrides(path: Path) -> ProvinceOverrides:
    """The edits stored at ``path``; none if the file does not exist."""
    if not path.exists():
        return ProvinceOverrides()
    return ProvinceOverrides.from_json(path.read_text(encoding="utf-8"), str(path))


def write_overrides(path: Path, overrides: ProvinceOverrides) -> None:
    """Replace the file at ``path`` atomically (write aside, then rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    aside = path.with_suffix(".json.tmp")
    aside.write_text(overrides.to_json(), encoding="utf-8")
    os.replace(aside, path)
