"""What intake's API answers: output models built from the store's rows.

No personal data leaves through these models except where a model says so.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.intake import domain
from services.intake.store import Dossier, DossierHistory
from shared.calendar.slip import format_slip_time
from shared.clock import in_vietnam, in_vietnam_or_none


class DossierOut(BaseModel):
    """A dossier as the API shows it (no personal data)."""

    code: str
    status: str
    national_status: int = Field(ge=1, le=10)
    procedure_code: str
    channel: str
    receiving_unit: str
    submitted_at: datetime
    received_at: datetime | None
    due_at: datetime | None = Field(description="Appointment time set at reception.")
    extended_due_at: datetime | None = Field(description="New date of an apology (Mẫu 04).")
    office: str | None
    slip: str = Field(description="Path of the receipt and appointment slip (Mẫu 01).")

    @classmethod
    def of(cls, dossier: Dossier) -> DossierOut:
        """The view of a stored dossier."""
        state = domain.DossierStatus(dossier.status)
        return cls(
            code=dossier.code,
            status=state.value,
            national_status=state.national_code,
            procedure_code=dossier.procedure_code,
            channel=dossier.channel,
            receiving_unit=dossier.receiving_unit,
            submitted_at=in_vietnam(dossier.submitted_at),
            received_at=in_vietnam_or_none(dossier.received_at),
            due_at=in_vietnam_or_none(dossier.due_at),
            extended_due_at=in_vietnam_or_none(dossier.extended_due_at),
            office=dossier.office,
            slip=f"/api/v1/dossiers/{dossier.code}/slip",
        )


class HistoryEntryOut(BaseModel):
    """One entry of a dossier's history."""

    position: int
    action: str
    sequence: int | None = Field(description="Sequence of the dossier.action event, if one.")
    at: datetime
    status: str
    national_status: int
    reason: str | None
    new_due_at: datetime | None
    office: str | None

    @classmethod
    def of(cls, row: DossierHistory) -> HistoryEntryOut:
        """The view of a history row."""
        return cls(
            position=row.position,
            action=row.action,
            sequence=row.sequence,
            at=in_vietnam(row.at),
            status=row.status,
            national_status=domain.DossierStatus(row.status).national_code,
            reason=row.reason,
            new_due_at=in_vietnam_or_none(row.new_due_at),
            office=row.office,
        )


class DossierDetailOut(DossierOut):
    """A dossier with its history, oldest first."""

    history: list[HistoryEntryOut]


class ActionOut(BaseModel):
    """The answer to an action: what was recorded and the dossier after it."""

    action: str
    sequence: int | None
    at: datetime
    dossier: DossierOut


class PublicDossierOut(BaseModel):
    """What a citizen sees: status and due time, nothing else."""

    code: str
    status: str
    national_status: int
    due_at: datetime | None
    status_text: str = Field(description="The status in the citizen's words (Vietnamese).")
    due_text: str | None = Field(
        description="The due time as the slip prints it (Vietnam time), or null."
    )

    @classmethod
    def of(cls, dossier: Dossier) -> PublicDossierOut:
        """The public view (the apology's date, when there is one, is the date in force)."""
        state = domain.DossierStatus(dossier.status)
        due = dossier.extended_due_at or dossier.due_at
        return cls(
            code=dossier.code,
            status=state.value,
            national_status=state.national_code,
            due_at=in_vietnam_or_none(due),
            status_text=domain.STATUS_TEXT[state],
            due_text=None if due is None else format_slip_time(due),
        )
