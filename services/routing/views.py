"""What routing's API answers: catalogue versions, rules, decisions, the manual queue,
re-routing reports and a dossier's processing-control sheet (Mẫu 06)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from services.routing import domain, store
from services.routing.app import RerouteReport

SHEET_DUE_TIMES = (
    "Due times are the legal clock's, as sla last published them (sla.due_times; "
    "GET /api/v1/sla/{code}): pauses (supplement, payment, stop) and restarts included; "
    "dossier_due_at is the clock's current due time. A step the clock has not dated yet "
    "(due_from: routing) is due by its own working hours from its start, fitted into the "
    "dossier's due time as sla fits them, as if the dossier were never paused."
)
"""How the sheet's due times were computed, said on every sheet."""


class CatalogueChangeOut(BaseModel):
    """The catalogue version a change made."""

    version: int
    procedures: int = Field(description="How many procedures this version holds.")
    change: str


class CatalogueVersionOut(BaseModel):
    """One version of the catalogue: who changed what, when; whether it was published."""

    version: int
    changed_at: datetime
    changed_by: str
    change: str
    published_at: datetime | None


class RuleSetOut(BaseModel):
    """The rules in force and their version."""

    version: int
    rules: list[domain.Rule]

    @classmethod
    def of(cls, rule_set: domain.RuleSet) -> RuleSetOut:
        """A rule set as the API shows it."""
        return cls(version=rule_set.version, rules=list(rule_set.rules))


class StepOut(BaseModel):
    """One step of a chain."""

    office: str
    hours: Decimal


class DecisionOut(BaseModel):
    """Where a dossier goes, or why it cannot."""

    routed: bool
    office: str | None
    rule: str | None
    rule_version: int
    explanation: str
    steps: list[StepOut]

    @classmethod
    def of(cls, decision: domain.Routed | domain.Unroutable) -> DecisionOut:
        """A decision as the API shows it."""
        if isinstance(decision, domain.Unroutable):
            return cls(
                routed=False,
                office=None,
                rule=None,
                rule_version=decision.rule_version,
                explanation=decision.reason,
                steps=[],
            )
        return cls(
            routed=True,
            office=decision.office,
            rule=decision.rule,
            rule_version=decision.rule_version,
            explanation=decision.explanation,
            steps=[StepOut(office=office, hours=hours) for office, hours in decision.steps],
        )


class VersionOut(BaseModel):
    """One version of the rules: who changed what, when."""

    version: int
    changed_at: datetime
    changed_by: str
    change: str


class QueueEntryOut(BaseModel):
    """A dossier waiting in the manual queue."""

    dossier_code: str
    procedure_code: str
    field: str
    receiving_unit: str
    channel: str
    reason: str
    received_at: datetime
    queued_at: datetime


class SheetStepOut(BaseModel):
    """A line of the processing-control sheet (Mẫu 06)."""

    position: int
    office: str
    hours: Decimal
    started_at: datetime | None
    due_at: datetime | None
    due_from: Literal["clock", "routing"] = Field(
        description="clock: sla's due time (pauses and restarts included); routing: "
        "routing's own, until sla dates the step."
    )
    ended_at: datetime | None
    late: bool | None = Field(description="Ended after its due time; null while open.")

    @classmethod
    def of(cls, step: store.ChainStepRow) -> SheetStepOut:
        """A stored chain step as the sheet shows it: due when sla's clock says, once it
        dated the step."""
        due = step.clock_due_at or step.due_at
        return cls(
            position=step.position,
            office=step.office,
            hours=step.hours,
            started_at=step.started_at,
            due_at=due,
            due_from="routing" if step.clock_due_at is None else "clock",
            ended_at=step.ended_at,
            late=None if step.ended_at is None or due is None else step.ended_at > due,
        )


class SheetOut(BaseModel):
    """The processing-control sheet of a dossier."""

    dossier_code: str
    procedure_code: str
    office: str
    rule: str
    rule_version: int
    explanation: str
    current_step: int
    closed_at: datetime | None
    dossier_due_at: datetime | None = Field(
        description=(
            "The dossier's due time: the legal clock's as sla last published it (pauses "
            "and restarts included), else the one it was received with (appointment "
            "slip); null when none is known."
        )
    )
    due_times: str = Field(SHEET_DUE_TIMES, description="How the steps' due times are computed.")
    steps: list[SheetStepOut]

    @classmethod
    def of(cls, row: store.Assignment, chain: list[store.ChainStepRow]) -> SheetOut:
        """A dossier's assignment and chain as its sheet."""
        return cls(
            dossier_code=row.dossier_code,
            procedure_code=row.procedure_code,
            office=row.office,
            rule=row.rule,
            rule_version=row.rule_version,
            explanation=row.explanation,
            current_step=row.current_step,
            closed_at=row.closed_at,
            dossier_due_at=row.clock_due_at or row.dossier_due_at,
            steps=[SheetStepOut.of(step) for step in chain],
        )


class MoveOut(BaseModel):
    """A dossier the re-routing moved."""

    dossier_code: str
    before: str
    after: str
    rule: str


class RerouteOut(BaseModel):
    """What re-routing did."""

    rule_version: int
    moved: list[MoveOut]
    unchanged: int
    kept: dict[str, str]

    @classmethod
    def of(cls, report: RerouteReport) -> RerouteOut:
        """A re-routing report as the API shows it."""
        return cls(
            rule_version=report.rule_version,
            moved=[
                MoveOut(dossier_code=m.dossier_code, before=m.before, after=m.after, rule=m.rule)
                for m in report.moved
            ],
            unchanged=report.unchanged,
            kept=dict(report.kept),
        )
