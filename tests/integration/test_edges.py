"""The edges on the real stack: the entry point (served as ``motcua up`` serves it) in
front of the four service processes, which believe ``X-Forwarded-For`` from it only.

Clients connect from addresses of their own on loopback (127.0.0.2, 127.0.0.3, …): a
real other address is a new client to the look-up's limits, a forged header is not.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from motcua.gateway import create_gateway, server_config
from motcua.stack import Stack
from shared.localbroker import free_port
from tests.factories import api_key_header, dossier_body
from tests.integration.conftest import started_stack

pytestmark = pytest.mark.integration

PHONE = "0938271645"
"""The applicant's phone in this module: looked for in every log afterwards."""
BURST = 10
"""Look-ups a client address may make at once (intake's default)."""
FAILURES_PER_CODE = 5
"""Wrong phones a dossier code takes before it answers 429 (intake's default)."""
LOOKUP = "/api/v1/public/lookup"


@dataclass
class Edge:
    stack: Stack
    base: str
    port: int
    addresses: Iterator[str]

    def client(self) -> httpx.AsyncClient:
        """A client on an address of loopback no other client of this module used."""
        transport = httpx.AsyncHTTPTransport(local_address=next(self.addresses))
        return httpx.AsyncClient(base_url=self.base, transport=transport, timeout=30)

    async def dossier(self) -> str:
        """A dossier received at a counter for the applicant with ``PHONE``."""
        assert self.stack.admin_key is not None
        body = dossier_body(applicant={"name": "Nguyễn Văn A", "phone": PHONE})
        async with self.client() as client:
            answer = await client.post(
                "/api/v1/dossiers", json=body, headers=api_key_header(self.stack.admin_key)
            )
        assert answer.status_code == 201, answer.text
        code: str = answer.json()["code"]
        return code


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    # no refill to speak of: a client's BURST look-ups are all it gets in this module
    env = {"MOTCUA_INTAKE_LOOKUP_PER_MINUTE": "0.001"}
    with started_stack(tmp_path_factory.mktemp("edges") / "var", env) as stack:
        port = free_port()
        gateway = create_gateway(
            {name: svc.url for name, svc in stack.services.items()}, stack.settings()
        )
        server = uvicorn.Server(server_config(gateway, host="127.0.0.1", port=port))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the entry point did not start"
            time.sleep(0.05)
        addresses = (f"127.0.0.{n}" for n in range(2, 255))
        try:
            yield Edge(stack, f"http://127.0.0.1:{port}", port, addresses)
        finally:
            server.should_exit = True
            thread.join(15)


async def test_the_look_up_answers_the_right_phone_only(edge: Edge) -> None:
    code = await edge.dossier()
    async with edge.client() as client:
        found = await client.post(LOOKUP, json={"code": code, "phone": PHONE})
        assert found.status_code == 200, found.text
        assert found.json()["code"] == code
        assert found.json()["status"] == "received"
        assert set(found.json()) == {
            "code",
            "status",
            "national_status",
            "due_at",
            "status_text",
            "due_text",
        }
        other = await client.post(LOOKUP, json={"code": code, "phone": "+84" + PHONE[1:]})
        assert other.status_code == 200  # the same number written the other way
        wrong = await client.post(LOOKUP, json={"code": code, "phone": "0900000000"})
        assert wrong.status_code == 404
        page = await client.get(f"/api/v1/public/dossiers/{code}", params={"phone": PHONE})
        assert page.status_code == 200  # the QR code's page: the phone in a URL is not used
        assert code in page.text
        assert PHONE not in page.text


async def test_a_forged_forwarded_for_does_not_buy_a_new_bucket(edge: Edge) -> None:
    code = await edge.dossier()
    body = {"code": code, "phone": PHONE}  # the right phone: only the client's limit counts
    async with edge.client() as client:
        answers = [
            (
                await client.post(
                    LOOKUP,
                    json=body,
                    headers={
                        "X-Forwarded-For": f"203.0.113.{n}",
                        "Forwarded": f"for=198.51.100.{n}",
                        "X-Real-IP": f"192.0.2.{n}",
                    },
                )
            ).status_code
            for n in range(BURST + 5)
        ]
    assert answers == [200] * BURST + [429] * 5
    async with edge.client() as elsewhere:  # a client that really is another address
        assert (await elsewhere.post(LOOKUP, json=body)).status_code == 200


async def test_wrong_phones_lock_the_code_whoever_guesses(edge: Edge) -> None:
    code, untouched = await edge.dossier(), await edge.dossier()
    guesses = []
    for n in range(FAILURES_PER_CODE + 1):
        async with edge.client() as guesser:  # each guess from an address of its own
            guess = {"code": code, "phone": f"09000000{n:02d}"}
            guesses.append((await guesser.post(LOOKUP, json=guess)).status_code)
    assert guesses == [404] * FAILURES_PER_CODE + [429]
    async with edge.client() as citizen:
        locked = await citizen.post(LOOKUP, json={"code": code, "phone": PHONE})
        assert locked.status_code == 429  # the applicant too, for a while
        assert int(locked.headers["Retry-After"]) > 60
        other = await citizen.post(LOOKUP, json={"code": untouched, "phone": PHONE})
        assert other.status_code == 200


def raw_status(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


async def test_the_edges_hold_in_front_of_the_real_services(edge: Edge) -> None:
    sla = edge.stack.services["sla"]
    async with httpx.AsyncClient() as direct:  # straight to a service, not through the edge
        assert (await direct.get(f"{sla.url}/metrics")).status_code == 200  # it is there
    for path in (
        b"/api/v1/sla/../../../metrics",
        b"/api/v1/sla/%2e%2e/%2e%2e/%2e%2e/metrics",
        b"/api/v1/sla/%252e%252e/%252e%252e/%252e%252e/metrics",
    ):
        request = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path
        assert raw_status(edge.port, request) == 400, path
    oversize = b"{" + b" " * edge.stack.settings().max_body_bytes + b"}"
    headers = {"content-type": "application/json"}
    async with edge.client() as client:
        assert (await client.post(LOOKUP, content=oversize, headers=headers)).status_code == 413
    async with httpx.AsyncClient() as direct:
        # and each service refuses it on its own, for whoever reaches it without the gateway
        intake = edge.stack.services["intake"].url
        answer = await direct.post(f"{intake}{LOOKUP}", content=oversize, headers=headers)
        assert answer.status_code == 413


async def test_the_phone_is_in_no_log(edge: Edge) -> None:
    code = await edge.dossier()
    async with edge.client() as client:
        found = await client.post(LOOKUP, json={"code": code, "phone": PHONE})
        assert found.status_code == 200
        page = await client.get(f"/api/v1/public/dossiers/{code}", params={"phone": PHONE})
        assert page.status_code == 200
    logs = sorted((edge.stack.var_dir / "logs").glob("*"))
    assert logs, "no log files"
    for log in logs:
        text = await asyncio.to_thread(log.read_bytes)
        assert PHONE[1:].encode() not in text, f"the phone is in {log.name}"
