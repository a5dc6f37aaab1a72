"""The operator's key commands (``motcua keys``, ``motcua up``), each over intake's
database as :func:`services.intake.process.standalone` gives it: brought to the newest
migration (or refused, per the settings), used, disposed of.

The use cases and their invariants are in :mod:`services.intake.keyring`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from services.intake import process
from services.intake.keyring import KeyCommandError, KeyInfo, Keyring, announce_keys
from shared.auth import ALL_UNITS, Role
from shared.clock import Clock, utc_now
from shared.settings import Settings

__all__ = [
    "KeyCommandError",
    "KeyInfo",
    "announce_keys",
    "create_key",
    "ensure_dev_admin_key_async",
    "ensure_dev_key_async",
    "is_live",
    "list_keys",
    "revoke_key",
]


@asynccontextmanager
async def _keyring(settings: Settings, clock: Clock = utc_now) -> AsyncIterator[Keyring]:
    """Intake's keys over its database at the newest migration, disposed of after."""
    keyring = process.standalone(settings, clock=clock)
    try:
        await process.prepare(keyring, settings)
        yield keyring
    finally:
        await keyring.db.dispose()


async def create_key(
    settings: Settings, role: Role, unit: str, label: str = "", *, clock: Clock = utc_now
) -> str:
    """Store a new key and return it (the only time it is shown)."""
    async with _keyring(settings, clock) as keyring:
        return await keyring.create(role, unit, label)


async def list_keys(settings: Settings) -> list[KeyInfo]:
    """Every key, oldest first."""
    async with _keyring(settings) as keyring:
        return await keyring.list()


async def revoke_key(settings: Settings, key_id: str, *, clock: Clock = utc_now) -> None:
    """Revoke a key at once; ``KeyCommandError`` if there is no such key. Revoking twice is a
    no-op that keeps the first revocation time."""
    async with _keyring(settings, clock) as keyring:
        await keyring.revoke(key_id)


async def is_live(settings: Settings, token: str) -> bool:
    """Whether ``token`` is a stored, unrevoked key."""
    async with _keyring(settings) as keyring:
        return await keyring.is_live(token)


async def ensure_dev_key_async(settings: Settings, role: Role, unit: str) -> str:
    """A development key of ``role`` for ``unit`` in ``<var_dir>/dev-<role>.key`` (mode 600).

    Reuses the key in the file while it is live in the database; otherwise creates one
    and (re)writes the file, readable by its owner only.
    """
    path = Path(settings.var_dir) / f"dev-{role.value}.key"
    if path.exists():
        token = path.read_text("utf-8").strip()
        if await is_live(settings, token):
            path.chmod(0o600)
            return token
    token = await create_key(settings, role, unit, f"development {role.value} (motcua up)")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)
    return token


async def ensure_dev_admin_key_async(settings: Settings) -> str:
    """The development admin key (every unit) in ``<var_dir>/dev-admin.key`` (mode 600)."""
    return await ensure_dev_key_async(settings, Role.ADMIN, ALL_UNITS)
