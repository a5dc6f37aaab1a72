"""API keys over the real broker: a key made with ``motcua keys`` while the stack runs
reaches routing, sla and notify through the keys topic, and so does its revocation."""

from __future__ import annotations

import asyncio
import time

import httpx

from motcua.stack import KEY_PROBES, Stack
from services.intake.keys import create_key, revoke_key
from shared.auth import Role, parse_key
from tests.factories import api_key_header

UNIT = "000.00.00.H56"


async def refused_everywhere(stack: Stack, token: str, within: float = 30.0) -> set[str]:
    """Wait until every service answers its probe with 401 for ``token``; the services
    that still accept it at the deadline."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=5, headers=api_key_header(token)) as client:
        while True:
            accepting = set()
            for name, path in KEY_PROBES.items():
                answer = await client.get(f"{stack.services[name].url}{path}")
                if answer.status_code != 401:
                    accepting.add(name)
            if not accepting or time.monotonic() > deadline:
                return accepting
            await asyncio.sleep(0.3)


async def test_a_key_and_its_revocation_reach_every_service(stack: Stack) -> None:
    token = await create_key(stack.settings(), Role.OFFICE, UNIT, "phòng tư pháp")
    parsed = parse_key(token)
    assert parsed is not None
    await asyncio.to_thread(stack.wait_for_key, token, 30.0)

    routing = stack.services["routing"].url
    async with httpx.AsyncClient(timeout=10, headers=api_key_header(token)) as client:
        assert (await client.get(f"{routing}/api/v1/rules")).status_code == 200
        write = await client.post(
            f"{routing}/api/v1/rules", json={"rule": {"priority": 5, "office": UNIT}}
        )
        assert write.status_code == 403, write.text
        assert (await client.get(f"{routing}/api/v1/rules")).json()["rules"] == []

    await revoke_key(stack.settings(), parsed[0])
    assert await refused_everywhere(stack, token) == set()
    assert stack.admin_key is not None
    assert await refused_everywhere(stack, stack.admin_key, within=0) == set(KEY_PROBES)
