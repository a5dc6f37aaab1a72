"""Routing's HTTP API: the procedure catalogue."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException, status

from services.routing.app import Routing, build
from shared.catalogue import Procedure
from shared.service import create_http_app
from shared.settings import Settings, get_settings


def router(routing: Routing) -> APIRouter:
    """The catalogue endpoints."""
    api = APIRouter(prefix="/api/v1/catalogue", tags=["catalogue"])

    @api.get("", response_model=list[Procedure])
    async def list_procedures() -> list[Procedure]:
        """Every procedure of the current catalogue version."""
        return list(routing.catalogue.procedures.values())

    @api.get("/{code}", response_model=Procedure)
    async def get_procedure(code: str) -> Procedure:
        """One procedure."""
        procedure = routing.catalogue.get(code)
        if procedure is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no procedure {code}")
        return procedure

    return api


def create_app(settings: Settings | None = None) -> FastAPI:
    """Routing's process."""
    routing = build(settings or get_settings())
    return create_http_app(
        routing.runtime,
        title="motcua routing",
        description="The procedure catalogue and the routing of dossiers to offices.",
        routers=[router(routing)],
    )
