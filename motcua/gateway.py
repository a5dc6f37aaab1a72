"""The single HTTP entry point of the local stack: routes by path to each service.

It also serves one merged OpenAPI document of all five services at ``/openapi.json``,
the API docs at ``/docs``, and the screens (``/app/*``, ``/tra-cuu``: ``motcua.screens``).

It is the edge, and guards it (``deploy/proxy/nginx.conf`` does the same in compose):

- a path that holds a dot segment (``.``, ``..``), a backslash, an encoded slash or a
  control character, at any depth of percent-encoding, is refused with 400 before any
  route is matched; a clean path is forwarded exactly as it came (no client normalises
  it on the way, so the service sees what was checked);
- a request body over ``MOTCUA_MAX_BODY_BYTES`` is refused with 413 before it is forwarded;
- the client's ``X-Forwarded-*``, ``Forwarded`` and ``X-Real-IP`` are dropped: the
  services get the gateway's own ``X-Forwarded-For``, the address of the peer that
  connected to it. Serve it with :func:`server_config`, which keeps uvicorn from
  believing a client's ``X-Forwarded-For`` in the first place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Receive, Scope, Send

from motcua.screens import mount_screens
from shared.apidocs import serve_api_docs
from shared.service import BodySizeLimit
from shared.settings import Settings, get_settings

ROUTES: tuple[tuple[str, str], ...] = (
    ("/api/v1/dossiers", "intake"),
    ("/api/v1/queue", "intake"),
    ("/api/v1/public", "intake"),
    ("/api/v1/calendar", "intake"),
    ("/api/v1/ratings", "intake"),
    ("/api/v1/catalogue", "routing"),
    ("/api/v1/rules", "routing"),
    ("/api/v1/sla", "sla"),
    ("/api/v1/reports", "notify"),
    ("/api/v1/notifications", "notify"),
    ("/api/v1/portal", "portal"),
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

_FORWARDING = {"forwarded", "x-real-ip"}
"""Besides every ``X-Forwarded-*``: what only the gateway may tell a service."""

_MAX_DECODINGS = 4
"""Percent-decodings of a path looked through: three levels of encoding are checked to
the bottom; a path still changing after that is refused."""


def path_refusal(raw_path: bytes) -> str | None:
    """Why ``raw_path`` (the path as it came, before any decoding) is refused, or ``None``
    when it is clean.

    Clean: it starts with ``/``; at every depth of percent-decoding (``%2e``,
    ``%252e``, ``%25252e`` alike, any case) no segment is ``.`` or ``..`` (nor those
    followed by ``;``), no segment but the last is empty, there is no backslash and no
    control character, no decoding turns an escape into a ``/``, and the bottom decodes
    as UTF-8. Any server behind that decodes the path once, or several times, then sees
    a path without a way up.
    """
    if not raw_path.startswith(b"/"):
        return "not an absolute path"
    level = raw_path
    for _ in range(_MAX_DECODINGS):
        if reason := _level_refusal(level):
            return reason
        decoded = unquote_to_bytes(level)
        if decoded == level:
            return None if _is_utf8(level) else "not UTF-8"
        if decoded.count(b"/") != level.count(b"/"):
            return "encoded slash"
        level = decoded
    return "percent-encoded too many times"


def _level_refusal(path: bytes) -> str | None:
    """What is wrong with one depth of decoding of a path, if anything."""
    if b"\\" in path:
        return "backslash"
    if any(byte < 0x20 or byte == 0x7F for byte in path):
        return "control character"
    segments = path.split(b"/")
    if any(segment.split(b";", 1)[0] in (b".", b"..") for segment in segments):
        return "dot segment"
    if b"" in segments[1:-1]:
        return "empty segment"
    return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class PathGuard:
    """ASGI middleware: a request whose path :func:`path_refusal` refuses is answered 400
    before any route sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            reason = path_refusal(_raw_path(scope))
            if reason is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                refusal = JSONResponse({"detail": f"path refused: {reason}"}, status_code=400)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _raw_path(scope: Scope) -> bytes:
    """The path as the client sent it (servers that give none: the decoded one, quoted)."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw
    return quote(str(scope["path"]), safe="/;%").encode("ascii")


def forwarded_headers(request: Request) -> dict[str, str]:
    """The request's headers for the service: hop-by-hop ones and every forwarding header
    the client sent dropped, the gateway's own ``X-Forwarded-For`` (the peer's address)
    and ``X-Forwarded-Proto`` set."""
    headers = {
        k: v
        for k, v in request.headers.items()
        if k.lower() not in _HOP_BY_HOP
        and k.lower() not in _FORWARDING
        and not k.lower().startswith("x-forwarded-")
    }
    if request.client is not None:
        headers["X-Forwarded-For"] = request.client.host
    headers["X-Forwarded-Proto"] = request.url.scheme
    return headers


def server_config(app: ASGIApp, *, host: str, port: int) -> uvicorn.Config:
    """How the gateway is served. It is the edge, so uvicorn's proxy headers are off: on
    (uvicorn's default, trusting loopback) any local client could name its own address
    with ``X-Forwarded-For``. No access log: URLs may hold personal data."""
    return uvicorn.Config(
        app, host=host, port=port, log_level="warning", proxy_headers=False, access_log=False
    )


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


def create_gateway(upstreams: Mapping[str, str], settings: Settings | None = None) -> FastAPI:
    """The gateway app; ``upstreams`` maps a service name to its base URL."""
    settings = settings or get_settings()
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(
        title="motcua", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    _gathered_routes(app, client, upstreams)
    serve_api_docs(app, title="motcua API")
    mount_screens(app)  # before the catch-all proxy: /app/* and /tra-cuu are served here
    _proxy_route(app, client, upstreams)
    # the last added runs first: the path is checked before the body is counted
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(PathGuard)
    return app


def _gathered_routes(app: FastAPI, client: httpx.AsyncClient, upstreams: Mapping[str, str]) -> None:
    """``/openapi.json`` (the services' documents merged) and ``/health`` (each service's
    readiness); a service that does not answer is left out of the first and named with
    its error in the second."""

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        docs: dict[str, dict[str, Any]] = {}
        for name, base in upstreams.items():
            try:
                docs[name] = (await client.get(f"{base}/openapi.json")).json()
            except httpx.HTTPError:
                continue
        return JSONResponse(merge_openapi(docs))

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        report: dict[str, Any] = {}
        for name, base in upstreams.items():
            try:
                report[name] = (await client.get(f"{base}/health/ready")).json()
            except httpx.HTTPError as exc:
                report[name] = {"error": type(exc).__name__}
        return JSONResponse(report)


def _proxy_route(app: FastAPI, client: httpx.AsyncClient, upstreams: Mapping[str, str]) -> None:
    """Every other path, forwarded as it came (``ROUTES`` names the service) and its
    answer streamed back; 404 for a path no service serves, 502 when the service does
    not answer."""

    @app.api_route(
        "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    async def proxy(request: Request, path: str) -> Any:
        service = upstream_for("/" + path)
        if service is None:
            return JSONResponse({"detail": f"no service serves /{path}"}, status_code=404)
        # the path as it came, checked by PathGuard: httpx would resolve "..", not forward it
        target = _raw_path(request.scope)
        if query := request.scope.get("query_string", b""):
            target += b"?" + query
        url = httpx.URL(upstreams[service]).copy_with(raw_path=target)
        body = await request.body()  # BodySizeLimit stops it past max_body_bytes
        try:
            upstream = await client.send(
                client.build_request(
                    request.method, url, headers=forwarded_headers(request), content=body
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
