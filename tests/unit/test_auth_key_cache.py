"""The Authenticator's cache of verified keys: a revocation takes effect within the cache's
time (read on the injected monotonic clock), unknown keys are never kept, and without a
cache every request reads the key."""

from __future__ import annotations

import dataclasses

from fastapi import HTTPException

from shared.auth import Authenticator, Role, StoredKey, issue_key


class Keys:
    """A key table the test edits, counting the look-ups."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredKey] = {}
        self.lookups = 0

    async def __call__(self, key_id: str) -> StoredKey | None:
        self.lookups += 1
        return self.rows.get(key_id)

    def add(self) -> str:
        issued = issue_key()
        self.rows[issued.key_id] = StoredKey(
            issued.key_id, issued.secret_hash, Role.COUNTER, "000.00.00.H56", revoked=False
        )
        return issued.token

    def revoke(self, token: str) -> None:
        key_id = token.split("_")[1]
        self.rows[key_id] = dataclasses.replace(self.rows[key_id], revoked=True)


class Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def refused(auth: Authenticator, token: str) -> bool:
    """Whether ``auth`` answers 401 to ``token``."""
    try:
        await auth.authenticate(token)
    except HTTPException as exc:
        return exc.status_code == 401
    return False


async def test_a_revoked_key_is_refused_within_the_cache_time() -> None:
    keys, clock = Keys(), Monotonic()
    auth = Authenticator(keys, cache_seconds=1.0, clock=clock)
    token = keys.add()
    assert not await refused(auth, token)
    keys.revoke(token)
    clock.now += 0.5
    assert not await refused(auth, token)  # still the kept copy: no read for a second
    assert keys.lookups == 1
    clock.now += 0.5
    assert await refused(auth, token)  # 1 s after it was read: read again, revoked
    assert keys.lookups == 2


async def test_the_cache_saves_the_reads_and_still_checks_the_secret() -> None:
    keys, clock = Keys(), Monotonic()
    auth = Authenticator(keys, cache_seconds=1.0, clock=clock)
    token = keys.add()
    for _ in range(50):
        assert not await refused(auth, token)
    assert keys.lookups == 1
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert await refused(auth, forged)  # same key id, wrong secret: cached or not, 401


async def test_an_unknown_key_is_not_kept_so_a_new_key_works_at_once() -> None:
    keys, clock = Keys(), Monotonic()
    auth = Authenticator(keys, cache_seconds=1.0, clock=clock)
    issued = issue_key()
    assert await refused(auth, issued.token)
    keys.rows[issued.key_id] = StoredKey(
        issued.key_id, issued.secret_hash, Role.ADMIN, "*", revoked=False
    )
    assert not await refused(auth, issued.token)  # same instant


async def test_without_a_cache_a_revocation_is_refused_at_once() -> None:
    keys, clock = Keys(), Monotonic()
    auth = Authenticator(keys, clock=clock)
    token = keys.add()
    assert not await refused(auth, token)
    keys.revoke(token)
    assert await refused(auth, token)
    assert keys.lookups == 2
