"""What the queue's API takes and answers: request bodies (shapes only) and the output
models built from the store's rows (no personal data: tickets carry none)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from services.intake.queue import domain, store
from shared.catalogue import AGENCY_CODE_PATTERN, PROCEDURE_CODE_PATTERN
from shared.clock import in_vietnam

COUNTER_ID_PATTERN = r"^[A-Za-z0-9._-]{1,40}$"


class TicketIn(BaseModel):
    """What the citizen picked at the kiosk: a field (lĩnh vực) or a procedure."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    field: str | None = Field(None, min_length=1, max_length=200, examples=["Hộ tịch"])
    procedure_code: str | None = Field(None, pattern=PROCEDURE_CODE_PATTERN)
    priority: domain.Priority = domain.Priority.NORMAL
    group: str | None = Field(
        None, pattern=domain.GROUP_PATTERN, description="A counter group; default: the first"
    )
    unit: str | None = Field(
        None, pattern=AGENCY_CODE_PATTERN, description="Default: the kiosk key's unit."
    )


class CounterIn(BaseModel):
    """A counter's configuration."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    unit: str = Field(pattern=AGENCY_CODE_PATTERN)
    group: str = Field(pattern=domain.GROUP_PATTERN)
    fields: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(max_length=50)
    procedures: list[Annotated[str, Field(pattern=PROCEDURE_CODE_PATTERN)]] = Field(
        default_factory=list, max_length=500
    )


class PauseIn(BaseModel):
    """Why a counter stops calling."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(min_length=1, max_length=300)


class LinkIn(BaseModel):
    """The dossier received from a ticket."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=1, max_length=40)


class TicketOut(BaseModel):
    """A ticket and its times (Vietnam time); waiting is issue → call, service is
    start of service → done."""

    id: str
    number: str
    unit: str
    group: str
    priority: domain.Priority
    state: domain.TicketState
    field: str
    procedure_code: str | None
    counter: str | None
    cancel_reason: str | None
    issued_at: datetime
    called_at: datetime | None
    served_at: datetime | None
    finished_at: datetime | None
    waiting_seconds: float | None
    service_seconds: float | None
    dossier: str | None

    @classmethod
    def of(cls, ticket: store.Ticket) -> "TicketOut":
        """The answer for a stored ticket."""

        def shown(at: datetime | None) -> datetime | None:
            return in_vietnam(at) if at is not None else None

        waiting = (
            domain.seconds_between(ticket.issued_at, ticket.called_at) if ticket.called_at else None
        )
        service = (
            domain.seconds_between(ticket.served_at, ticket.finished_at)
            if ticket.served_at and ticket.finished_at
            else None
        )
        return cls(
            id=ticket.ticket_id,
            number=ticket.number,
            unit=ticket.unit,
            group=ticket.group,
            priority=domain.Priority(ticket.priority),
            state=domain.TicketState(ticket.state),
            field=ticket.field,
            procedure_code=ticket.procedure_code,
            counter=ticket.counter_id,
            cancel_reason=ticket.cancel_reason,
            issued_at=in_vietnam(ticket.issued_at),
            called_at=shown(ticket.called_at),
            served_at=shown(ticket.served_at),
            finished_at=shown(ticket.finished_at),
            waiting_seconds=waiting,
            service_seconds=service,
            dossier=ticket.dossier_code,
        )


class IssuedTicketOut(TicketOut):
    """A new ticket, the counters that serve it and the people ahead (what the kiosk
    prints)."""

    counters: list[str]
    ahead: int = Field(
        ge=0,
        description="Waiting tickets of its queue called before it when it was issued: "
        "every class called first (elderly, then priority) and the earlier ones of its own.",
    )


class CounterOut(BaseModel):
    """A counter's configuration and whether it is paused."""

    id: str
    unit: str
    group: str
    fields: list[str]
    procedures: list[str]
    state: domain.CounterState
    paused_reason: str | None

    @classmethod
    def of(cls, counter: store.QueueCounter) -> "CounterOut":
        """The answer for a stored counter."""
        return cls(
            id=counter.counter_id,
            unit=counter.unit,
            group=counter.group,
            fields=counter.fields,
            procedures=counter.procedures,
            state=counter.state,
            paused_reason=counter.paused_reason,
        )
