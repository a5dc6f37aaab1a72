"""How long a key issued or revoked with ``motcua keys`` takes to reach every service.

Run: ``.venv/bin/python bench/key_propagation.py [ROUNDS]``. Starts the local stack
(broker and the four services, SQLite files, the default relay poll of 0.5 s) in a
fresh directory; each round issues an office key through intake's key commands, times
until routing, sla and notify all accept it (their probe answers without 401), then
revokes it and times until all three refuse it. Prints each round and the median and
maximum; figures go in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from motcua.stack import KEY_PROBES, Stack
from services.intake.keys import create_key, revoke_key
from shared.auth import API_KEY_HEADER, Role, parse_key

UNIT = "000.00.00.H56"
FOLLOWERS = ("routing", "sla", "notify")


async def until(stack: Stack, token: str, *, accepted: bool) -> float:
    """Seconds until every follower accepts (or refuses) ``token``."""
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=5, headers={API_KEY_HEADER: token}) as client:
        while True:
            answers = await asyncio.gather(
                *(client.get(f"{stack.services[n].url}{KEY_PROBES[n]}") for n in FOLLOWERS)
            )
            if all((a.status_code != 401) is accepted for a in answers):
                return time.perf_counter() - started
            await asyncio.sleep(0.01)


async def rounds(stack: Stack, count: int) -> tuple[list[float], list[float]]:
    issued: list[float] = []
    revoked: list[float] = []
    for index in range(count):
        token = await create_key(stack.settings(), Role.OFFICE, UNIT, f"bench {index}")
        issued.append(await until(stack, token, accepted=True))
        parsed = parse_key(token)
        assert parsed is not None
        await revoke_key(stack.settings(), parsed[0])
        revoked.append(await until(stack, token, accepted=False))
        print(f"round {index + 1}: issued {issued[-1]:.2f} s, revoked {revoked[-1]:.2f} s")
    return issued, revoked


def main(count: int) -> None:
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp) / "var") as stack:
        issued, revoked = asyncio.run(rounds(stack, count))
    for what, seconds in (("issued", issued), ("revoked", revoked)):
        print(
            f"{what}: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
            f"over {count} rounds"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
