"""The API keys in intake's database: issue, list, revoke, check, and announce them.

Only the hash of a key's secret is written; the key itself is shown once, to whoever
created it. Each issue and revocation puts ``api_key.changed``, signed with the keys
signing secret (``shared.signing``), in intake's outbox in the same transaction
(``shared.keys_sync``), so the other services check the same keys and nobody else can
announce one; the relay of the running intake publishes it (a key made while intake is
down is published when it starts). :func:`announce_keys`, run at every start of intake,
also catches up keys made before keys were events, and announces again, signed under the
current secret, every key whose newest announcement is not (made before key events were
signed, or before the secret was rotated), so that an old secret can be retired.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake import store
from shared.auth import ALL_UNITS, Role, hash_secret, issue_key, parse_key
from shared.catalogue import AGENCY_CODE_PATTERN
from shared.clock import Clock, utc_now
from shared.db import Database
from shared.events import ApiKeyChanged, UndecodableEvent, decode
from shared.outbox import enqueue
from shared.signing import KeySigning
from shared.topics import API_KEYS

__all__ = [
    "SOURCE",
    "KeyCommandError",
    "KeyInfo",
    "Keyring",
    "announce",
    "announce_keys",
    "check_unit",
]

_AGENCY_RE = re.compile(AGENCY_CODE_PATTERN)
SOURCE = "intake"
"""The ``source`` of every key event (signed with it)."""


class KeyCommandError(ValueError):
    """A key command with a bad argument; the message names it."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as ``list`` shows it (never the secret nor its hash)."""

    key_id: str
    role: str
    unit: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


async def announce(
    session: AsyncSession, key: store.ApiKey, *, at: datetime, signing: KeySigning
) -> None:
    """Put ``key``'s current state in the outbox, signed, and record it as announced, in
    the caller's transaction. Announcing a state twice is harmless (receivers upsert)."""
    enqueue(
        session,
        signing.sign(
            ApiKeyChanged(
                key_id=key.key_id,
                secret_hash=key.secret_hash,
                role=key.role,
                unit=key.unit,
                revoked_at=key.revoked_at,
            ),
            occurred_at=at,
            source=SOURCE,
        ),
        occurred_at=at,
        source=SOURCE,
        dossier_code=None,
        key=key.key_id,
    )
    await store.mark_announced(session, key)


async def announce_keys(db: Database, signing: KeySigning, *, clock: Clock = utc_now) -> int:
    """Announce every key whose current state was never announced, or whose newest
    announcement is not signed under the current secret; how many were."""
    async with db.transaction() as session:
        keys = await store.unannounced_keys(session)
        chosen = {key.key_id for key in keys}
        for key_id in await _signed_otherwise(session, signing):
            key = await store.get_key(session, key_id)
            if key is not None and key_id not in chosen:
                keys.append(key)
        for key in keys:
            await announce(session, key, at=clock(), signing=signing)
    return len(keys)


async def _signed_otherwise(session: AsyncSession, signing: KeySigning) -> list[str]:
    """The keys whose newest announcement in the outbox is not signed under the current
    secret. The outbox keeps the newest row of every key on the keys topic for ever
    (``shared.outbox.purge_outbox``, compacted topics), so this sees every key announced."""
    newest = await store.newest_on_topic(session, API_KEYS.name)
    stale: list[str] = []
    for key_id, value in newest.items():
        try:
            current = signing.signs_now(decode(value))
        except (UndecodableEvent, TypeError):  # not a key event: announce the key again
            current = False
        if not current:
            stale.append(key_id)
    return stale


def check_unit(role: Role, unit: str) -> None:
    """``KeyCommandError`` unless ``unit`` is an agency code, or ``*`` on an admin key."""
    if unit == ALL_UNITS and role is Role.ADMIN:
        return
    if not _AGENCY_RE.match(unit):
        msg = f"unit: {unit!r} is not an agency code like 000.00.00.H56"
        if role is Role.ADMIN:
            msg += " (or * for every unit)"
        raise KeyCommandError(msg)


class Keyring:
    """The key use cases over intake's database (the command line's; no broker: the
    announcements wait in the outbox for the running intake's relay). ``signing`` is
    asked for only by the commands that announce (it may create the development secret).
    """

    def __init__(
        self, db: Database, signing: Callable[[], KeySigning], *, clock: Clock = utc_now
    ) -> None:
        self.db = db
        self.signing = signing
        self.clock = clock

    async def create(self, role: Role, unit: str, label: str = "") -> str:
        """Store a new key, announced in the same transaction, and return it (the only
        time it is shown)."""
        check_unit(role, unit)
        signing = self.signing()
        issued = issue_key()
        async with self.db.transaction() as session:
            key = store.ApiKey(
                key_id=issued.key_id,
                secret_hash=issued.secret_hash,
                role=role.value,
                unit=unit,
                label=label,
                created_at=self.clock(),
            )
            await store.add_key(session, key)
            await announce(session, key, at=key.created_at, signing=signing)
        return issued.token

    async def list(self) -> list[KeyInfo]:
        """Every key, oldest first."""
        async with self.db.sessions() as session:
            rows = await store.list_keys(session)
        return [
            KeyInfo(r.key_id, r.role, r.unit, r.label, r.created_at, r.revoked_at) for r in rows
        ]

    async def revoke(self, key_id: str) -> None:
        """Revoke a key at once; ``KeyCommandError`` if there is no such key. Revoking
        twice is a no-op that keeps the first revocation time."""
        signing = self.signing()
        async with self.db.transaction() as session:
            row = await store.get_key(session, key_id)
            if row is None:
                raise KeyCommandError(f"key_id: no key {key_id!r}")
            if row.revoked_at is None:
                at = self.clock()
                await store.revoke_key(session, row, at)
                await announce(session, row, at=at, signing=signing)

    async def is_live(self, token: str) -> bool:
        """Whether ``token`` is a stored, unrevoked key."""
        parsed = parse_key(token)
        if parsed is None:
            return False
        async with self.db.sessions() as session:
            row = await store.get_key(session, parsed[0])
        return (
            row is not None and row.revoked_at is None and row.secret_hash == hash_secret(parsed[1])
        )
