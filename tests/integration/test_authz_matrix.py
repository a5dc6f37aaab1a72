"""Who may call what, on the real stack: every route of the merged OpenAPI document ×
(no key, each role of the dossier's own unit and of another unit, admin) → the status in
``MATRIX``, the one table of expected answers. A route the document has and the table has
not fails the test by its name, so a new route cannot ship without deciding who may call it.

One stack for the module. Unit ``A`` received the dossier, routing sends it to office
``O`` (a rule set up first); the "other" keys are of unit ``B`` (office ``P`` for the
office role). Each route gets one request, the same for every principal, chosen so that
a call that passes the checks changes nothing the next row depends on: actions illegal in
the dossier's state (409), admin writes with a body the route refuses (422), unknown ids
(404). What the status says: 401 no key; 403 the role may not; 404 the dossier is unknown
or not the key's unit's (the same answer); anything else: the key got through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from motcua.gateway import merge_openapi, upstream_for
from motcua.stack import Stack
from services.intake.keys import create_key
from shared.auth import Role
from tests.factories import api_key_header, dossier_body
from tests.integration.conftest import started_stack

A = "000.00.00.H56"  # received the dossier
B = "000.00.01.H22"  # another receiving unit
O = "000.00.02.H56"  # the office routing names  # noqa: E741
P = "000.00.03.H56"  # another office
PHONE = "0912345678"
COUNTER_ID = "authz-1"

ROLES = (Role.KIOSK, Role.COUNTER, Role.OFFICE, Role.IMPORTER, Role.VIEWER)
PRINCIPALS = ("none", *(f"{r.value}/{s}" for r in ROLES for s in ("own", "other")), "admin")


def unit_of(role: Role, side: str) -> str:
    """A key's unit: the dossier's receiving unit or another; offices, its office or another."""
    if role is Role.OFFICE:
        return O if side == "own" else P
    return A if side == "own" else B


Expect = int | tuple[int, int]
"""A role's status for its own unit's dossier and another's (one int: the same)."""


def row(
    none: int,
    admin: int,
    *,
    kiosk: Expect,
    counter: Expect,
    office: Expect,
    importer: Expect,
    viewer: Expect,
) -> dict[str, int]:
    """Expected status per principal."""
    out = {"none": none, "admin": admin}
    for role, expect in (
        ("kiosk", kiosk),
        ("counter", counter),
        ("office", office),
        ("importer", importer),
        ("viewer", viewer),
    ):
        own, other = expect if isinstance(expect, tuple) else (expect, expect)
        out[f"{role}/own"], out[f"{role}/other"] = own, other
    return out


def everyone(status: int) -> dict[str, int]:
    """A public route: the same answer whoever asks."""
    return dict.fromkeys(PRINCIPALS, status)


def key_only(status: int) -> dict[str, int]:
    """Any live key; 401 without."""
    return {**dict.fromkeys(PRINCIPALS, status), "none": 401}


def admin_only(status: int) -> dict[str, int]:
    """Admin keys only: 403 for every other role."""
    return row(401, status, kiosk=403, counter=403, office=403, importer=403, viewer=403)


# Reads of a dossier: any reading role of a unit with a part in it; kiosk never.
DOSSIER_READ = row(401, 200, kiosk=403, counter=(200, 404), office=(200, 404),
                   importer=(200, 404), viewer=(200, 404))  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One route's request (``{code}``, ``{ticket}``… filled in) and its expected statuses."""

    expect: dict[str, int]
    json: Any = None
    params: dict[str, str] = field(default_factory=dict)
    path: dict[str, str] = field(default_factory=dict)
    stream: bool = False


MATRIX: dict[str, Case] = {
    # --- intake: dossiers
    "POST /api/v1/dossiers": Case(
        row(401, 201, kiosk=403, counter=(201, 403), office=403, importer=(201, 403), viewer=403),
        json=dossier_body(receiving_unit=A),
    ),
    "POST /api/v1/dossiers/{code}/actions": Case(  # legal only after a supplement request
        row(
            401,
            409,
            kiosk=403,
            counter=(409, 404),
            office=(409, 404),
            importer=(409, 404),
            viewer=403,
        ),
        json={"action": "submit_supplement"},
    ),
    "GET /api/v1/dossiers": Case(  # filtered to the key's unit
        row(401, 200, kiosk=403, counter=200, office=200, importer=200, viewer=200)
    ),
    "GET /api/v1/dossiers/{code}": Case(DOSSIER_READ),
    "GET /api/v1/dossiers/{code}/slip": Case(  # name and phone: its receiving unit only
        row(401, 200, kiosk=403, counter=(200, 404), office=403, importer=(200, 404), viewer=403)
    ),
    "POST /api/v1/public/lookup": Case(everyone(422), json={"code": "x", "phone": PHONE}),
    "GET /api/v1/public/dossiers/{code}": Case(everyone(200)),
    "GET /api/v1/public/time": Case(everyone(200)),
    # --- intake: satisfaction ratings (the dossier has no result yet: 409 where let through)
    "POST /api/v1/ratings": Case(
        row(401, 409, kiosk=(409, 404), counter=403, office=403, importer=403, viewer=403),
        json={"code": "{code}", "level": "hai_long"},
    ),
    "POST /api/v1/public/ratings": Case(
        everyone(422), json={"code": "x", "phone": PHONE, "level": "hai_long"}
    ),
    # --- intake: calendar
    "GET /api/v1/calendar": Case(key_only(200)),
    "PUT /api/v1/calendar/days/{day}": Case(admin_only(422), json={}, path={"day": "not-a-day"}),
    "DELETE /api/v1/calendar/days/{day}": Case(admin_only(422), path={"day": "not-a-day"}),
    # --- intake: queue (tickets are not dossiers: a foreign unit's is 403)
    "POST /api/v1/queue/tickets": Case(
        row(401, 201, kiosk=(201, 403), counter=403, office=403, importer=403, viewer=403),
        json={"field": "Hộ tịch", "unit": A},
    ),
    "GET /api/v1/queue/tickets/{ticket_id}": Case(
        row(
            401,
            200,
            kiosk=(200, 403),
            counter=(200, 403),
            office=403,
            importer=(200, 403),
            viewer=(200, 403),
        )
    ),
    "POST /api/v1/queue/tickets/{ticket_id}/dossier": Case(
        row(401, 409, kiosk=403, counter=(409, 403), office=403, importer=403, viewer=403),
        json={"code": "{code}"},
    ),
    "GET /api/v1/queue/counters": Case(
        row(
            401,
            200,
            kiosk=(200, 403),
            counter=(200, 403),
            office=403,
            importer=(200, 403),
            viewer=(200, 403),
        ),
        params={"unit": A},
    ),
    "PUT /api/v1/queue/counters/{counter_id}": Case(admin_only(422), json={}),
    "POST /api/v1/queue/counters/{counter_id}/call-next": Case(  # admin after the counter: 409
        row(401, 409, kiosk=403, counter=(200, 403), office=403, importer=403, viewer=403)
    ),
    "POST /api/v1/queue/counters/{counter_id}/serve": Case(  # admin after the counter: 409
        row(401, 409, kiosk=403, counter=(200, 403), office=403, importer=403, viewer=403)
    ),
    "POST /api/v1/queue/counters/{counter_id}/done": Case(  # admin after the counter: 409
        row(401, 409, kiosk=403, counter=(200, 403), office=403, importer=403, viewer=403)
    ),
    "POST /api/v1/queue/counters/{counter_id}/no-show": Case(
        row(401, 409, kiosk=403, counter=(409, 403), office=403, importer=403, viewer=403)
    ),
    "POST /api/v1/queue/counters/{counter_id}/pause": Case(
        row(401, 409, kiosk=403, counter=(200, 403), office=403, importer=403, viewer=403),
        json={"reason": "họp"},
    ),
    "POST /api/v1/queue/counters/{counter_id}/resume": Case(
        row(401, 409, kiosk=403, counter=(200, 403), office=403, importer=403, viewer=403)
    ),
    "GET /api/v1/queue/board": Case(
        row(401, 200, kiosk=(200, 403), counter=403, office=403, importer=403, viewer=(200, 403)),
        params={"unit": A},
        stream=True,
    ),
    # --- routing: catalogue (published) and rules
    "GET /api/v1/catalogue": Case(everyone(200)),
    "POST /api/v1/catalogue": Case(admin_only(422), json={}),
    "DELETE /api/v1/catalogue/{code}": Case(admin_only(404), path={"code": "9.999999"}),
    "GET /api/v1/catalogue/{code}": Case(everyone(200), path={"code": "2.000635"}),
    "GET /api/v1/catalogue/history": Case(key_only(200)),
    "GET /api/v1/rules": Case(key_only(200)),
    "POST /api/v1/rules": Case(admin_only(422), json={}),
    "DELETE /api/v1/rules/{priority}": Case(admin_only(404), path={"priority": "999"}),
    "POST /api/v1/rules/test": Case(
        key_only(200), json={"procedure": "2.000635", "receiving_unit": A}
    ),
    "GET /api/v1/rules/history": Case(key_only(200)),
    "POST /api/v1/rules/reroute": Case(admin_only(200)),
    "GET /api/v1/rules/manual-queue": Case(  # filtered to the key's unit
        row(401, 200, kiosk=403, counter=200, office=200, importer=200, viewer=200)
    ),
    "POST /api/v1/rules/manual-queue/{code}/assign": Case(admin_only(422), json={}),
    "GET /api/v1/rules/sheet/{code}": Case(DOSSIER_READ),
    # --- sla
    "GET /api/v1/sla/{code}": Case(DOSSIER_READ),
    # --- notify (knows the receiving unit of a dossier, no office)
    "GET /api/v1/notifications": Case(
        row(401, 200, kiosk=403, counter=(200, 404), office=403, importer=403, viewer=(200, 404)),
        params={"dossier": "{code}"},
    ),
    "POST /api/v1/notifications/delivery-reports": Case(  # the gateway's token, not a key
        everyone(503), json={"reference": "nope", "status": "delivered"}
    ),
    "POST /api/v1/notifications/opt-outs": Case(
        row(401, 200, kiosk=403, counter=(200, 404), office=403, importer=403, viewer=403),
        json={"dossier": "{code}"},
    ),
    "POST /api/v1/notifications/opt-outs/undo": Case(
        row(401, 200, kiosk=403, counter=(200, 404), office=403, importer=403, viewer=403),
        json={"dossier": "{code}"},
    ),
    "GET /api/v1/notifications/toggles": Case(key_only(200)),
    "PUT /api/v1/notifications/toggles": Case(admin_only(422), json={}),
    "GET /api/v1/notifications/heads": Case(admin_only(200)),
    "PUT /api/v1/notifications/heads": Case(admin_only(422), json={}),
    "DELETE /api/v1/notifications/heads": Case(admin_only(422)),
    "POST /api/v1/notifications/digests": Case(admin_only(422), json={}),
    "GET /api/v1/reports/sla": Case(
        everyone(200), params={"from": "2026-12-01", "to": "2026-12-31"}
    ),
    "POST /api/v1/reports/recompute": Case(admin_only(200)),
    "GET /api/v1/reports/dashboard": Case(everyone(200)),
    # --- portal: the national portal sync, admin only
    "GET /api/v1/portal/summary": Case(everyone(200)),  # counts per unit, for the dashboard
    "GET /api/v1/portal/status": Case(admin_only(200)),
    "GET /api/v1/portal/dossiers/{code}": Case(  # a code the ledger never held
        admin_only(404), path={"code": "000.00.00.H56-200101-9999"}
    ),
    "POST /api/v1/portal/resync": Case(admin_only(422), json={}),
}


@dataclass
class World:
    """The running stack, its keys by principal, and the ids the requests use."""

    stack: Stack
    keys: dict[str, str | None]
    ids: dict[str, str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One SQLite stack for the whole module."""
    with started_stack(tmp_path_factory.mktemp("authz") / "var", {}) as running:
        yield running


def base(stack: Stack, path: str) -> str:
    """The service that serves ``path``, as the gateway routes it."""
    service = upstream_for(path)
    assert service is not None, path
    return stack.services[service].url  # type: ignore[index]


async def until(what: str, check: Any, within: float = 60.0) -> None:
    """Poll the coroutine function ``check`` until it returns true."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def world_of(stack: Stack) -> World:
    """Keys of every role in both units, a routing rule to ``O``, a queue counter, a
    waiting ticket and a dossier received by ``A`` that every service has heard of."""
    assert stack.admin_key is not None
    settings = stack.settings()
    keys: dict[str, str | None] = {"none": None, "admin": stack.admin_key}
    for role in ROLES:
        for side in ("own", "other"):
            keys[f"{role.value}/{side}"] = await create_key(settings, role, unit_of(role, side))
    await asyncio.gather(
        *(asyncio.to_thread(stack.wait_for_key, k, 60.0) for k in keys.values() if k)
    )

    def url(path: str) -> str:
        return base(stack, path) + path

    admin = api_key_header(stack.admin_key)
    async with httpx.AsyncClient(timeout=10) as client:
        rule = await client.post(
            url("/api/v1/rules"), json={"rule": {"priority": 5, "office": O}}, headers=admin
        )
        assert rule.is_success, rule.text
        counter = {"unit": A, "group": "A", "fields": ["Hộ tịch"]}
        put = await client.put(
            url(f"/api/v1/queue/counters/{COUNTER_ID}"), json=counter, headers=admin
        )
        assert put.is_success, put.text
        kiosk = api_key_header(keys["kiosk/own"] or "")
        ticket = await client.post(
            url("/api/v1/queue/tickets"), json={"field": "Hộ tịch"}, headers=kiosk
        )
        assert ticket.status_code == 201, ticket.text
        dossier = await client.post(url("/api/v1/dossiers"), json=dossier_body(), headers=admin)
        assert dossier.status_code == 201, dossier.text
        code = dossier.json()["code"]
        office = api_key_header(keys["office/own"] or "")
        counter_key = api_key_header(keys["counter/own"] or "")
        ready = [  # the dossier reached every service, routed to O
            (f"/api/v1/dossiers/{code}", {}, office),
            (f"/api/v1/rules/sheet/{code}", {}, office),
            (f"/api/v1/sla/{code}", {}, office),
            ("/api/v1/notifications", {"dossier": code}, counter_key),
        ]
        for path, params, headers in ready:

            async def heard(
                path: str = path, params: dict[str, str] = params, headers: Any = headers
            ) -> bool:
                answer = await client.get(url(path), params=params, headers=headers)
                return answer.status_code == 200

            await until(path, heard)
    return World(
        stack, keys, {"code": code, "ticket_id": ticket.json()["id"], "counter_id": COUNTER_ID}
    )


def filled(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with ``{code}``-like placeholders replaced, at any depth."""
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, dict):
        return {k: filled(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, ids) for v in value]
    return value


async def status_of(client: httpx.AsyncClient, world: World, route: str, who: str) -> int:
    """The status one principal gets for one route."""
    method, path = route.split(" ", 1)
    case = MATRIX[route]
    concrete = path.format(**{**world.ids, **case.path})
    key = world.keys[who]
    headers = api_key_header(key) if key else {}
    request: dict[str, Any] = {"headers": headers, "params": filled(case.params, world.ids)}
    if case.json is not None:
        request["json"] = filled(case.json, world.ids)
    target = base(world.stack, concrete) + concrete
    if case.stream:
        headers["Accept"] = "text/event-stream"
        async with client.stream(method, target, **request) as answer:
            return answer.status_code
    return (await client.request(method, target, **request)).status_code


async def test_every_route_answers_every_principal_as_the_table_says(stack: Stack) -> None:
    world = await world_of(stack)
    async with httpx.AsyncClient(timeout=10) as client:
        documents: dict[str, dict[str, Any]] = {
            name: (await client.get(f"{service.url}/openapi.json")).json()
            for name, service in stack.services.items()
        }
        merged = merge_openapi(documents)
        routes = [
            f"{method.upper()} {path}"
            for path, operations in merged["paths"].items()
            for method in operations
        ]
        missing = [route for route in routes if route not in MATRIX]
        assert not missing, f"routes without a row in MATRIX: {missing}"
        stale = sorted(set(MATRIX) - set(routes))
        assert not stale, f"rows of MATRIX for routes the document lacks: {stale}"

        wrong: list[str] = []
        for route in routes:
            case = MATRIX[route]
            for who in PRINCIPALS:
                got = await status_of(client, world, route, who)
                if got != case.expect[who]:
                    wrong.append(f"{route} as {who}: {got}, expected {case.expect[who]}")
    assert not wrong, "\n".join(wrong)
    assert len(routes) * len(PRINCIPALS) >= 500  # the matrix's size, for the record


def test_the_table_names_every_principal() -> None:
    for route, case in MATRIX.items():
        assert set(case.expect) == set(PRINCIPALS), route
