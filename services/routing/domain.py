"""Pure routing rules: which office processes a dossier, and why."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from shared.catalogue import Catalogue


@dataclass(frozen=True, slots=True)
class Routed:
    """The decision: the office that holds the dossier first."""

    office: str
    field: str
    rule: str
    steps: tuple[tuple[str, Decimal], ...]
    """The chain: (office, working hours) in order; the first is ``office``."""


@dataclass(frozen=True, slots=True)
class Unroutable:
    """Nobody could be named; the dossier goes to the manual queue."""

    reason: str


def decide(catalogue: Catalogue, procedure_code: str, receiving_unit: str) -> Routed | Unroutable:
    """Route by the catalogue: the first step's office, or the receiving unit itself
    when the procedure is processed where it was received (commune level)."""
    procedure = catalogue.get(procedure_code)
    if procedure is None:
        return Unroutable(f"procedure {procedure_code} is not in catalogue v{catalogue.version}")
    steps = tuple((step.office or receiving_unit, step.hours) for step in procedure.steps)
    rule = f"catalogue v{catalogue.version}: {procedure_code} step 1"
    return Routed(office=steps[0][0], field=procedure.field, rule=rule, steps=steps)
