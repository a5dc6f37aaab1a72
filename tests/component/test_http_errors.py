"""A request that meets an operational failure is told to try again (503), not a 500."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from fastapi import APIRouter
from sqlalchemy import exc as sa_exc

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
