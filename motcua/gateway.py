"""The single HTTP entry point of the local stack: routes by path to each service.

It also serves one merged OpenAPI document of all four services at ``/openapi.json``
and the API docs at ``/docs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from shared.apidocs import serve_api_docs

ROUTES: tuple[tuple[str, str], ...] = (
    ("/api/v1/dossiers", "intake"),
    ("/api/v1/queue", "intake"),
    ("/api/v1/public", "intake"),
    ("/api/v1/calendar", "intake"),
    ("/api/v1/catalogue", "routing"),
    ("/api/v1/rules", "routing"),
    ("/api/v1/sla", "sla"),
    ("/api/v1/reports", "notify"),
    ("/api/v1/notifications", "notify"),
    ("/dashboard", "notify"),
)

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "host",
    "content-length",
}


def upstream_for(path: str) -> str | None:
    """The service that serves ``path``, by longest matching prefix."""
    for prefix, service in ROUTES:
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return None


def merge_openapi(documents: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """One OpenAPI document from the services' own."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "motcua",
            "version": "0.1.0",
            "description": "All motcua services behind one entry point.",
        },
        "paths": {},
        "components": {"schemas": {}},
    }
    for doc in documents.values():
        merged["paths"].update(doc.get("paths", {}))
        merged["components"]["schemas"].update(doc.get("components", {}).get("schemas", {}))
    return merged


def create_gateway(upstreams: Mapping[str, str]) -> FastAPI:
    """The gateway app; ``upstreams`` maps a service name to its base URL."""
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(
        title="motcua", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        docs: dict[str, dict[str, Any]] = {}
        for name, base in upstreams.items():
            try:
                docs[name] = (await client.get(f"{base}/openapi.json")).json()
            except httpx.HTTPError:
                continue
        return JSONResponse(merge_openapi(docs))

    serve_api_docs(app, title="motcua API")

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        report: dict[str, Any] = {}
        for name, base in upstreams.items():
            try:
                report[name] = (await client.get(f"{base}/health/ready")).json()
            except httpx.HTTPError as exc:
                report[name] = {"error": type(exc).__name__}
        return JSONResponse(report)

    @app.api_route(
        "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    async def proxy(request: Request, path: str) -> Any:
        service = upstream_for("/" + path)
        if service is None:
            return JSONResponse({"detail": f"no service serves /{path}"}, status_code=404)
        url = httpx.URL(f"{upstreams[service]}/{path}", query=request.url.query.encode())
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            upstream = await client.send(
                client.build_request(
                    request.method, url, headers=headers, content=await request.body()
                ),
                stream=True,
            )
        except httpx.HTTPError as exc:
            return JSONResponse(
                {"detail": f"{service} unreachable: {type(exc).__name__}"}, status_code=502
            )
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP},
            background=BackgroundTask(upstream.aclose),
        )

    return app
