"""Intake's HTTP API (thin: validation of shapes, then a use case)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.intake import domain
from services.intake.app import CatalogueError, Intake, NewDossier, build
from services.intake.store import Dossier
from shared.calendar import CalendarRangeError
from shared.catalogue import AGENCY_CODE_PATTERN, PROCEDURE_CODE_PATTERN
from shared.clock import in_vietnam
from shared.events import Channel, Contact
from shared.service import create_http_app
from shared.settings import Settings, get_settings


class ApplicantIn(BaseModel):
    """The applicant (người nộp hồ sơ)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(
        None,
        pattern=domain.MOBILE_PATTERN,
        description="Vietnamese mobile number, 0xxxxxxxxx or +84xxxxxxxxx.",
    )
    email: str | None = Field(None, max_length=200, pattern=domain.EMAIL_PATTERN)
    id_number: str | None = Field(
        None,
        pattern=domain.ID_NUMBER_PATTERN,
        description="CCCD (12 digits) or old CMND (9 digits).",
    )


class DossierIn(BaseModel):
    """A dossier handed in at a counter, a kiosk, by post or online."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    procedure_code: str = Field(pattern=PROCEDURE_CODE_PATTERN, examples=["2.000635"])
    channel: Channel
    receiving_unit: str = Field(pattern=AGENCY_CODE_PATTERN, examples=["000.00.00.H56"])
    applicant: ApplicantIn
    documents: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=100
    )


class DossierOut(BaseModel):
    """A dossier as the API shows it (no personal data)."""

    code: str
    status: str
    national_status: int
    procedure_code: str
    channel: str
    receiving_unit: str
    submitted_at: datetime
    received_at: datetime | None
    due_at: datetime | None

    @classmethod
    def of(cls, dossier: Dossier) -> DossierOut:
        state = domain.DossierStatus(dossier.status)
        return cls(
            code=dossier.code,
            status=state.value,
            national_status=state.national_code,
            procedure_code=dossier.procedure_code,
            channel=dossier.channel,
            receiving_unit=dossier.receiving_unit,
            submitted_at=in_vietnam(dossier.submitted_at),
            received_at=dossier.received_at and in_vietnam(dossier.received_at),
            due_at=dossier.due_at and in_vietnam(dossier.due_at),
        )


def router(intake: Intake) -> APIRouter:
    """The dossier endpoints."""
    api = APIRouter(prefix="/api/v1/dossiers", tags=["dossiers"])

    @api.post("", status_code=status.HTTP_201_CREATED, response_model=DossierOut)
    async def receive_dossier(body: DossierIn) -> DossierOut | JSONResponse:
        """Receive a dossier: code, due time, stored with its event in one transaction."""
        new = NewDossier(
            procedure_code=body.procedure_code,
            channel=body.channel,
            receiving_unit=body.receiving_unit,
            applicant=Contact(
                name=body.applicant.name, phone=body.applicant.phone, email=body.applicant.email
            ),
            applicant_id_number=body.applicant.id_number,
            documents=body.documents,
        )
        try:
            dossier = await intake.receive(new)
        except CatalogueError as exc:
            return _field_errors(exc.errors)
        except CalendarRangeError as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
        return DossierOut.of(dossier)

    @api.get("/{code}", response_model=DossierOut)
    async def get_dossier(code: str) -> DossierOut:
        """A dossier's status and due time."""
        dossier = await intake.get(code)
        if dossier is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dossier {code}")
        return DossierOut.of(dossier)

    return api


def _field_errors(errors: list[tuple[str, str]]) -> JSONResponse:
    """A 422 in FastAPI's own shape, naming each field."""
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "detail": [{"loc": ["body", f], "msg": m, "type": "value_error"} for f, m in errors]
        },
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Intake's process: HTTP API, metrics, health, outbox relay."""
    intake = build(settings or get_settings())
    app = create_http_app(
        intake.runtime,
        title="motcua intake",
        description="Receiving dossiers (tiếp nhận hồ sơ), queue tickets and the public look-up.",
        routers=[router(intake)],
    )
    app.state.intake = intake
    return app
