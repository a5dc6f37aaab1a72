"""The queue's HTTP API under ``/api/v1/queue`` (thin: shapes, the caller's key, a use case).

No ``from __future__ import annotations``: FastAPI evaluates ``Depends(...)`` on local
names.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel

from services.intake.queue.app import CounterSetup, NewTicket, Queue
from services.intake.queue.domain import TicketAction
from services.intake.queue.views import (
    COUNTER_ID_PATTERN,
    CounterIn,
    CounterOut,
    IssuedTicketOut,
    LinkIn,
    PauseIn,
    TicketIn,
    TicketOut,
)
from shared.auth import ALL_UNITS, Authenticator, Principal, Role
from shared.catalogue import AGENCY_CODE_PATTERN
from shared.clock import in_vietnam
from shared.errors import Forbidden, InvalidFields


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
    _counter_setup_routes(api, queue, auth)
    _counter_call_routes(api, queue, auth)
    _counter_pause_routes(api, queue, auth)
    _board_route(api, queue, auth)
    return api


def _ticket_routes(api: APIRouter, queue: Queue, auth: Authenticator) -> None:
    _issue_route(api, queue, auth)
    counter_clerk = auth.require(Role.COUNTER)
    reader = auth.require()

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


def _issue_route(api: APIRouter, queue: Queue, auth: Authenticator) -> None:
    """``POST /tickets``: the kiosk's new number."""
    kiosk = auth.require(Role.KIOSK)

    @api.post(
        "/tickets",
        status_code=status.HTTP_201_CREATED,
        response_model=IssuedTicketOut,
        responses={403: {}, 422: {}},
    )
    async def issue_ticket(
        body: TicketIn, principal: Annotated[Principal, Depends(kiosk)]
    ) -> JSONResponse:
        """Issue the next number of the queue serving the field or procedure, today, with
        the counters serving it and how many waiting tickets are called before it."""
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
            ticket, standing = await queue.issue(new, actor=principal)
            return IssuedTicketOut(
                **TicketOut.of(ticket).model_dump(),
                counters=standing.counters,
                ahead=standing.ahead,
            )

        return await _answer(run, status.HTTP_201_CREATED)


def _counter_setup_routes(api: APIRouter, queue: Queue, auth: Authenticator) -> None:
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
        counter_id: Annotated[str, Path(pattern=COUNTER_ID_PATTERN)],
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


def _counter_call_routes(api: APIRouter, queue: Queue, auth: Authenticator) -> None:
    counter_clerk = auth.require(Role.COUNTER)

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


def _counter_pause_routes(api: APIRouter, queue: Queue, auth: Authenticator) -> None:
    counter_clerk = auth.require(Role.COUNTER)

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
