"""Pure routing rules: which office processes a dossier, through which chain, and why.

Invariants:
- rules are tried in ascending ``priority``; the first rule whose every given criterion
  equals the dossier's fact wins (a criterion left out is a wildcard);
- a rule set never holds two rules of the same priority (``validate_rule_set``);
- a decision always carries its explanation: which rule matched and why each rule
  before it did not;
- no rule matched: the catalogue's chain decides; the catalogue does not know the
  procedure either: the dossier is unroutable (manual queue), never dropped;
- a chain has at least one step, every step has positive working hours, and the first
  step's office is the office the dossier is routed to.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.catalogue import (
    AGENCY_CODE_PATTERN,
    FIELD_MAX_LENGTH,
    MAX_STEPS,
    PROCEDURE_CODE_PATTERN,
    Catalogue,
    Procedure,
    Step,
    level_at,
)
from shared.errors import Invalid, NotFound

Level = Literal["tinh", "xa", "huyen"]
ChannelName = Literal["counter", "online", "post"]

_AGENCY = re.compile(AGENCY_CODE_PATTERN)
_PROCEDURE = re.compile(PROCEDURE_CODE_PATTERN)


class RuleError(Invalid, ValueError):
    """A rule or rule set refused; the message says what to fix (422)."""


class NoSuchRule(NotFound, RuleError):
    """No rule of the priority a change names (404)."""


class Rule(BaseModel):
    """One routing rule: criteria (each optional = any) and the office they name."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    priority: int = Field(ge=1, description="Order of trial: lower first; unique in a rule set.")
    office: str = Field(description="Agency code of the office that holds the dossier first.")
    procedure: str | None = Field(None, description="Procedure code (mã TTHC).")
    field: str | None = Field(
        None, min_length=1, max_length=FIELD_MAX_LENGTH, description="Lĩnh vực."
    )
    level: Level | None = Field(None, description="Level of the procedure (tinh, xa, huyen).")
    receiving_unit: str | None = Field(None, description="Agency code of the receiving unit.")
    channel: ChannelName | None = None
    steps: list[Step] | None = Field(
        None,
        description="Chain overriding the catalogue's; step 1 is the rule's office, a null "
        "office of a later step is the receiving unit. Null: the catalogue's chain.",
        max_length=MAX_STEPS,
    )
    note: str = Field("", max_length=500)

    @field_validator("office", "receiving_unit")
    @classmethod
    def _agency_code(cls, value: str | None) -> str | None:
        if value is not None and not _AGENCY.match(value):
            msg = f"{value!r} is not an agency code of the form NNN.NN.NN.XNN (e.g. 000.00.00.H56)"
            raise ValueError(msg)
        return value

    @field_validator("procedure")
    @classmethod
    def _procedure_code(cls, value: str | None) -> str | None:
        if value is not None and not _PROCEDURE.match(value):
            msg = f"{value!r} is not a procedure code of the form N.NNNNNN (e.g. 2.000635)"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _chain(self) -> Rule:
        if self.steps is None:
            return self
        if not self.steps:
            msg = (
                "the chain (steps) is empty: give at least one step, "
                "or omit it to use the catalogue's"
            )
            raise ValueError(msg)
        first = self.steps[0].office
        if first is not None and first != self.office:
            msg = f"the chain's first step is {first}, not the rule's office {self.office}"
            raise ValueError(msg)
        return self

    def criteria(self) -> dict[str, str]:
        """The criteria this rule sets, by fact name."""
        given = {
            "procedure": self.procedure,
            "field": self.field,
            "level": self.level,
            "receiving_unit": self.receiving_unit,
            "channel": self.channel,
        }
        return {name: value for name, value in given.items() if value is not None}


def parse_rule(raw: Mapping[str, Any]) -> Rule:
    """A rule from untrusted input; ``RuleError`` listing every problem."""
    try:
        return Rule.model_validate(dict(raw))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in error["loc"]) or "rule"
            problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
        raise RuleError("rule refused: " + "; ".join(problems)) from None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A version of the rules, sorted by priority. Version 0: no rule ever written."""

    version: int
    rules: tuple[Rule, ...]


def validate_rule_set(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """The rules sorted by priority; ``RuleError`` when two share a priority."""
    ordered = tuple(sorted(rules, key=lambda rule: rule.priority))
    for before, after in itertools.pairwise(ordered):
        if before.priority == after.priority:
            msg = (
                f"priority {after.priority} is already taken by the rule naming "
                f"{before.office}: remove it first or choose another priority"
            )
            raise RuleError(msg)
    return ordered


@dataclass(frozen=True, slots=True)
class Facts:
    """What routing knows about a dossier."""

    procedure: str
    field: str
    level: str | None
    receiving_unit: str
    channel: str

    def value(self, name: str) -> str | None:
        """The fact a rule criterion of this name is compared with."""
        found: str | None = getattr(self, name)
        return found


def level_of(procedure: Procedure | None, received_at: datetime) -> str | None:
    """The level of a dossier received at ``received_at`` (``shared.catalogue.level_at``).

    When it cannot be told (an unknown procedure, or one done at two levels after the
    reform), only rules without a level criterion match the dossier.
    """
    return None if procedure is None else level_at(procedure.levels, received_at)


def mismatches(rule: Rule, facts: Facts) -> list[str]:
    """Why ``rule`` does not match (empty: it matches)."""
    return [
        f"{name} {facts.value(name) or '(unknown)'} is not {wanted}"
        for name, wanted in rule.criteria().items()
        if facts.value(name) != wanted
    ]


@dataclass(frozen=True, slots=True)
class Match:
    """The first matching rule (or none) and the explanation of the search."""

    rule: Rule | None
    explanation: str


def match(rules: Sequence[Rule], facts: Facts) -> Match:
    """The first rule of ``rules`` (sorted by priority) matching ``facts``, explained."""
    failed: list[str] = []
    for rule in rules:
        reasons = mismatches(rule, facts)
        if reasons:
            failed.append(f"rule {rule.priority}: {', '.join(reasons)}")
            continue
        criteria = ", ".join(f"{k}={v}" for k, v in rule.criteria().items()) or "any dossier"
        text = f"rule {rule.priority} matched: {criteria}"
        if failed:
            text += f"; before it, {_did_not(failed)}"
        return Match(rule, text)
    if not failed:
        return Match(None, "no rule is defined")
    return Match(None, f"no rule matched: {_did_not(failed)}")


def _did_not(failed: list[str]) -> str:
    return "; ".join(f"{reason} (did not match)" for reason in failed)


@dataclass(frozen=True, slots=True)
class Routed:
    """The decision: the office holding the dossier first, and the whole chain."""

    office: str
    field: str
    rule: str
    """Short audit label, e.g. ``rules v3: rule 20``."""
    explanation: str
    rule_version: int
    steps: tuple[tuple[str, Decimal], ...]
    """The chain: (office, working hours) in order; the first is ``office``."""


@dataclass(frozen=True, slots=True)
class Unroutable:
    """Nobody could be named; the dossier goes to the manual queue."""

    reason: str
    rule_version: int


def resolve_chain(
    steps: Sequence[Step], *, first_office: str | None, receiving_unit: str
) -> tuple[tuple[str, Decimal], ...]:
    """Concrete (office, hours) steps: a null office is the receiving unit; step 1's
    office is ``first_office`` when one is given."""
    chain = [(step.office or receiving_unit, step.hours) for step in steps]
    if first_office is not None:
        chain[0] = (first_office, chain[0][1])
    return tuple(chain)


def decide(catalogue: Catalogue, rule_set: RuleSet, facts: Facts) -> Routed | Unroutable:
    """Route a dossier by the rules, then by the catalogue; or declare it unroutable."""
    procedure = catalogue.get(facts.procedure)
    found = match(rule_set.rules, facts)
    version = rule_set.version
    if found.rule is not None:
        rule = found.rule
        label = f"rules v{version}: rule {rule.priority}"
        if rule.steps is not None:
            steps = resolve_chain(
                rule.steps, first_office=rule.office, receiving_unit=facts.receiving_unit
            )
            explanation = f"{found.explanation}; chain from the rule"
        elif procedure is not None:
            steps = resolve_chain(
                procedure.steps, first_office=rule.office, receiving_unit=facts.receiving_unit
            )
            explanation = f"{found.explanation}; chain from catalogue v{catalogue.version}"
        else:
            return Unroutable(
                f"{found.explanation}, but procedure {facts.procedure} is not in catalogue "
                f"v{catalogue.version} and the rule gives no chain",
                version,
            )
        return Routed(steps[0][0], facts.field, label, explanation, version, steps)
    if procedure is None:
        return Unroutable(
            f"{found.explanation}; procedure {facts.procedure} is not in catalogue "
            f"v{catalogue.version}",
            version,
        )
    steps = resolve_chain(procedure.steps, first_office=None, receiving_unit=facts.receiving_unit)
    return Routed(
        office=steps[0][0],
        field=procedure.field,
        rule=f"rules v{version}: catalogue v{catalogue.version} chain",
        explanation=f"{found.explanation}; the catalogue's chain of {facts.procedure} applies",
        rule_version=version,
        steps=steps,
    )
