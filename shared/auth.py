"""API keys: generation, hashing, roles, and the FastAPI dependency that checks them.

A key reads ``mc_<key id>_<secret>``. Only the SHA-256 of the secret is stored: the
secret is 256 random bits, so a fast hash is enough (nothing to brute-force, unlike a
password) and a look-up costs one indexed read. The id lets the store find the row
without scanning; the comparison of hashes is constant-time.

Where the keys live is the owning service's business: this module takes a ``KeyLookup``
(key id → stored key) and never touches a database.

Invariants: a missing, malformed, unknown or revoked key is 401; a valid key whose role
is not allowed is 403; ``admin`` passes every role check and every unit check.

The access rule (one, for every service and route; README "Who may do what"):

- a role grants kinds of access (``Access``): ``ROLE_ACCESS`` is the table;
- a key bound to a unit reaches a dossier only where that unit has the part the access
  needs (``DossierUnits.for_access``): reads, where it received or handles the dossier
  (the routed office or the office of a chain step); receiving, counter actions and the
  applicant's personal data, where it received it; office actions, where it handles it;
- a dossier a key may not reach answers exactly as an unknown one (``dossier_not_found``:
  404, same body), so that sequential codes tell a foreign key nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status
from fastapi.security import APIKeyHeader

from shared.errors import Forbidden, NotFound

__all__ = [
    "ALL_UNITS",
    "API_KEY_HEADER",
    "ROLE_ACCESS",
    "Access",
    "Authenticator",
    "DossierUnits",
    "IssuedKey",
    "KeyLookup",
    "Principal",
    "Role",
    "StoredKey",
    "dossier_not_found",
    "forbid_unless_covers",
    "hash_secret",
    "issue_key",
    "may",
    "may_reach",
    "parse_key",
    "require_access",
]

API_KEY_HEADER = "X-API-Key"
ALL_UNITS = "*"
"""The unit of a key that is not bound to one unit (admin keys)."""

_KEY_RE = re.compile(r"^mc_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")


class Role(StrEnum):
    """What a key may do."""

    COUNTER = "counter"  # cán bộ một cửa: receive, slip, supplement, hand back
    KIOSK = "kiosk"  # máy bốc số and display boards
    OFFICE = "office"  # phòng chuyên môn: processing actions
    IMPORTER = "importer"  # migration and portal sync: may set original times
    VIEWER = "viewer"  # read only
    ADMIN = "admin"  # everything, importing included


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id (never the secret), its role and its unit."""

    key_id: str
    role: Role
    unit: str

    def covers(self, unit: str) -> bool:
        """Whether this key may act for ``unit``: an admin key (bound to a unit or not), a
        key of every unit, or a key of that unit."""
        return self.role is Role.ADMIN or self.unit in {ALL_UNITS, unit}


class Access(StrEnum):
    """A kind of access to dossiers (and queues) that a role may be granted."""

    READ = "read"  # status, due time, history, clock, control sheet, message statuses
    READ_PERSONAL = "read_personal"  # the applicant's name and contact (the slip)
    RECEIVE = "receive"  # hand in a dossier at its receiving unit
    COUNTER_ACTION = "counter_action"  # the one-stop unit's actions (accept, return, …)
    OFFICE_ACTION = "office_action"  # the processing office's actions (resolve, extend, …)
    QUEUE = "queue"  # queue tickets and display boards
    CONTACT_OPT_OUT = "contact_opt_out"  # silence a phone or e-mail for every dossier


ROLE_ACCESS: dict[Role, frozenset[Access]] = {
    Role.KIOSK: frozenset({Access.QUEUE}),
    Role.COUNTER: frozenset(
        {Access.READ, Access.READ_PERSONAL, Access.RECEIVE, Access.COUNTER_ACTION, Access.QUEUE}
    ),
    Role.OFFICE: frozenset({Access.READ, Access.OFFICE_ACTION}),
    Role.IMPORTER: frozenset(
        {
            Access.READ,
            Access.READ_PERSONAL,
            Access.RECEIVE,
            Access.COUNTER_ACTION,
            Access.OFFICE_ACTION,
        }
    ),
    Role.VIEWER: frozenset({Access.READ}),
    Role.ADMIN: frozenset(Access),
}
"""What each role may do, wherever its unit has the part (``DossierUnits.for_access``)."""


@dataclass(frozen=True, slots=True)
class DossierUnits:
    """The units that have a part in a dossier: the one that received it, and the ones
    that handle it (the routed office, the office of every chain step, a transfer's)."""

    receiving: str | None
    handling: frozenset[str] = frozenset()

    @classmethod
    def of(cls, receiving: str | None, *handling: str | None) -> DossierUnits:
        """The parts of a dossier; empty names are dropped."""
        return cls(receiving or None, frozenset(unit for unit in handling if unit))

    def for_access(self, access: Access) -> frozenset[str]:
        """The units whose keys get ``access`` to the dossier."""
        received = frozenset({self.receiving} if self.receiving else ())
        if access is Access.OFFICE_ACTION:
            return self.handling
        if access is Access.READ:
            return received | self.handling
        return received


def may(principal: Principal, access: Access) -> bool:
    """Whether the principal's role grants ``access`` at all."""
    return access in ROLE_ACCESS[principal.role]


def may_reach(principal: Principal, access: Access, units: DossierUnits) -> bool:
    """Whether the principal has ``access`` to a dossier with these ``units``: its role
    grants it, and it is an admin or all-unit key, or its unit has the needed part."""
    if not may(principal, access):
        return False
    if principal.covers(ALL_UNITS):
        return True
    return principal.unit in units.for_access(access)


def dossier_not_found(code: str) -> NotFound:
    """The one answer to an unknown dossier and to one the key may not reach (404)."""
    return NotFound(f"no dossier {code}")


def require_access(
    auth: Authenticator, access: Access
) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller's principal, 401 without a live key, 403 unless its role
    grants ``access`` (the unit is checked against the dossier afterwards)."""
    roles = [role for role, granted in ROLE_ACCESS.items() if access in granted]
    return auth.require(*roles)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as its owner stores it."""

    key_id: str
    secret_hash: str
    role: Role
    unit: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: ``token`` is shown once and never stored; ``secret_hash`` is stored."""

    key_id: str
    token: str
    secret_hash: str


KeyLookup = Callable[[str], Awaitable[StoredKey | None]]
"""Find a stored key by its id."""


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret (hex SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key() -> IssuedKey:
    """A fresh random key."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return IssuedKey(key_id, f"mc_{key_id}_{secret}", hash_secret(secret))


def parse_key(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else ``None``."""
    match = _KEY_RE.match(token.strip())
    return (match["id"], match["secret"]) if match else None


_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="motcua API key")


class Authenticator:
    """Builds FastAPI dependencies that authenticate a request and check its role.

    With ``cache_seconds`` > 0, a key found by the lookup is kept that long (by the
    monotonic ``clock``, in seconds) and not looked up again meanwhile: a revocation (or
    any change of the key) takes effect within ``cache_seconds``. A key the lookup did
    not find is never kept, so a new key works at once. The secret's hash is compared on
    every request, cached or not. Without ``cache_seconds`` every request looks up.
    """

    def __init__(
        self,
        lookup: KeyLookup,
        *,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = 10_000,
    ) -> None:
        self._lookup = lookup
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._max_cached = max_cached
        self._cached: dict[str, tuple[float, StoredKey]] = {}

    async def _find(self, key_id: str) -> StoredKey | None:
        """The stored key, from the cache while it is younger than ``cache_seconds``."""
        if self._cache_seconds <= 0:
            return await self._lookup(key_id)
        now = self._clock()
        kept = self._cached.get(key_id)
        if kept is not None and now - kept[0] < self._cache_seconds:
            return kept[1]
        stored = await self._lookup(key_id)
        if stored is None:
            self._cached.pop(key_id, None)
            return None
        if len(self._cached) >= self._max_cached:
            self._cached.clear()  # unknown ids are never kept: only real keys fill it
        self._cached[key_id] = (now, stored)
        return stored

    async def authenticate(self, token: str | None) -> Principal:
        """The principal of ``token``; ``HTTPException(401)`` unless it is a live key."""
        parsed = parse_key(token) if token else None
        stored = await self._find(parsed[0]) if parsed else None
        if (
            parsed is None
            or stored is None
            or stored.revoked
            or not hmac.compare_digest(stored.secret_hash, hash_secret(parsed[1]))
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                f"a valid {API_KEY_HEADER} header is required",
                headers={"WWW-Authenticate": API_KEY_HEADER},
            )
        return Principal(stored.key_id, stored.role, stored.unit)

    def require(self, *roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
        """A dependency: the caller's principal, 401 without a live key, 403 unless its
        role is one of ``roles`` or admin. No roles: any live key."""
        allowed = frozenset(roles)

        async def dependency(
            token: Annotated[str | None, Depends(_header)],
        ) -> Principal:
            principal = await self.authenticate(token)
            if allowed and principal.role is not Role.ADMIN and principal.role not in allowed:
                raise Forbidden(
                    f"role {principal.role.value} may not do this; "
                    f"needs {' or '.join(sorted(r.value for r in allowed))}"
                )
            return principal

        return dependency


def forbid_unless_covers(principal: Principal, unit: str) -> None:
    """``Forbidden`` (403) unless the principal may act for ``unit``."""
    if not principal.covers(unit):
        raise Forbidden(f"this key belongs to another unit than {unit}")
