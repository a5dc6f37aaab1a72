"""A request that meets an operational failure is told to try again (503), not a 500; a
refusal (``shared.errors``) is answered with its own status, headers and body by every
service's app, wherever in the route (or its dependencies) it is raised."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from fastapi import APIRouter, Depends
from sqlalchemy import exc as sa_exc

from shared.errors import Conflict, Forbidden, InvalidFields, NotFound, TooMany
from shared.service import ServiceRuntime, create_http_app
from shared.settings import Settings


def app_raising(tmp_path: Path) -> httpx.AsyncClient:
    router = APIRouter()

    @router.post("/locked")
    async def locked() -> None:
        raise sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("locked"))

    @router.post("/bug")
    async def bug() -> None:
        msg = "a bug"
        raise ValueError(msg)

    @router.get("/missing")
    async def missing() -> None:
        raise NotFound("no dossier X")

    async def refuse() -> None:
        raise Forbidden("role viewer may not do this")

    @router.get("/forbidden", dependencies=[Depends(refuse)])
    async def forbidden() -> None:
        return None

    @router.post("/fields")
    async def fields() -> None:
        raise InvalidFields([("reason", "needs a reason"), ("at", "is in the future")])

    @router.post("/busy")
    async def busy() -> None:
        raise TooMany("too many look-ups; try again later", retry_after=0.2)

    class Stuck(Conflict):
        def body(self) -> dict[str, object]:
            return {**super().body(), "state": "paused"}

    @router.post("/stuck")
    async def stuck() -> None:
        msg = "the counter is already paused"
        raise Stuck(msg)

    runtime = ServiceRuntime("intake", Settings(var_dir=tmp_path), tables=[], publishes=[])
    app = create_http_app(runtime, title="t", description="t", routers=[router])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_a_database_away_answers_503_with_retry_after(tmp_path: Path) -> None:
    async with app_raising(tmp_path) as client:
        answer = await client.post("/locked")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "2"
    assert "try again" in answer.json()["detail"]


async def test_a_bug_is_still_a_500_and_says_nothing_more(tmp_path: Path) -> None:
    async with app_raising(tmp_path) as client:
        answer = await client.post("/bug")
    assert answer.status_code == 500
    assert answer.json() == {"detail": "intake: internal error"}


async def test_refusals_answer_their_status_headers_and_body(tmp_path: Path) -> None:
    async with app_raising(tmp_path) as client:
        missing = await client.get("/missing")
        forbidden = await client.get("/forbidden")
        fields = await client.post("/fields")
        busy = await client.post("/busy")
        stuck = await client.post("/stuck")
    assert (missing.status_code, missing.json()) == (404, {"detail": "no dossier X"})
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "role viewer may not do this"}
    assert fields.status_code == 422
    assert fields.json() == {
        "detail": [
            {"loc": ["body", "reason"], "msg": "needs a reason", "type": "value_error"},
            {"loc": ["body", "at"], "msg": "is in the future", "type": "value_error"},
        ]
    }
    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "1"
    assert stuck.status_code == 409
    assert stuck.json() == {"detail": "the counter is already paused", "state": "paused"}
