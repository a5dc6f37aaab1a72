"""Building a province's calendar from the shipped data and the province's edits.

The table is seeded from the PyPI package ``holidays`` (country VN): its statutory,
lunar and observed days off, and its swapped days off, listed as "Ngày nghỉ (thay cho
ngày DD/MM/YYYY)", whose DATE is a make-up working day. ``data/vn-overrides.json`` adds
what the library lacks and says which years are known. Loading reads files; the
resulting :class:`WorkCalendar` does no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, time
from functools import lru_cache
from importlib import resources
from importlib.metadata import version
from pathlib import Path

import holidays

from shared.calendar.duetime import WorkCalendar
from shared.calendar.model import (
    DEFAULT_HOURS,
    DEFAULT_SAME_DAY_CUTOFF,
    DayKind,
    SpecialDay,
    WorkingHours,
)
from shared.calendar.overrides import (
    ProvinceOverrides,
    overrides_path,
    parse_rows,
    read_overrides,
)
from shared.settings import get_settings

LIBRARY_SOURCE = f"PyPI holidays {version('holidays')}, country VN"
_SUBSTITUTED = re.compile(r"thay cho ngày (\d{2})/(\d{2})/(\d{4})")


@dataclass(frozen=True, slots=True)
class ShippedData:
    """The maintained overrides shipped with motcua and the years they vouch for."""

    first_year: int
    last_year: int
    rows: tuple[SpecialDay, ...]


@lru_cache(maxsize=1)
def shipped_data() -> ShippedData:
    """``data/vn-overrides.json``, read once."""
    resource = resources.files("shared.calendar") / "data" / "vn-overrides.json"
    text = resource.read_text(encoding="utf-8")
    years = json.loads(text)["known_years"]
    return ShippedData(
        int(years["first"]), int(years["last"]), tuple(parse_rows(text, str(resource)))
    )


def library_days(years: range) -> list[SpecialDay]:
    """The days off the ``holidays`` library lists for ``years``, and the make-up days
    its swaps imply, with Vietnamese descriptions."""
    rows = []
    for day, name in sorted(holidays.country_holidays("VN", years=years, language="vi").items()):
        rows.append(SpecialDay(day, DayKind.OFF, name, LIBRARY_SOURCE))
        for match in _SUBSTITUTED.finditer(name):
            dd, mm, yyyy = (int(part) for part in match.groups())
            rows.append(
                SpecialDay(
                    date(yyyy, mm, dd),
                    DayKind.MAKEUP_WORKDAY,
                    f"Làm bù cho ngày nghỉ {day:%d/%m/%Y}",
                    f"{LIBRARY_SOURCE} ('{name}')",
                )
            )
    return rows


def province_table(overrides: ProvinceOverrides) -> tuple[range, list[SpecialDay]]:
    """The known years and the effective special-days table of a province.

    Layers, each replacing the previous one's row of the same date: the library, the
    shipped overrides, the province's edits.
    """
    shipped = shipped_data()
    years = range(shipped.first_year, max(shipped.last_year, overrides.last_year or 0) + 1)
    base = {row.day: row for row in library_days(years)}
    base.update((row.day, row) for row in shipped.rows)
    return years, overrides.apply(base.values())


def build_calendar(
    overrides: ProvinceOverrides | None = None,
    *,
    hours: WorkingHours = DEFAULT_HOURS,
    same_day_cutoff: time = DEFAULT_SAME_DAY_CUTOFF,
) -> WorkCalendar:
    """The calendar of the shipped data with ``overrides`` (none: the shipped data alone)."""
    years, table = province_table(overrides or ProvinceOverrides())
    return WorkCalendar(
        table,
        first_year=years.start,
        last_year=years.stop - 1,
        hours=hours,
        same_day_cutoff=same_day_cutoff,
    )


def load_calendar(
    province: str,
    var_dir: Path,
    *,
    hours: WorkingHours = DEFAULT_HOURS,
    same_day_cutoff: time = DEFAULT_SAME_DAY_CUTOFF,
) -> WorkCalendar:
    """A province's calendar: shipped data plus ``<var_dir>/calendar-<province>.json``."""
    overrides = read_overrides(overrides_path(var_dir, province))
    return build_calendar(overrides, hours=hours, same_day_cutoff=same_day_cutoff)


@lru_cache(maxsize=32)
def default_calendar(
    province: str = "default",
    *,
    hours: WorkingHours = DEFAULT_HOURS,
    same_day_cutoff: time = DEFAULT_SAME_DAY_CUTOFF,
) -> WorkCalendar:
    """The calendar of ``province`` under the configured ``var_dir``, built once per process.

    Edits made later by ``motcua calendar`` are seen after ``default_calendar.cache_clear()``.
    """
    return load_calendar(
        province, get_settings().var_dir, hours=hours, same_day_cutoff=same_day_cutoff
    )
