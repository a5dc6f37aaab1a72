"""The procedure catalogue (danh mục thủ tục hành chính) as data.

Routing owns the catalogue and versions every change in its database; each version
travels as ``catalogue.published`` (``shared.catalogue_sync``) and intake keeps a read
copy. The seed file shipped in ``shared/data/procedures.json`` is version 1, which a
service uses until it has received a version, so every service agrees from the start.

Invariants of a catalogue version (``parse_procedure``, ``added``, ``removed``,
``imported``):
- procedure codes are unique and follow ``PROCEDURE_CODE_PATTERN``;
- for a time limit in working days or working hours, the steps' working hours add up
  to it exactly (a working day is eight hours);
- for a same-day limit the steps add up to at most one working day, and for N calendar
  days to at most N working days: more could never fit (the SLA clock scales steps into
  the time a dossier actually has, but a chain that never fits is an error of entry);
- a change yields the next version number; the catalogue it starts from is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.calendar import VN_TZ, Duration, DurationUnit
from shared.errors import InvalidFields, NotFound

PROCEDURE_CODE_PATTERN = r"^\d\.\d{6}(\.[0-9A-Z.]+)?$"
AGENCY_CODE_PATTERN = r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$"
FIELD_MAX_LENGTH = 200
"""The ``field`` columns (routing's decisions, notify's report facts): a longer one would
fail every dossier of the procedure on PostgreSQL."""
NAME_MAX_LENGTH = 500
MAX_STEPS = 20
"""The longest chain of offices (liên thông) a procedure or a rule may name."""
SOURCE_MAX_LENGTH = 1000


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
    name: str = Field(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        description="Shown, never stored in a column (reports look it up by code).",
    )
    field: str = Field(
        min_length=1,
        max_length=FIELD_MAX_LENGTH,
        description="Lĩnh vực; stored with every dossier routed (routing, notify's report).",
    )
    levels: list[Literal["tinh", "xa", "huyen"]]
    duration: ProcessingTime
    online_duration: ProcessingTime | None = None
    supplement_rule: Literal["pause", "restart"] = "pause"
    fee_vnd: int | None = Field(None, description="Lệ phí in VND; null: not known.")
    online_fee_vnd: int | None = Field(
        None, description="Lệ phí for a dossier handed in online, when it differs; null: fee_vnd."
    )
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    source: str = Field(
        max_length=SOURCE_MAX_LENGTH, description="Where the time limit and fee come from."
    )

    def time_limit_for(self, *, online: bool) -> ProcessingTime:
        """The time limit that applies to a dossier of this channel."""
        return self.online_duration if online and self.online_duration else self.duration

    def fee_for(self, *, online: bool) -> int | None:
        """The fee that applies to a dossier of this channel."""
        if online and self.online_fee_vnd is not None:
            return self.online_fee_vnd
        return self.fee_vnd

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


WORKING_HOURS_PER_UNIT: dict[DurationUnit, Decimal] = {
    DurationUnit.WORKING_DAYS: Decimal(8),
    DurationUnit.WORKING_HOURS: Decimal(1),
}
"""Working hours in one unit of a working-time limit; only these limits bind the steps."""

UNSOURCED = "not stated (entered by an administrator)"
"""``source`` of a procedure given without one (the issue's JSON has no ``source`` key)."""


_PATTERN_MESSAGES = {
    "code": "is not a procedure code of the form N.NNNNNN (e.g. 2.000635)",
    "office": "is not an agency code of the form NNN.NN.NN.XNN (e.g. 000.00.61.H56)",
}


class ProcedureError(InvalidFields, ValueError):
    """A catalogue change refused; ``errors`` holds (field, what is wrong) pairs (422).

    The field is a dotted path into the procedure's JSON (``duration.unit``,
    ``steps.0.hours``), prefixed with ``procedures.<n>.`` for an import; the answer's
    ``loc`` gives the path's parts (``["body", "steps", "0", "hours"]``).
    """

    def loc(self, field: str) -> list[str]:
        """The body, then each part of the dotted path."""
        return [self.where, *field.split(".")]


class UnknownProcedure(NotFound, ProcedureError):
    """A change names a procedure the catalogue does not hold (404, with the message)."""

    def body(self) -> dict[str, Any]:
        """``{"detail": <the message>}``, not the list of fields."""
        return {"detail": str(self)}


MOST_WORKING_HOURS_PER_UNIT: dict[DurationUnit, Decimal] = {
    DurationUnit.SAME_DAY: Decimal(8),
    DurationUnit.CALENDAR_DAYS: Decimal(8),
}
"""The most working hours one unit of the other limits can give: their steps fit in it."""


def chain_errors(procedure: Procedure) -> list[tuple[str, str]]:
    """The steps' problem: their hours do not add up to a working-time limit, or run
    past the most a same-day or calendar-day limit can ever give (the first step that
    does is named)."""
    most = MOST_WORKING_HOURS_PER_UNIT.get(procedure.duration.unit)
    if most is not None:
        return _past_the_most(procedure, most * max(procedure.duration.value, Decimal(1)))
    per_unit = WORKING_HOURS_PER_UNIT.get(procedure.duration.unit)
    if per_unit is None:
        return []
    limit = procedure.duration.value * per_unit
    total = sum((step.hours for step in procedure.steps), Decimal(0))
    if total == limit:
        return []
    message = (
        f"the steps add up to {total} working hours, not the time limit of {limit} working "
        f"hours ({procedure.duration.value} {procedure.duration.unit.value})"
    )
    return [("steps", message)]


def _past_the_most(procedure: Procedure, most: Decimal) -> list[tuple[str, str]]:
    total = Decimal(0)
    for index, step in enumerate(procedure.steps):
        total += step.hours
        if total > most:
            limit = f"{procedure.duration.value:g} {procedure.duration.unit.value}"
            message = (
                f"procedure {procedure.code}: step {index} ({step.office or 'the receiving unit'}) "
                f"brings the chain to {total:g} working hours, more than its time limit of "
                f"{limit} can ever give ({most:g} working hours)"
            )
            return [(f"steps.{index}.hours", message)]
    return []


def parse_procedure(raw: Mapping[str, Any]) -> Procedure:
    """A procedure from untrusted JSON; ``ProcedureError`` naming every bad field.

    A missing ``source`` becomes ``UNSOURCED``; the chain must add up (``chain_errors``).
    """
    try:
        procedure = Procedure.model_validate({"source": UNSOURCED, **raw})
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in error["loc"]) or "procedure"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "string_pattern_mismatch":
                message = _PATTERN_MESSAGES.get(str(error["loc"][-1]), message)
            errors.append((where, message))
        raise ProcedureError(errors) from None
    errors = chain_errors(procedure)
    if errors:
        raise ProcedureError(errors)
    return procedure


def added(catalogue: Catalogue, procedure: Procedure, *, replace: bool = False) -> Catalogue:
    """The next version with ``procedure``; ``ProcedureError`` on ``code`` if it is
    already there and ``replace`` is false."""
    if procedure.code in catalogue.procedures and not replace:
        message = f"procedure {procedure.code} is already in catalogue v{catalogue.version}"
        raise ProcedureError([("code", message)])
    return Catalogue(
        version=catalogue.version + 1,
        procedures={**catalogue.procedures, procedure.code: procedure},
    )


def removed(catalogue: Catalogue, code: str) -> Catalogue:
    """The next version without ``code``; ``UnknownProcedure`` (a ``ProcedureError``) on
    ``code`` if it is absent."""
    if code not in catalogue.procedures:
        message = f"no procedure {code} in catalogue v{catalogue.version}"
        raise UnknownProcedure([("code", message)])
    kept = {key: value for key, value in catalogue.procedures.items() if key != code}
    return Catalogue(version=catalogue.version + 1, procedures=kept)


def imported(catalogue: Catalogue, raws: Iterable[Mapping[str, Any]]) -> Catalogue:
    """The next version holding exactly ``raws`` (a whole catalogue replaces the old one).

    Every procedure is checked; ``ProcedureError`` lists every problem of every entry,
    and duplicate or missing codes.
    """
    errors: list[tuple[str, str]] = []
    procedures: dict[str, Procedure] = {}
    for position, raw in enumerate(raws):
        try:
            procedure = parse_procedure(raw)
        except ProcedureError as error:
            errors.extend((f"procedures.{position}.{field}", msg) for field, msg in error.errors)
            continue
        if procedure.code in procedures:
            message = f"procedure {procedure.code} appears twice"
            errors.append((f"procedures.{position}.code", message))
        procedures[procedure.code] = procedure
    if not procedures and not errors:
        errors.append(("procedures", "is empty: a catalogue needs at least one procedure"))
    if errors:
        raise ProcedureError(errors)
    return Catalogue(version=catalogue.version + 1, procedures=procedures)


def procedures_json(catalogue: Catalogue) -> list[dict[str, Any]]:
    """The procedures as JSON-ready dicts, in code order (the stored and published form)."""
    return [
        catalogue.procedures[code].model_dump(mode="json") for code in sorted(catalogue.procedures)
    ]


def catalogue_from(version: int, raws: Iterable[Mapping[str, Any]]) -> Catalogue:
    """A catalogue version from its stored or published procedures (trusted input)."""
    procedures = [Procedure.model_validate(raw) for raw in raws]
    return Catalogue(version=version, procedures={p.code: p for p in procedures})


DISTRICTS_ABOLISHED = date(2025, 7, 1)
"""From this day local government has two levels (province and commune): a procedure's
``huyen`` level applies only to dossiers received before it."""


def level_at(levels: Sequence[str], received_at: datetime) -> str | None:
    """The level a dossier of a procedure done at ``levels`` is handled at, when the
    procedure and the reception date alone tell it: the one level left once ``huyen`` is
    dropped for a dossier received from 01/07/2025 (Vietnam time). ``None`` when two
    levels remain (e.g. ``["xa", "tinh"]``): the receiving unit then decides, and a rule
    matches on it rather than on the level."""
    before_reform = received_at.astimezone(VN_TZ).date() < DISTRICTS_ABOLISHED
    candidates = [level for level in levels if level != "huyen" or before_reform]
    return candidates[0] if len(candidates) == 1 else None
