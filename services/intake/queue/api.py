"""The queue's HTTP API under ``/api/v1/queue`` (thin: shapes, the caller's key, a use case).

No ``from __future__ import annotations``: FastAPI evaluates ``Depends(...)`` on local
names.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field

from services.intake.queue import domain, store
from services.intake.queue.app import CounterSetup, NewTicket, Queue
from services.intake.queue.domain import TicketAction
from shared.auth import ALL_UNITS, Authenticator, Principal, Role
from shared.catalogue import AGENCY_CODE_PATTERN, PROCEDURE_CODE_PATTERN
from shared.clock import in_vietnam
from shared.errors import Forbidden, InvalidFields

_COUNTER_ID = r"^[A-Za-z0-9._-]{1,40}$"


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
    """A new ticket and the counters that serve it (what the kiosk prints)."""

    counters: list[str]


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


async def _answer(
    run: Callable[[], Awaitable[BaseModel]], status_code: int = status.HTTP_200_OK
) -> JSONResponse:
    """Run a use case and answer its result (its refusals, ``shared.errors``, are answered
    by the app: 409 answers carry the current state)."""
    answer = await run()
    return JSONResponse(answer.model_dump(mode="json"), status_code)


_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Illegal in the current state (given as `state`)."}
}


def router(queue: Queue, auth: Authenticator) -> APIRouter:
    """The kiosk, counter and display-board endpoints (every one needs an API key)."""
    api = APIRouter(prefix="/api/v1/queue", tags=["queue"])
    _ticket_routes(api, queue, auth)
    _counter_routes(api, queue, auth)
    _board_route(api, queue, auth)
    return api


def _ticket_routes(api: APIRouter, queue: Queue, auth: Authenticator) -> None:
    kiosk = auth.require(Role.KIOSK)
    counter_clerk = auth.require(Role.COUNTER)
    reader = auth.require()

    @api.post(
        "/tickets",
        status_code=status.HTTP_201_CREATED,
        response_model=IssuedTicketOut,
        responses={403: {}, 422: {}},
    )
    async def issue_ticket(
        body: TicketIn, principal: Annotated[Principal, Depends(kiosk)]
    ) -> JSONResponse:
        """Issue the next number of the queue serving the field or procedure, today."""
        unit = body.unit or principal.unit
        if unit == ALL_UNITS:
            raise InvalidFields([("unit", "required")], kind="missing")
        new = NewTicket(
            unit=unit,
            field=body.field,
            procedure_code=body.procedure_code,
            priority=body.priority,
            group=body.group,
        )

        async def run() -> BaseModel:
            ticket, counters = await queue.issue(new, actor=principal)
            return IssuedTicketOut(**TicketOut.of(ticket).model_dump(), counters=counters)

        return await _answer(run, status.HTTP_201_CREATED)

    @api.get("/tickets/{ticket_id}", response_model=TicketOut, responses={403: {}, 404: {}})
    async def get_ticket(
        ticket_id: str, principal: Annotated[Principal, Depends(reader)]
    ) -> JSONResponse:
        """A ticket, its times and the dossier linked to it."""

        async def run() -> BaseModel:
            return TicketOut.of(await queue.ticket(ticket_id, actor=principal))

        return await _answer(run)

    @api.post(
        "/tickets/{ticket_id}/dossier",
        response_model=TicketOut,
        responses={403: {}, 404: {}, 422: {}, **_CONFLICT},
    )
    async def link_dossier(
        ticket_id: str, body: LinkIn, principal: Annotated[Principal, Depends(counter_clerk)]
    ) -> JSONResponse:
        """Link the dossier received from this ticket (waiting, service and processing
        time then read as one record)."""

        async def run() -> BaseModel:
            return TicketOut.of(await queue.link_dossier(ticket_id, body.code, actor=principal))

        return await _answer(run)


def _counter_routes(api: APIRouter, queue: Queue, auth: Authenticator) -> None:
    counter_clerk = auth.require(Role.COUNTER)
    admin = auth.require(Role.ADMIN)
    reader = auth.require()

    @api.get("/counters", response_model=list[CounterOut])
    async def list_counters(
        principal: Annotated[Principal, Depends(reader)],
        unit: Annotated[str | None, Query(pattern=AGENCY_CODE_PATTERN)] = None,
    ) -> list[CounterOut]:
        """The counters of a unit (default: the key's; an admin key without ``unit``: all)."""
        wanted = unit or principal.unit
        if not principal.covers(wanted):
            raise Forbidden(f"this key cannot read {wanted}")
        counters = await queue.counters(None if wanted == ALL_UNITS else wanted)
        return [CounterOut.of(c) for c in counters]

    @api.put("/counters/{counter_id}", response_model=CounterOut, responses={422: {}})
    async def configure_counter(
        counter_id: Annotated[str, Path(pattern=_COUNTER_ID)],
        body: CounterIn,
        _principal: Annotated[Principal, Depends(admin)],
    ) -> JSONResponse:
        """Create or replace a counter's configuration (admin); a pause is kept."""
        setup = CounterSetup(
            unit=body.unit, group=body.group, fields=body.fields, procedures=body.procedures
        )

        async def run() -> BaseModel:
            return CounterOut.of(await queue.configure(counter_id, setup))

        return await _answer(run)

    @api.post(
        "/counters/{counter_id}/call-next",
        response_model=TicketOut,
        responses={
            403: {},
            404: {"description": "No such counter, or nobody waiting."},
            **_CONFLICT,
        },
    )
    async def call_next(
        counter_id: str, principal: Annotated[Principal, Depends(counter_clerk)]
    ) -> JSONResponse:
        """Call the next ticket of this counter's own queue (elderly, priority, normal;
        first come first within a class) and show it on the boards."""

        async def run() -> BaseModel:
            return TicketOut.of(await queue.call_next(counter_id, actor=principal))

        return await _answer(run)

    def ticket_step(action: TicketAction, path: str, summary: str) -> None:
        async def step(
            counter_id: str, principal: Annotated[Principal, Depends(counter_clerk)]
        ) -> JSONResponse:
            async def run() -> BaseModel:
                return TicketOut.of(await queue.advance(counter_id, action, actor=principal))

            return await _answer(run)

        api.add_api_route(
            f"/counters/{{counter_id}}/{path}",
            step,
            methods=["POST"],
            response_model=TicketOut,
            responses={403: {}, 404: {}, **_CONFLICT},
            summary=summary,
            name=f"ticket_{action.value}",
        )

    ticket_step(TicketAction.SERVE, "serve", "Start serving the called ticket")
    ticket_step(TicketAction.DONE, "done", "Finish serving the ticket")
    ticket_step(TicketAction.NO_SHOW, "no-show", "Cancel the called ticket: absent")

    @api.post(
        "/counters/{counter_id}/pause",
        response_model=CounterOut,
        responses={403: {}, 404: {}, **_CONFLICT},
    )
    async def pause(
        counter_id: str, body: PauseIn, principal: Annotated[Principal, Depends(counter_clerk)]
    ) -> JSONResponse:
        """Stop calling, with a reason."""

        async def run() -> BaseModel:
            return CounterOut.of(await queue.pause(counter_id, body.reason, actor=principal))

        return await _answer(run)

    @api.post(
        "/counters/{counter_id}/resume",
        response_model=CounterOut,
        responses={403: {}, 404: {}, **_CONFLICT},
    )
    async def resume(
        counter_id: str, principal: Annotated[Principal, Depends(counter_clerk)]
    ) -> JSONResponse:
        """Call again after a pause."""

        async def run() -> BaseModel:
            return CounterOut.of(await queue.pause(counter_id, None, actor=principal))

        return await _answer(run)


def _event_stream_client(request: Request) -> None:
    """406 unless the client asks for ``text/event-stream`` (as ``EventSource`` does): the
    board never ends, so a client not reading a stream would wait forever."""
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise HTTPException(
            status.HTTP_406_NOT_ACCEPTABLE, "the board is a stream: Accept text/event-stream"
        )


def _board_route(api: APIRouter, queue: Queue, auth: Authenticator) -> None:
    board_reader = auth.require(Role.KIOSK, Role.VIEWER)

    async def board_unit(
        principal: Annotated[Principal, Depends(board_reader)],
        unit: Annotated[str | None, Query(pattern=AGENCY_CODE_PATTERN)] = None,
    ) -> str:
        wanted = unit or principal.unit
        if not principal.covers(wanted):
            raise Forbidden(f"this key cannot watch {wanted}")
        return wanted

    @api.get(
        "/board",
        response_class=EventSourceResponse,
        responses={403: {}, 406: {"description": "Accept lacks text/event-stream."}},
        dependencies=[Depends(_event_stream_client)],
    )
    async def board(
        unit: Annotated[str, Depends(board_unit)],
    ) -> AsyncIterator[ServerSentEvent]:
        """Called numbers as they are called, as server-sent events ``called`` with
        ``number``, ``counter`` and ``at``; a comment first, once subscribed.

        Fed in process: a board sees the calls made through the intake instance it is
        connected to.
        """
        async with queue.board.subscribe() as calls:
            yield ServerSentEvent(comment="subscribed")
            while True:
                called = await calls.get()
                if unit in {ALL_UNITS, called.unit}:
                    yield ServerSentEvent(
                        event="called",
                        data={
                            "number": called.number,
                            "counter": called.counter_id,
                            "unit": called.unit,
                            "at": in_vietnam(called.at).isoformat(),
                        },
                    )
