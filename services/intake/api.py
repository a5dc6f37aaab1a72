"""Intake's HTTP API (thin: validation of shapes, the caller's key, then a use case)."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AwareDatetime

from services.intake import calendar_api, domain, process, slip, store, views
from services.intake.app import (
    PUBLIC_LOOKUP_PATH,
    ActionRequest,
    Answer,
    Idempotency,
    Intake,
    NewDossier,
)
from services.intake.pages import render_lookup_page
from services.intake.queue import api as queue_api
from services.intake.ratelimit import TokenBuckets
from services.intake.ratings import GivenRating, Ratings
from services.intake.settings import IntakeSettings
from services.intake.views import ActionIn, DossierIn, LookupIn, PublicRatingIn, RatingIn
from shared.auth import ROLE_ACCESS, Access, Authenticator, Principal, Role, require_access
from shared.catalogue import AGENCY_CODE_PATTERN, PROCEDURE_CODE_PATTERN
from shared.clock import Clock, in_vietnam, utc_now
from shared.errors import NotFound, Refusal, TooMany
from shared.events import Channel, Contact
from shared.service import create_http_app
from shared.settings import Settings, get_settings

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 200

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Makes a retried request return the first answer instead of acting twice.",
    ),
]


async def _answer(run: Callable[[], Awaitable[Answer]]) -> JSONResponse:
    """Run a use case and answer its result (its refusals, ``shared.errors``, are answered
    by the app)."""
    answer = await run()
    return JSONResponse(status_code=answer.status_code, content=answer.body)


def _roles_with(*accesses: Access) -> list[Role]:
    """The roles granted any of ``accesses``."""
    return [role for role, granted in ROLE_ACCESS.items() if granted & set(accesses)]


def _idempotency(
    principal: Principal, key: str | None, request: dict[str, Any]
) -> Idempotency | None:
    return Idempotency.of(principal, key, request) if key else None


def router(intake: Intake, auth: Authenticator) -> APIRouter:
    """The dossier endpoints (every one needs an API key; ``shared.auth``'s access rule:
    a dossier the key's unit has no part in answers 404, as an unknown one)."""
    api = APIRouter(prefix="/api/v1/dossiers", tags=["dossiers"])
    _list_route(api, intake, auth)
    _receive_route(api, intake, auth)
    _action_route(api, intake, auth)
    _read_routes(api, intake, auth)
    return api


def _receive_route(api: APIRouter, intake: Intake, auth: Authenticator) -> None:
    receiver = require_access(auth, Access.RECEIVE)

    @api.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=views.DossierOut,
        responses={403: {}, 409: {}, 422: {}},
    )
    async def receive_dossier(
        body: DossierIn,
        principal: Annotated[Principal, Depends(receiver)],
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
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
            received_at=body.received_at,
        )
        idem = (
            Idempotency.of(
                principal,
                idempotency_key,
                {"route": "receive", "body": body.model_dump(mode="json")},
            )
            if idempotency_key
            else None
        )
        return await _answer(lambda: intake.receive(new, actor=principal, idempotency=idem))


def _action_route(api: APIRouter, intake: Intake, auth: Authenticator) -> None:
    actor = auth.require(*_roles_with(Access.COUNTER_ACTION, Access.OFFICE_ACTION))

    @api.post(
        "/{code}/actions",
        response_model=views.ActionOut,
        responses={403: {}, 404: {}, 409: {"description": "Illegal in the current state."}},
    )
    async def record_action(
        code: str,
        body: ActionIn,
        principal: Annotated[Principal, Depends(actor)],
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        """Record an action (accept, refuse, request_supplement, …) on a dossier."""
        action = ActionRequest(
            command=body.action,
            at=body.at,
            reason=body.reason,
            new_due_at=body.new_due_at,
            office=body.office,
        )
        request = {"route": "act", "code": code, "body": body.model_dump(mode="json")}
        idem = _idempotency(principal, idempotency_key, request)
        return await _answer(lambda: intake.act(code, action, actor=principal, idempotency=idem))


def _read_routes(api: APIRouter, intake: Intake, auth: Authenticator) -> None:
    reader = require_access(auth, Access.READ)
    personal_reader = require_access(auth, Access.READ_PERSONAL)

    @api.get("/{code}", response_model=views.DossierDetailOut, responses={403: {}, 404: {}})
    async def get_dossier(
        code: str, principal: Annotated[Principal, Depends(reader)]
    ) -> views.DossierDetailOut:
        """A dossier's status (ours and the national code), due time and history."""
        dossier, history = await intake.detail(code, actor=principal)
        return views.DossierDetailOut(
            **views.DossierOut.of(dossier).model_dump(),
            history=[views.HistoryEntryOut.of(row) for row in history],
        )

    @api.get(
        "/{code}/slip",
        response_class=HTMLResponse,
        responses={
            200: {"content": {"application/pdf": {}}},
            403: {},
            404: {},
            409: {"description": "Not received: no slip."},
        },
    )
    async def get_slip(
        code: str,
        principal: Annotated[Principal, Depends(personal_reader)],
        format: Literal["html", "pdf"] = "html",
    ) -> Response:
        """The receipt and appointment slip (Mẫu 01) as printable HTML or PDF: the
        applicant's name and phone, so counter, importer and admin keys only, and a
        unit's key only for the dossiers its unit received."""
        printed = await intake.slip(code, actor=principal)
        if format == "pdf":
            return Response(
                slip.render_pdf(printed),
                media_type="application/pdf",
                headers={"Content-Disposition": f'inline; filename="{code}.pdf"'},
            )
        return HTMLResponse(slip.render_html(printed))


ListLimit = Annotated[
    int,
    Query(ge=1, le=MAX_LIST_LIMIT, description=f"At most this many (1 to {MAX_LIST_LIMIT})."),
]


def _list_route(api: APIRouter, intake: Intake, auth: Authenticator) -> None:
    reader = require_access(auth, Access.READ)

    @api.get("", response_model=views.DossierPageOut, responses={403: {}, 422: {}})
    async def list_dossiers(
        *,
        request: Request,
        response: Response,
        principal: Annotated[Principal, Depends(reader)],
        receiving_unit: Annotated[str | None, Query(pattern=AGENCY_CODE_PATTERN)] = None,
        office: Annotated[str | None, Query(pattern=AGENCY_CODE_PATTERN)] = None,
        status: Annotated[list[domain.DossierStatus] | None, Query()] = None,
        channel: Channel | None = None,
        procedure: Annotated[str | None, Query(pattern=PROCEDURE_CODE_PATTERN)] = None,
        received_from: AwareDatetime | None = None,
        received_to: AwareDatetime | None = None,
        due_before: AwareDatetime | None = None,
        overdue: bool | None = None,
        code_prefix: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
        sort: Literal["due", "received"] = "due",
        limit: ListLimit = DEFAULT_LIST_LIMIT,
        cursor: Annotated[str | None, Query(min_length=1, max_length=400)] = None,
    ) -> views.DossierPageOut:
        """The dossiers the key's unit received or handles (every one for an admin key),
        narrowed by each filter given (``status`` repeatable; ``received_to`` and
        ``due_before`` exclusive; ``overdue`` against the due time in force, now), sorted
        by ``due`` (appointment time ascending, then code) or ``received`` (newest
        first), those without that time last. Keyset pages: pass ``next_cursor`` as
        ``cursor`` for the next (also in ``Link: rel="next"``); walking them meets every
        dossier present at the start once, whatever is received meanwhile. The
        applicant's name only for keys that may read the dossier's personal data."""
        wanted = store.DossierFilter(
            receiving_unit=receiving_unit,
            office=office,
            statuses=tuple(s.value for s in status or ()),
            channel=channel.value if channel else None,
            procedure_code=procedure,
            received_from=received_from,
            received_to=received_to,
            due_before=due_before,
            overdue=overdue,
            code_prefix=code_prefix,
        )
        page = await intake.dossiers(wanted, actor=principal, sort=sort, cursor=cursor, limit=limit)
        if page.next_cursor is not None:
            target = request.url.include_query_params(cursor=page.next_cursor)
            response.headers["Link"] = f'<{target.path}?{target.query}>; rel="next"'
        return page


PUBLIC_LOOKUP = "/api/v1/public/lookup"
"""The citizen's look-up: a POST, so that the phone never travels in a URL (URLs are logged)."""


PUBLIC_TIME = "/api/v1/public/time"
"""The services' clock, for the screens (no key: it tells nothing but the time)."""


def _take_guess(
    request: Request, code: str, per_client: TokenBuckets, per_code: TokenBuckets
) -> None:
    """Count one public guess of ``code``'s phone against the client's address and the
    code (the caller gives the code's token back when the phone was right); refuse with
    429 and ``Retry-After`` when either is spent."""
    client = request.client.host if request.client else "unknown"
    for buckets, key, what in (
        (per_client, client, "from this address"),
        (per_code, code, "of this dossier"),
    ):
        if not buckets.take(key):
            msg = f"too many look-ups {what}; try again later"
            raise TooMany(msg, retry_after=buckets.retry_after(key))


def public_router(intake: Intake, per_client: TokenBuckets, per_code: TokenBuckets) -> APIRouter:
    """The citizen's look-up: no key, status and due time only (and what a supplement
    asks for), and the services' clock. The look-up is limited per client
    address (the one the trusted proxy names) and, for wrong guesses, per dossier code
    whoever guesses: a code that had too many wrong phones answers 429 for a while."""
    api = APIRouter(tags=["public"])

    @api.post(
        PUBLIC_LOOKUP,
        response_model=views.PublicDossierOut,
        response_model_exclude_unset=True,  # ``supplement`` only while one is awaited
        responses={404: {}, 429: {}},
    )
    async def look_up(body: LookupIn, request: Request) -> views.PublicDossierOut:
        """Status and due time of a dossier, when ``phone`` is the applicant's. A wrong
        phone and an unknown code get the same 404, and count alike against the code."""
        _take_guess(request, body.code, per_client, per_code)
        found = await intake.public_lookup(body.code, body.phone)
        if found is None:
            raise NotFound("no dossier with this code and phone")
        per_code.give_back(body.code)  # the right phone is no guess
        return found

    @api.get(PUBLIC_TIME, response_model=views.ServerTimeOut)
    async def server_time() -> views.ServerTimeOut:
        """The services' now and today's date in Vietnam: screens show "today" by it, not
        by the device's clock."""
        now = in_vietnam(intake.clock())
        return views.ServerTimeOut(now=now, today=now.date())

    @api.get(
        PUBLIC_LOOKUP_PATH + "/{code}",  # where slips' QR codes point
        response_class=HTMLResponse,
        responses={200: {"description": "The look-up page (HTML), the code filled in."}},
    )
    async def look_up_page(code: str) -> HTMLResponse:
        """The citizen's look-up page, where the slip's QR code leads: the dossier code
        filled in, the phone asked for, the answer of ``POST /api/v1/public/lookup`` shown
        (the phone never travels in a URL). Any code gets the page: it says nothing of
        whether the dossier exists."""
        known = code if domain.parse_dossier_code(code) is not None else ""
        return HTMLResponse(
            render_lookup_page(known, PUBLIC_LOOKUP), headers={"Cache-Control": "no-store"}
        )

    return api


RATINGS = "/api/v1/ratings"
"""A rating given on a kiosk (kiosk keys of the dossier's receiving unit)."""
PUBLIC_RATINGS = "/api/v1/public/ratings"
"""A rating given online: the code and phone, as for the look-up (a POST: no phone in a URL)."""


def ratings_router(ratings: Ratings, auth: Authenticator) -> APIRouter:
    """``POST /api/v1/ratings``: kiosk keys (and admin); the dossier must be one the key's
    unit received, else 404 as for an unknown code."""
    api = APIRouter(tags=["ratings"])
    kiosk = auth.require(Role.KIOSK)

    @api.post(
        RATINGS,
        status_code=status.HTTP_201_CREATED,
        response_model=views.RatingOut,
        responses={403: {}, 404: {}, 409: {"description": "Rated already, or no result yet."}},
    )
    async def rate_at_kiosk(
        body: RatingIn, principal: Annotated[Principal, Depends(kiosk)]
    ) -> views.RatingOut:
        """Record the citizen's satisfaction with a dossier after its result (status 9 or
        10): once per dossier; three levels, an optional comment of at most 500 characters."""
        given = GivenRating(level=body.level, comment=body.comment)
        return await ratings.at_kiosk(body.code, given, actor=principal)

    return api


def public_ratings_router(
    ratings: Ratings, per_client: TokenBuckets, per_code: TokenBuckets
) -> APIRouter:
    """``POST /api/v1/public/ratings``: no key; the code and the applicant's phone, limited
    by the public look-up's own buckets (per client address, and per code for wrong
    phones), with the look-up's answer to a wrong phone."""
    api = APIRouter(tags=["public"])

    @api.post(
        PUBLIC_RATINGS,
        status_code=status.HTTP_201_CREATED,
        response_model=views.RatingOut,
        responses={404: {}, 409: {"description": "Rated already, or no result yet."}, 429: {}},
    )
    async def rate_online(body: PublicRatingIn, request: Request) -> views.RatingOut:
        """Record the citizen's satisfaction with a dossier after its result, when
        ``phone`` is the applicant's: once per dossier. A wrong phone and an unknown code
        get the look-up's 404, and count alike against the code."""
        _take_guess(request, body.code, per_client, per_code)
        given = GivenRating(level=body.level, comment=body.comment)
        try:
            rated = await ratings.online(body.code, body.phone, given)
        except Refusal:
            per_code.give_back(body.code)  # the phone was right: no guess
            raise
        if rated is None:
            raise NotFound("no dossier with this code and phone")
        per_code.give_back(body.code)
        return rated

    return api


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = utc_now,
    options: IntakeSettings | None = None,
) -> FastAPI:
    """Intake's process: HTTP API, metrics, health, outbox relay."""
    options = options or IntakeSettings()
    built = process.build(settings or get_settings(), clock=clock, options=options)
    intake = built.intake
    per_client = TokenBuckets(
        burst=options.lookup_burst, per_second=options.lookup_per_minute / 60.0
    )
    per_code = TokenBuckets(
        burst=options.lookup_failures_per_code,
        per_second=options.lookup_failures_per_code / (options.lookup_failure_window_minutes * 60),
        # ~27 MB when full; forgetting a code needs 100,000 other codes guessed after it
        max_clients=100_000,
    )
    auth = Authenticator(intake.find_key, cache_seconds=options.key_cache_seconds)
    app = create_http_app(
        intake.runtime,
        title="motcua intake",
        description="Receiving dossiers (tiếp nhận hồ sơ), queue tickets and the public look-up.",
        routers=[
            router(intake, auth),
            public_router(intake, per_client, per_code),
            calendar_api.router(intake.runtime, auth),
            queue_api.router(built.queue, auth),
            ratings_router(built.ratings, auth),
            public_ratings_router(built.ratings, per_client, per_code),
        ],
        background=[intake.keys_job, intake.purge_job],
    )
    app.state.intake = intake
    app.state.queue = built.queue
    return app
