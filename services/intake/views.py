"""What intake's API takes and answers: the request bodies (shapes only; the use cases
check them against the catalogue and the state) and the output models built from the
store's rows.

No personal data leaves through these models except where a model says so.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from services.intake import domain
from services.intake.store import Dossier, DossierHistory
from shared.calendar.slip import format_slip_time
from shared.catalogue import AGENCY_CODE_PATTERN, PROCEDURE_CODE_PATTERN
from shared.clock import in_vietnam, in_vietnam_or_none
from shared.events import Channel, RatingChannel, SatisfactionLevel


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
    received_at: AwareDatetime | None = Field(
        None, description="Original reception time; importer and admin keys only."
    )


class ActionIn(BaseModel):
    """An action on a dossier and its fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    action: domain.Command
    at: AwareDatetime | None = Field(
        None, description="When it happened; importer and admin keys only (default: now)."
    )
    reason: str | None = Field(None, min_length=1, max_length=1000)
    new_due_at: AwareDatetime | None = Field(None, description="With `extend` only.")
    office: str | None = Field(
        None, pattern=AGENCY_CODE_PATTERN, description="With `transfer`: the next office."
    )


class LookupIn(BaseModel):
    """A citizen's look-up: the dossier code from the slip and the applicant's phone."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(
        min_length=1, max_length=40, examples=["000.00.00.H56-261124-0001"], description="Mã hồ sơ."
    )
    phone: str = Field(
        min_length=9,
        max_length=20,
        pattern=r"^[0-9+ .\-]+$",
        examples=["0912345678"],
        description="The applicant's phone, 0xxxxxxxxx or +84xxxxxxxxx.",
    )

    @field_validator("code")
    @classmethod
    def _a_dossier_code(cls, code: str) -> str:
        if domain.parse_dossier_code(code) is None:
            msg = "not a dossier code (<unit>-YYMMDD-NNNN)"
            raise ValueError(msg)
        return code


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
    """What a citizen sees: status and due time and, while a supplement is awaited, what
    the officer asked for; nothing else."""

    code: str
    status: str
    national_status: int
    due_at: datetime | None
    status_text: str = Field(description="The status in the citizen's words (Vietnamese).")
    due_text: str | None = Field(
        description="The due time as the slip prints it (Vietnam time), or null."
    )
    supplement: str | None = Field(
        None,
        description="Only while the dossier awaits a supplement (absent otherwise): what "
        "the officer wrote when asking for it (what is missing), or null if nothing was.",
    )

    @classmethod
    def of(cls, dossier: Dossier, history: list[DossierHistory] | None = None) -> PublicDossierOut:
        """The public view (the apology's date, when there is one, is the date in force).
        ``supplement`` is set (answered with ``exclude_unset``) only while the dossier's
        status is ``supplement_requested``: the reason of the last supplement request in
        ``history``; no other entry or column of the history (who acted, other reasons) is
        ever read."""
        state = domain.DossierStatus(dossier.status)
        due = dossier.extended_due_at or dossier.due_at
        view = cls(
            code=dossier.code,
            status=state.value,
            national_status=state.national_code,
            due_at=in_vietnam_or_none(due),
            status_text=domain.STATUS_TEXT[state],
            due_text=None if due is None else format_slip_time(due),
        )
        if state is domain.DossierStatus.SUPPLEMENT_REQUESTED:
            view.supplement = _supplement_asked(history or [])
        return view


def _supplement_asked(history: list[DossierHistory]) -> str | None:
    """The reason of the last ``request_supplement`` entry of ``history``, if any."""
    asked = [h for h in history if h.action == domain.Command.REQUEST_SUPPLEMENT.value]
    return asked[-1].reason if asked else None


class ServerTimeOut(BaseModel):
    """The services' clock, for screens that must not trust the device's own."""

    now: datetime = Field(description="The services' now, in Vietnam time (+07:00).")
    today: date = Field(description="Today's date in Vietnam.")


class DossierListItemOut(BaseModel):
    """A dossier in a list (``GET /api/v1/dossiers``); the applicant's name only for a key
    that may read the dossier's personal data (``null`` otherwise)."""

    code: str
    procedure_code: str
    procedure_name: str | None = Field(description="Null for a procedure intake never knew.")
    status: str
    status_text: str = Field(description="The status in Vietnamese.")
    channel: str
    receiving_unit: str
    office: str | None = Field(
        description="The office handling it: the last transfer's, else where routing sent "
        "it; null before routing decided."
    )
    received_at: datetime | None
    due_at: datetime | None = Field(description="Appointment time set at reception.")
    extended_due_at: datetime | None = Field(description="New date of an apology (Mẫu 04).")
    overdue: bool = Field(description="Past its due time in force and not finished.")
    applicant_name: str | None = Field(description="Personal data: only for keys allowed it.")


class DossierPageOut(BaseModel):
    """One page of a dossier list and where the next starts (``null``: the last page)."""

    items: list[DossierListItemOut]
    next_cursor: str | None


class RatingIn(BaseModel):
    """A rating at the kiosk: one of three levels and an optional comment."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=40, description="Mã hồ sơ.")
    level: SatisfactionLevel = Field(
        description="rat_hai_long (rất hài lòng), hai_long (hài lòng) or khong_hai_long "
        "(không hài lòng)."
    )
    comment: str | None = Field(
        None,
        max_length=domain.RATING_COMMENT_MAX,
        description="The citizen's own words (kept by intake only, never published).",
    )


class PublicRatingIn(LookupIn):
    """A rating online: the look-up's code and phone, the level and an optional comment."""

    level: SatisfactionLevel = Field(
        description="rat_hai_long (rất hài lòng), hai_long (hài lòng) or khong_hai_long "
        "(không hài lòng)."
    )
    comment: str | None = Field(None, max_length=domain.RATING_COMMENT_MAX)


class RatingOut(BaseModel):
    """A rating as recorded (the comment is not echoed)."""

    code: str
    level: SatisfactionLevel
    channel: RatingChannel
    at: datetime
