"""The procedure catalogue (danh mục thủ tục hành chính) as data.

Routing owns the catalogue; intake (due time on the slip) and sla (the clock) hold
read copies. Until catalogue versions travel as events, every service reads the same
seed file shipped in ``shared/data/procedures.json``, so they agree by construction.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.calendar import Duration, DurationUnit

PROCEDURE_CODE_PATTERN = r"^\d\.\d{6}(\.[0-9A-Z.]+)?$"
AGENCY_CODE_PATTERN = r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$"


class ProcessingTime(BaseModel):
    """A published time limit (thời hạn giải quyết)."""

    model_config = ConfigDict(frozen=True)
    value: Decimal = Field(ge=0)
    unit: DurationUnit

    def as_duration(self) -> Duration:
        """The calendar's duration."""
        return Duration(value=self.value, unit=self.unit)


class Step(BaseModel):
    """One office's share of an inter-agency chain (liên thông)."""

    model_config = ConfigDict(frozen=True)
    office: str | None = Field(
        None,
        pattern=AGENCY_CODE_PATTERN,
        description="Agency code of the office; null: the receiving unit itself processes it.",
    )
    hours: Decimal = Field(gt=0, description="Working hours of this step.")


class Procedure(BaseModel):
    """A procedure of the catalogue."""

    model_config = ConfigDict(frozen=True)
    code: str = Field(pattern=PROCEDURE_CODE_PATTERN)
    name: str
    field: str = Field(description="Lĩnh vực.")
    levels: list[Literal["tinh", "xa", "huyen"]]
    duration: ProcessingTime
    online_duration: ProcessingTime | None = None
    supplement_rule: Literal["pause", "restart"] = "pause"
    fee_vnd: int | None = None
    steps: list[Step] = Field(min_length=1)
    source: str = Field(description="Where the time limit and fee come from.")

    def time_limit_for(self, *, online: bool) -> ProcessingTime:
        """The time limit that applies to a dossier of this channel."""
        return self.online_duration if online and self.online_duration else self.duration

    def duration_for(self, *, online: bool) -> Duration:
        """The calendar duration of that time limit."""
        return self.time_limit_for(online=online).as_duration()


class Catalogue(BaseModel):
    """A version of the catalogue."""

    version: int
    procedures: dict[str, Procedure]

    def get(self, code: str) -> Procedure | None:
        """The procedure with this code, if the catalogue has it."""
        return self.procedures.get(code)


@lru_cache(maxsize=1)
def seed_catalogue() -> Catalogue:
    """The catalogue shipped with motcua (version 1)."""
    raw = json.loads(resources.files("shared.data").joinpath("procedures.json").read_text("utf-8"))
    procedures = [Procedure.model_validate(p) for p in raw["procedures"]]
    return Catalogue(version=raw["version"], procedures={p.code: p for p in procedures})
