"""The national portal sync on the real stack: intake → the topics → the portal service →
a stand-in portal over real HTTP on loopback (``tests/portal_standin.py``).

One stack for the module (SQLite), its portal service sending to the stand-in. The tests
run in order: a dossier's whole life arrives with the right fields and dates, states
2 → 5 → 4 → 9 → 10 each once; a portal down for a while drains in order when back; an
expired session costs one log-in and the call then succeeds; a dossier the portal
refuses (4xx) goes to the failed list without holding up the others.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from motcua.stack import Stack
from services.portal.domain import portal_time
from tests.factories import api_key_header, dossier_body
from tests.integration.conftest import started_stack
from tests.portal_standin import DSTCODE, PortalStandIn

pytestmark = pytest.mark.integration

APPLICANT = {"name": "Trần Thị Bình", "phone": "0912000111", "email": "binh.tt@example.vn"}
LIFE = ("request_supplement", "submit_supplement", "resolve", "return_result")


@pytest.fixture(scope="module")
def standin() -> Iterator[PortalStandIn]:
    with PortalStandIn() as portal:
        yield portal


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, standin: PortalStandIn) -> Iterator[Stack]:
    with started_stack(tmp_path_factory.mktemp("portal") / "var", standin.env()) as running:
        yield running


@pytest.fixture
async def intake(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    assert stack.admin_key is not None
    async with httpx.AsyncClient(
        base_url=stack.services["intake"].url, timeout=30, headers=api_key_header(stack.admin_key)
    ) as client:
        yield client


async def receive(intake: httpx.AsyncClient, **overrides: Any) -> str:
    answer = await intake.post("/api/v1/dossiers", json=dossier_body(**overrides))
    assert answer.status_code == 201, answer.text
    code: str = answer.json()["code"]
    return code


async def act(intake: httpx.AsyncClient, code: str, action: str) -> None:
    answer = await intake.post(f"/api/v1/dossiers/{code}/actions", json={"action": action})
    assert answer.status_code in (200, 201), answer.text


async def until(check: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        await asyncio.sleep(0.2)


def portal_cli(stack: Stack, *args: str) -> str:
    """``motcua portal ...`` as an operator runs it beside the stack."""
    env = {**os.environ, **stack.env, "MOTCUA_VAR_DIR": str(stack.var_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "motcua.cli", "portal", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def when(value: str) -> str:
    """An API time as the portal gets it."""
    return str(portal_time(datetime.fromisoformat(value)))


async def test_a_dossier_life_reaches_the_portal_in_order_once(
    stack: Stack, standin: PortalStandIn, intake: httpx.AsyncClient
) -> None:
    ready = await intake.get(f"{stack.services['portal'].url}/health/ready")
    assert ready.status_code == 200
    assert ready.json()["portal"] == "configured"
    code = await receive(intake, applicant=APPLICANT)
    await until(lambda: standin.states(code) == ["2"], "the received dossier at the portal")
    for action in LIFE:
        await act(intake, code, action)
    await until(lambda: "10" in standin.states(code), "the returned dossier at the portal")
    await asyncio.sleep(1.5)  # a repeat would come now

    assert standin.states(code) == ["2", "5", "4", "9", "10"]
    records = standin.accepted("DongBoHoSoMC", code)
    assert [c.body["isUpdating"] for c in records] == ["False", "True", "True", "True", "True"]
    assert all(c.dstcode == DSTCODE and c.body["madonvi"] == DSTCODE for c in records)
    detail = (await intake.get(f"/api/v1/dossiers/{code}")).json()
    history = {h["action"]: h["at"] for h in detail["history"]}
    first, supplied, resolved, returned = (records[i].body["data"][0] for i in (0, 2, 3, 4))
    assert first == {
        "MaHoSo": code,
        "MaTTHC": "2.000635",
        "TenTTHC": first["TenTTHC"],
        "TenLinhVuc": first["TenLinhVuc"],
        "KenhThucHien": "1",
        "ChuHoSo": APPLICANT["name"],
        "LoaiDoiTuong": "1",
        "SoDienThoai": APPLICANT["phone"],
        "Email": APPLICANT["email"],
        "TrichYeuHoSo": first["TenTTHC"],
        "NgayTiepNhan": when(detail["received_at"]),
        "NgayHenTra": when(detail["due_at"]),
        "TrangThaiHoSo": "2",
        "DonViXuLy": first["DonViXuLy"],
        "HinhThuc": "0",
        "DanhSachLePhi": first["DanhSachLePhi"],
    }
    assert first["TenTTHC"]
    assert first["TenLinhVuc"]
    assert first["NgayTiepNhan"].startswith("20261202")  # the stack's clock, Vietnam time
    assert supplied["DanhSachHoSoBoSung"] == [
        {
            "NgayBoSung": when(history["request_supplement"]),
            "NgayTiepNhanBoSung": when(history["submit_supplement"]),
        }
    ]
    assert "NgayKetThucXuLy" not in supplied
    assert "NgayTra" not in supplied
    assert resolved["NgayKetThucXuLy"] == when(history["resolve"])
    assert "NgayTra" not in resolved
    assert returned["NgayTra"] == when(history["return_result"])
    progress = [c.body["data"][0] for c in standin.accepted("CapNhatTienDoHoSoMC", code)]
    assert [p["TrangThai"] for p in progress] == ["5", "4", "9", "10"]
    assert [p["ThoiDiemXuLy"] for p in progress] == [when(history[a]) for a in LIFE]
    assert all(p["NgayBatDau"] == when(detail["received_at"]) for p in progress)
    status = portal_cli(stack, "status")
    assert "synced 1  pending 0  failed 0" in status, status
    sys.stdout.write(f"\n$ motcua portal status\n{status}")


async def test_a_portal_down_for_a_while_gets_everything_in_order_when_back(
    stack: Stack, standin: PortalStandIn, intake: httpx.AsyncClient
) -> None:
    standin.down = True
    try:
        codes = [await receive(intake) for _ in range(4)]
        for code in codes:
            await act(intake, code, "request_supplement")
        await until(lambda: standin.count(503) >= 3, "the sender trying the portal")
        await until(lambda: "pending 4 " in portal_cli(stack, "status"), "4 pending dossiers")
    finally:
        standin.down = False
    drained = lambda: all(standin.states(code) == ["2", "5"] for code in codes)  # noqa: E731
    await until(drained, "every dossier drained")
    await asyncio.sleep(1.5)
    assert all(standin.states(code) == ["2", "5"] for code in codes)
    assert "pending 0" in portal_cli(stack, "status")


@pytest.mark.parametrize("expired", ["SESSION_EXPIRED", "401"])
async def test_an_expired_session_costs_one_login_then_the_call_succeeds(
    stack: Stack, standin: PortalStandIn, intake: httpx.AsyncClient, expired: Any
) -> None:
    code = await receive(intake)
    await until(lambda: standin.states(code) == ["2"], "the received dossier at the portal")
    logins = standin.logins()
    standin.expire_sessions(expired)
    await act(intake, code, "request_supplement")
    await until(lambda: standin.states(code) == ["2", "5"], "the state after the new log-in")
    await asyncio.sleep(1.0)
    assert standin.logins() == logins + 1
    assert standin.states(code) == ["2", "5"]
    assert len(standin.accepted("CapNhatTienDoHoSoMC", code)) == 1


async def test_a_refused_dossier_is_failed_and_does_not_hold_up_the_others(
    stack: Stack, standin: PortalStandIn, intake: httpx.AsyncClient
) -> None:
    admin = api_key_header(stack.admin_key or "")
    portal = stack.services["portal"].url
    refused = await receive(intake)
    standin.rejected.add(refused)
    other = await receive(intake)
    await until(lambda: standin.states(other) == ["2"], "the other dossier at the portal")
    async with httpx.AsyncClient(base_url=portal, timeout=10, headers=admin) as client:

        async def ledger() -> dict[str, Any]:
            found: dict[str, Any] = (await client.get(f"/api/v1/portal/dossiers/{refused}")).json()
            return found

        deadline = time.monotonic() + 30
        while not (await ledger()).get("failed"):
            assert time.monotonic() < deadline, "the refused dossier is not in the failed list"
            await asyncio.sleep(0.2)
        row = await ledger()
        assert row["last_error"] == "HTTP 400, error_code INVALID_MATTHC"
        assert row["created"] is False
        assert (await client.get("/api/v1/portal/status")).json()["failed"] == 1
        standin.rejected.discard(refused)
        again = await client.post("/api/v1/portal/resync", json={"failed": True})
        assert again.json() == {"resynced": 1}
    await until(lambda: standin.states(refused) == ["2"], "the refused dossier after resync")


NEW_PROCEDURE = {
    "code": "1.999002",
    "name": "Thủ tục thêm sau khi khởi động",
    "field": "Hộ tịch",
    "levels": ["xa"],
    "duration": {"value": 2, "unit": "working_days"},
    "online_duration": None,
    "supplement_rule": "pause",
    "fee_vnd": 30000,
    "online_fee_vnd": 15000,
    "steps": [{"office": None, "hours": 16}],
}


async def test_a_procedure_added_through_routing_is_synced_with_its_name_and_fee(
    stack: Stack, standin: PortalStandIn, intake: httpx.AsyncClient
) -> None:
    admin = api_key_header(stack.admin_key or "")
    async with httpx.AsyncClient(
        base_url=stack.services["routing"].url, timeout=30, headers=admin
    ) as routing:
        added = await routing.post("/api/v1/catalogue", params={"by": "ops"}, json=NEW_PROCEDURE)
        assert added.status_code == 201, added.text
    body = dossier_body(procedure_code=NEW_PROCEDURE["code"])
    deadline = time.monotonic() + 30
    answer = await intake.post("/api/v1/dossiers", json=body)
    while answer.status_code == 422 and time.monotonic() < deadline:  # intake's copy lags
        await asyncio.sleep(0.5)
        answer = await intake.post("/api/v1/dossiers", json=body)
    assert answer.status_code == 201, answer.text
    code = answer.json()["code"]
    await until(lambda: standin.states(code) == ["2"], "the new procedure's dossier at the portal")
    record = standin.accepted("DongBoHoSoMC", code)[0].body["data"][0]
    assert record["TenTTHC"] == NEW_PROCEDURE["name"]
    assert [fee["Gia"] for fee in record["DanhSachLePhi"]] == ["30000"]  # at the counter
