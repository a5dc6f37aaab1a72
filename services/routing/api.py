"""Routing's HTTP API: the procedure catalogue, and the rules for administrators.

``/api/v1/catalogue``: read the current version; add, replace or remove a procedure
(each a new version, published to the other services); the history of versions. A
refused change answers 422 naming each field, and nothing is written.
``/api/v1/rules``: list, add, remove, test, history, re-route, the manual queue and
manual assignment, and a dossier's processing-control sheet (Mẫu 06).

The lists that grow without bound are paged (``shared.paging``: ``limit``, ``offset``,
``X-Total-Count``, ``Link``), each in a stable order: the catalogue by procedure code, its
history newest version first, the manual queue oldest first (ties: by dossier code).

Access (API keys issued by intake, checked against routing's copy, ``shared.keys_sync``):
the catalogue and one procedure of it are public (published information); every other
read needs a live key (401 without); every write needs an admin key (403 for another
role), and a refused write changes nothing. What names dossiers follows ``shared.auth``'s
access rule: the manual queue shows a unit's key only the dossiers its unit received; a
dossier's sheet, only to keys of a unit with a part in it (received, routed office, chain
step), else 404 as for an unknown dossier; kiosk keys read neither (403). A write records
its author as the key's id, after the optional, unchecked ``by`` the caller gives:
``"ops (key 0123456789ab)"``.
"""

# No ``from __future__ import annotations``: FastAPI must evaluate the ``Depends`` in the
# endpoints' annotations, which name the routers' local ``admin``.

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Body,
    Depends,
    FastAPI,
    Query,
    Request,
    Response,
    status,
)
from pydantic import BaseModel, ConfigDict, Field

from services.routing import domain, process
from services.routing.app import Catalogues, Routing
from services.routing.views import (
    CatalogueChangeOut,
    CatalogueVersionOut,
    DecisionOut,
    QueueEntryOut,
    RerouteOut,
    RuleSetOut,
    SheetOut,
    VersionOut,
)
from shared.auth import (
    ALL_UNITS,
    Access,
    Authenticator,
    DossierUnits,
    Principal,
    Role,
    dossier_not_found,
    may_reach,
    require_access,
)
from shared.catalogue import (
    AGENCY_CODE_PATTERN,
    FIELD_MAX_LENGTH,
    MAX_STEPS,
    PROCEDURE_CODE_PATTERN,
    Procedure,
    Step,
    parse_procedure,
)
from shared.clock import Clock, utc_now
from shared.errors import NotFound
from shared.keys_sync import key_lookup
from shared.paging import PAGED, Page, page_query, set_page_headers
from shared.service import create_http_app
from shared.settings import Settings, get_settings

BY_MAX_LENGTH = 80
"""The longest ``by``: with `` (key <12 hex>)`` the author fits in 100 characters."""
BY_DESCRIPTION = "Who makes the change, recorded before the id of the key that makes it."
ChangedBy = Annotated[
    str | None,
    Query(min_length=1, max_length=BY_MAX_LENGTH, description=BY_DESCRIPTION),
]
KEYED: dict[int | str, dict[str, Any]] = {401: {"description": "No live API key."}}
ADMIN: dict[int | str, dict[str, Any]] = {
    **KEYED,
    403: {"description": "The key is not an admin key; nothing changed."},
}
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


Require = Callable[..., Coroutine[Any, Any, Principal]]
"""A key-checking dependency (``Authenticator.require``, ``shared.auth.require_access``)."""


def recorded_by(principal: Principal, by: str | None) -> str:
    """The author a change records: the caller's ``by`` if given, and always the id of
    the key that made it (``by`` alone is unchecked)."""
    return f"{by} (key {principal.key_id})" if by else f"key {principal.key_id}"


def catalogue_router(catalogues: Catalogues, auth: Authenticator) -> APIRouter:
    """The catalogue endpoints: reading public, the history any key, writes admin."""
    api = APIRouter(prefix="/api/v1/catalogue", tags=["catalogue"])
    _catalogue_writes(api, catalogues, auth.require(Role.ADMIN))
    _catalogue_reads(api, catalogues, auth.require())
    return api


def _catalogue_writes(api: APIRouter, catalogues: Catalogues, admin: Require) -> None:
    """Add (or replace) and remove a procedure: each a new version, published."""

    @api.post(
        "",
        response_model=CatalogueChangeOut,
        status_code=status.HTTP_201_CREATED,
        responses={
            **ADMIN,
            422: {"description": "Refused: each bad field named; nothing changed."},
        },
    )
    async def add_procedure(
        body: Annotated[
            dict[str, Any],
            Body(description="The procedure as JSON.", examples=[PROCEDURE_EXAMPLE]),
        ],
        principal: Annotated[Principal, Depends(admin)],
        by: ChangedBy = None,
        replace: Annotated[
            bool, Query(description="Replace the procedure of the same code if there is one.")
        ] = False,
    ) -> CatalogueChangeOut:
        """Add (or with ``replace`` replace) a procedure: a new version, published."""
        author = recorded_by(principal, by)
        procedure = parse_procedure(body)
        catalogue = await catalogues.add_procedure(procedure, replace=replace, by=author)
        verb = "replaced" if replace else "added"
        return CatalogueChangeOut(
            version=catalogue.version,
            procedures=len(catalogue.procedures),
            change=f"{verb} {procedure.code}",
        )

    @api.delete("/{code}", response_model=CatalogueChangeOut, responses={**ADMIN, 404: {}})
    async def remove_procedure(
        code: str, principal: Annotated[Principal, Depends(admin)], by: ChangedBy = None
    ) -> CatalogueChangeOut:
        """Remove a procedure: a new version, published; 404 if there is none."""
        catalogue = await catalogues.remove_procedure(code, by=recorded_by(principal, by))
        return CatalogueChangeOut(
            version=catalogue.version,
            procedures=len(catalogue.procedures),
            change=f"removed {code}",
        )


def _catalogue_reads(api: APIRouter, catalogues: Catalogues, reader: Require) -> None:
    """The current procedures and one of them (public), the history of versions (a key).

    ``/history`` is declared before ``/{code}``, which would otherwise take it.
    """

    @api.get("", response_model=list[Procedure], responses=PAGED)
    async def list_procedures(
        page: Annotated[Page, Depends(page_query)], request: Request, response: Response
    ) -> list[Procedure]:
        """The procedures of the current catalogue version, by procedure code, a page at a
        time: ``X-Total-Count`` how many the version holds, ``Link`` the next and previous
        pages."""
        procedures = (await catalogues.current()).procedures
        codes = sorted(procedures)
        set_page_headers(request, response, page, len(codes))
        return [procedures[code] for code in codes[page.offset : page.offset + page.limit]]

    @api.get(
        "/history",
        response_model=list[CatalogueVersionOut],
        responses={**PAGED, **KEYED},
        dependencies=[Depends(reader)],
    )
    async def catalogue_history(
        page: Annotated[Page, Depends(page_query)], request: Request, response: Response
    ) -> list[CatalogueVersionOut]:
        """The versions of the catalogue, newest first, a page at a time (read from the
        database a page at a time): ``X-Total-Count`` how many versions there are, ``Link``
        the next and previous pages."""
        versions, total = await catalogues.history_page(limit=page.limit, offset=page.offset)
        set_page_headers(request, response, page, total)
        return [CatalogueVersionOut.model_validate(row, from_attributes=True) for row in versions]

    @api.get("/{code}", response_model=Procedure, responses={404: {}})
    async def get_procedure(code: str) -> Procedure:
        """One procedure."""
        procedure = (await catalogues.current()).get(code)
        if procedure is None:
            raise NotFound(f"no procedure {code}")
        return procedure


class NewRule(BaseModel):
    """A rule to add, and optionally who adds it."""

    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any]
    by: str | None = Field(
        default=None, min_length=1, max_length=BY_MAX_LENGTH, description=BY_DESCRIPTION
    )


class TestQuery(BaseModel):
    """A hypothetical dossier: field and level default to the catalogue's."""

    model_config = ConfigDict(extra="forbid")

    procedure: str = Field(pattern=PROCEDURE_CODE_PATTERN)
    receiving_unit: str = Field(pattern=AGENCY_CODE_PATTERN)
    channel: domain.ChannelName = "counter"
    field: str | None = Field(None, min_length=1, max_length=FIELD_MAX_LENGTH)
    level: domain.Level | None = None


class AssignIn(BaseModel):
    """A manual assignment: the office, optionally the chain and who decides."""

    model_config = ConfigDict(extra="forbid")

    office: str = Field(pattern=AGENCY_CODE_PATTERN)
    steps: list[Step] | None = Field(None, min_length=1, max_length=MAX_STEPS)
    by: str | None = Field(
        default=None, min_length=1, max_length=BY_MAX_LENGTH, description=BY_DESCRIPTION
    )


def rules_router(routing: Routing, auth: Authenticator) -> APIRouter:
    """The rules endpoints: reads any key, writes admin; the manual queue and a dossier's
    sheet only to the keys of units with a part in its dossiers."""
    api = APIRouter(prefix="/api/v1/rules", tags=["rules"])
    admin = auth.require(Role.ADMIN)
    _rule_routes(api, routing, reader=auth.require(), admin=admin)
    _dossier_routes(api, routing, dossier_reader=require_access(auth, Access.READ), admin=admin)
    return api


def _rule_routes(api: APIRouter, routing: Routing, *, reader: Require, admin: Require) -> None:
    """The rules: list, add, remove, test and history."""

    @api.get("", response_model=RuleSetOut, responses=KEYED, dependencies=[Depends(reader)])
    async def list_rules() -> RuleSetOut:
        """The rules in force, in the order they are tried."""
        return RuleSetOut.of(await routing.rules())

    @api.post(
        "",
        response_model=RuleSetOut,
        status_code=status.HTTP_201_CREATED,
        responses={**ADMIN, 422: {"description": "Refused, with the reason; nothing changed."}},
    )
    async def add_rule(
        body: NewRule, principal: Annotated[Principal, Depends(admin)]
    ) -> RuleSetOut:
        """Add a rule (a new version); 422 with the reason, rules unchanged, if refused."""
        author = recorded_by(principal, body.by)
        return RuleSetOut.of(await routing.add_rule(domain.parse_rule(body.rule), by=author))

    @api.delete("/{priority}", response_model=RuleSetOut, responses={**ADMIN, 404: {}})
    async def remove_rule(
        priority: int, principal: Annotated[Principal, Depends(admin)], by: ChangedBy = None
    ) -> RuleSetOut:
        """Remove the rule of ``priority`` (a new version); 404 if there is none."""
        return RuleSetOut.of(await routing.remove_rule(priority, by=recorded_by(principal, by)))

    @api.post("/test", response_model=DecisionOut, responses=KEYED, dependencies=[Depends(reader)])
    async def test_rules(query: TestQuery) -> DecisionOut:
        """Where a dossier would go under the current rules, and why (nothing is routed)."""
        facts = routing.facts(
            query.procedure,
            query.receiving_unit,
            query.channel,
            field=query.field,
            level=query.level,
        )
        return DecisionOut.of(await routing.test(facts))

    @api.get(
        "/history",
        response_model=list[VersionOut],
        responses=KEYED,
        dependencies=[Depends(reader)],
    )
    async def history() -> list[VersionOut]:
        """Every version of the rules, newest first."""
        return [
            VersionOut.model_validate(row, from_attributes=True) for row in await routing.history()
        ]


def _dossier_routes(
    api: APIRouter, routing: Routing, *, dossier_reader: Require, admin: Require
) -> None:
    """Re-routing, the manual queue, manual assignment and a dossier's sheet."""

    @api.post("/reroute", response_model=RerouteOut, responses=ADMIN, dependencies=[Depends(admin)])
    async def reroute() -> RerouteOut:
        """Move open dossiers (and the manual queue) to the current rules; report what moved."""
        return RerouteOut.of(await routing.reroute())

    @api.get("/manual-queue", response_model=list[QueueEntryOut], responses={**PAGED, **ADMIN})
    async def manual_queue(
        principal: Annotated[Principal, Depends(dossier_reader)],
        page: Annotated[Page, Depends(page_query)],
        request: Request,
        response: Response,
    ) -> list[QueueEntryOut]:
        """Dossiers no rule could route, oldest first (ties: by dossier code), a page at a
        time: those the key's unit received (an admin or all-unit key: all).
        ``X-Total-Count`` counts only those too; ``Link``: the next and previous pages."""
        entries, total = await routing.manual_queue_page(
            queue_unit(principal), limit=page.limit, offset=page.offset
        )
        set_page_headers(request, response, page, total)
        return [QueueEntryOut.model_validate(entry, from_attributes=True) for entry in entries]

    @api.post(
        "/manual-queue/{code}/assign",
        response_model=SheetOut,
        responses={**ADMIN, 409: {"description": "Not queued, or past its first step."}},
    )
    async def assign(
        code: str, body: AssignIn, principal: Annotated[Principal, Depends(admin)]
    ) -> SheetOut:
        """Route a queued dossier by hand (or re-assign one still at its first step)."""
        author = recorded_by(principal, body.by)
        await routing.assign(code, body.office, steps=body.steps, by=author)
        return await _sheet(routing, code, principal)

    @api.get("/sheet/{code}", response_model=SheetOut, responses={**ADMIN, 404: {}})
    async def sheet(
        code: str, principal: Annotated[Principal, Depends(dossier_reader)]
    ) -> SheetOut:
        """The processing-control sheet (Mẫu 06): each step's office, start, due and end
        (404 for a dossier the key's unit has no part in, as for an unknown one). The due
        times are those of sla's clock once it published them (pauses and restarts
        included); ``due_times`` and each step's ``due_from`` say how."""
        return await _sheet(routing, code, principal)


def queue_unit(principal: Principal) -> str | None:
    """The receiving unit whose queued dossiers ``principal`` may read (``None``: every
    unit's), for the database to filter on.

    The same answer as ``may_reach(principal, Access.READ, DossierUnits.of(receiving))``
    for a key that has ``Access.READ`` (the route's dependency checks it): a dossier in
    the manual queue has no office nor chain yet, so the unit that received it is the
    only one with a part in it; an admin or all-unit key reaches every dossier.
    """
    return None if principal.covers(ALL_UNITS) else principal.unit


async def _sheet(routing: Routing, code: str, principal: Principal) -> SheetOut:
    found = await routing.sheet(code)
    if found is None:
        raise dossier_not_found(code)
    row, chain = found
    units = DossierUnits.of(row.receiving_unit, row.office, *(step.office for step in chain))
    if not may_reach(principal, Access.READ, units):
        raise dossier_not_found(code)
    return SheetOut.of(row, chain)


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """Routing's process; its API checks keys against the copy it keeps of intake's."""
    built = process.build(settings or get_settings(), clock=clock)
    auth = Authenticator(key_lookup(built.runtime.db))
    return create_http_app(
        built.runtime,
        title="motcua routing",
        description="The procedure catalogue, the routing rules and the chains of dossiers.",
        routers=[
            catalogue_router(built.routing.catalogues, auth),
            rules_router(built.routing, auth),
        ],
        background=[built.routing.gauge_job, built.routing.catalogues.job],
    )
