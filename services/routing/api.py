"""Routing's HTTP API: the procedure catalogue, and the rules for administrators.

``/api/v1/catalogue``: read the current version; add, replace or remove a procedure
(each a new version, published to the other services); the history of versions. A
refused change answers 422 naming each field, and nothing is written.
``/api/v1/rules``: list, add, remove, test, history, re-route, the manual queue and
manual assignment, and a dossier's processing-control sheet (Mẫu 06). Writes record
who made them (``by``); these endpoints are not yet behind the admin key.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, HTTPException, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.routing import domain
from services.routing.app import AssignError, Routing, build
from shared.catalogue import Procedure, ProcedureError, Step, parse_procedure
from shared.service import create_http_app
from shared.settings import Settings, get_settings


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


ChangedBy = Annotated[
    str, Query(min_length=1, max_length=100, description="Who makes the change (recorded).")
]
PROCEDURE_EXAMPLE = {
    "code": "2.000635",
    "name": "Cấp bản sao trích lục hộ tịch",
    "field": "Hộ tịch",
    "levels": ["xa"],
    "duration": {"value": 1, "unit": "same_day"},
    "online_duration": None,
    "supplement_rule": "pause",
    "fee_vnd": 8000,
    "steps": [{"office": None, "hours": 8}],
}


def _field_errors(error: ProcedureError) -> JSONResponse:
    """A 422 in FastAPI's own shape, naming each field of the procedure."""
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "detail": [
                {"loc": ["body", *field.split(".")], "msg": message, "type": "value_error"}
                for field, message in error.errors
            ]
        },
    )


def catalogue_router(routing: Routing) -> APIRouter:
    """The catalogue endpoints (writes: administrators; not yet behind the admin key)."""
    api = APIRouter(prefix="/api/v1/catalogue", tags=["catalogue"])

    @api.get("", response_model=list[Procedure])
    async def list_procedures() -> list[Procedure]:
        """Every procedure of the current catalogue version."""
        return list((await routing.current_catalogue()).procedures.values())

    @api.post(
        "",
        response_model=CatalogueChangeOut,
        status_code=status.HTTP_201_CREATED,
        responses={422: {"description": "Refused: each bad field named; nothing changed."}},
    )
    async def add_procedure(
        body: Annotated[
            dict[str, Any],
            Body(description="The procedure as JSON.", examples=[PROCEDURE_EXAMPLE]),
        ],
        by: ChangedBy,
        replace: Annotated[
            bool, Query(description="Replace the procedure of the same code if there is one.")
        ] = False,
    ) -> CatalogueChangeOut | JSONResponse:
        """Add (or with ``replace`` replace) a procedure: a new version, published."""
        try:
            procedure = parse_procedure(body)
            catalogue = await routing.add_procedure(procedure, replace=replace, by=by)
        except ProcedureError as error:
            return _field_errors(error)
        verb = "replaced" if replace else "added"
        return CatalogueChangeOut(
            version=catalogue.version,
            procedures=len(catalogue.procedures),
            change=f"{verb} {procedure.code}",
        )

    @api.delete("/{code}", response_model=CatalogueChangeOut)
    async def remove_procedure(code: str, by: ChangedBy) -> CatalogueChangeOut:
        """Remove a procedure: a new version, published; 404 if there is none."""
        try:
            catalogue = await routing.remove_procedure(code, by=by)
        except ProcedureError as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
        return CatalogueChangeOut(
            version=catalogue.version,
            procedures=len(catalogue.procedures),
            change=f"removed {code}",
        )

    @api.get("/history", response_model=list[CatalogueVersionOut])
    async def catalogue_history() -> list[CatalogueVersionOut]:
        """Every version of the catalogue, newest first."""
        return [
            CatalogueVersionOut.model_validate(row, from_attributes=True)
            for row in await routing.catalogue_history()
        ]

    @api.get("/{code}", response_model=Procedure)
    async def get_procedure(code: str) -> Procedure:
        """One procedure."""
        procedure = (await routing.current_catalogue()).get(code)
        if procedure is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no procedure {code}")
        return procedure

    return api


class RuleSetOut(BaseModel):
    """The rules in force and their version."""

    version: int
    rules: list[domain.Rule]


class NewRule(BaseModel):
    """A rule to add, and who adds it."""

    rule: dict[str, Any]
    by: str = Field(min_length=1, max_length=100)


class TestQuery(BaseModel):
    """A hypothetical dossier: field and level default to the catalogue's."""

    procedure: str
    receiving_unit: str
    channel: domain.ChannelName = "counter"
    field: str | None = None
    level: domain.Level | None = None


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


class AssignIn(BaseModel):
    """A manual assignment: the office, optionally the chain, and who decides."""

    office: str
    steps: list[Step] | None = None
    by: str = Field(min_length=1, max_length=100)


class SheetStepOut(BaseModel):
    """A line of the processing-control sheet (Mẫu 06)."""

    position: int
    office: str
    hours: Decimal
    started_at: datetime | None
    due_at: datetime | None
    ended_at: datetime | None
    late: bool | None = Field(description="Ended after its due time; null while open.")


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
    steps: list[SheetStepOut]


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


def decision_out(decision: domain.Routed | domain.Unroutable) -> DecisionOut:
    """A decision as the API shows it."""
    if isinstance(decision, domain.Unroutable):
        return DecisionOut(
            routed=False,
            office=None,
            rule=None,
            rule_version=decision.rule_version,
            explanation=decision.reason,
            steps=[],
        )
    return DecisionOut(
        routed=True,
        office=decision.office,
        rule=decision.rule,
        rule_version=decision.rule_version,
        explanation=decision.explanation,
        steps=[StepOut(office=office, hours=hours) for office, hours in decision.steps],
    )


def _refused(error: ValueError) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error))


def rules_router(routing: Routing) -> APIRouter:
    """The rules endpoints (administrators)."""
    api = APIRouter(prefix="/api/v1/rules", tags=["rules"])

    @api.get("", response_model=RuleSetOut)
    async def list_rules() -> RuleSetOut:
        """The rules in force, in the order they are tried."""
        current = await routing.rules()
        return RuleSetOut(version=current.version, rules=list(current.rules))

    @api.post("", response_model=RuleSetOut, status_code=status.HTTP_201_CREATED)
    async def add_rule(body: NewRule) -> RuleSetOut:
        """Add a rule (a new version); 422 with the reason, rules unchanged, if refused."""
        try:
            current = await routing.add_rule(domain.parse_rule(body.rule), by=body.by)
        except domain.RuleError as error:
            raise _refused(error) from None
        return RuleSetOut(version=current.version, rules=list(current.rules))

    @api.delete("/{priority}", response_model=RuleSetOut)
    async def remove_rule(priority: int, by: str) -> RuleSetOut:
        """Remove the rule of ``priority`` (a new version); 404 if there is none."""
        try:
            current = await routing.remove_rule(priority, by=by)
        except domain.RuleError as error:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
        return RuleSetOut(version=current.version, rules=list(current.rules))

    @api.post("/test", response_model=DecisionOut)
    async def test_rules(query: TestQuery) -> DecisionOut:
        """Where a dossier would go under the current rules, and why (nothing is routed)."""
        facts = routing.facts(
            query.procedure,
            query.receiving_unit,
            query.channel,
            field=query.field,
            level=query.level,
        )
        return decision_out(await routing.test(facts))

    @api.get("/history", response_model=list[VersionOut])
    async def history() -> list[VersionOut]:
        """Every version of the rules, newest first."""
        return [
            VersionOut(
                version=row.version,
                changed_at=row.changed_at,
                changed_by=row.changed_by,
                change=row.change,
            )
            for row in await routing.history()
        ]

    @api.post("/reroute", response_model=RerouteOut)
    async def reroute() -> RerouteOut:
        """Move open dossiers (and the manual queue) to the current rules; report what moved."""
        report = await routing.reroute()
        return RerouteOut(
            rule_version=report.rule_version,
            moved=[
                MoveOut(dossier_code=m.dossier_code, before=m.before, after=m.after, rule=m.rule)
                for m in report.moved
            ],
            unchanged=report.unchanged,
            kept=dict(report.kept),
        )

    @api.get("/manual-queue", response_model=list[QueueEntryOut])
    async def manual_queue() -> list[QueueEntryOut]:
        """Dossiers no rule could route, oldest first."""
        return [
            QueueEntryOut.model_validate(entry, from_attributes=True)
            for entry in await routing.manual_queue()
        ]

    @api.post("/manual-queue/{code}/assign", response_model=SheetOut)
    async def assign(code: str, body: AssignIn) -> SheetOut:
        """Route a queued dossier by hand (or re-assign one still at its first step)."""
        try:
            await routing.assign(code, body.office, steps=body.steps, by=body.by)
        except domain.RuleError as error:
            raise _refused(error) from None
        except AssignError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        return await _sheet(routing, code)

    @api.get("/sheet/{code}", response_model=SheetOut)
    async def sheet(code: str) -> SheetOut:
        """The processing-control sheet (Mẫu 06): each step's office, start, due and end."""
        return await _sheet(routing, code)

    return api


async def _sheet(routing: Routing, code: str) -> SheetOut:
    found = await routing.sheet(code)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"dossier {code} is not assigned")
    row, chain = found
    return SheetOut(
        dossier_code=row.dossier_code,
        procedure_code=row.procedure_code,
        office=row.office,
        rule=row.rule,
        rule_version=row.rule_version,
        explanation=row.explanation,
        current_step=row.current_step,
        closed_at=row.closed_at,
        steps=[
            SheetStepOut(
                position=step.position,
                office=step.office,
                hours=Decimal(step.working_minutes) / 60,
                started_at=step.started_at,
                due_at=step.due_at,
                ended_at=step.ended_at,
                late=(
                    None
                    if step.ended_at is None or step.due_at is None
                    else step.ended_at > step.due_at
                ),
            )
            for step in chain
        ],
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Routing's process."""
    process = build(settings or get_settings())
    return create_http_app(
        process.runtime,
        title="motcua routing",
        description="The procedure catalogue, the routing rules and the chains of dossiers.",
        routers=[catalogue_router(process.routing), rules_router(process.routing)],
        background=[process.routing.gauge_job, process.routing.catalogue_job],
    )
