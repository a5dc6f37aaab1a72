"""Signatures of the key events: intake signs every ``api_key.changed``, followers check.

Whoever can write the keys topic could otherwise announce a key of their own making,
admin of every unit, and every following service would take it. So intake signs each
key event with an HMAC-SHA256 under a secret that only the services hold, and a follower
keeps only the events signed under a secret it accepts (``shared.keys_sync``).

What the signature covers, as one canonical JSON array (UTF-8, no spaces)::

    ["motcua api_key.changed hmac-sha256 v1", occurred_at, source,
     key_id, secret_hash, role, unit, revoked_at]

with both instants in UTC at microsecond precision (``2026-12-02T02:00:00.000000+00:00``;
``revoked_at`` is ``null`` while the key is live). That is everything a follower applies:
the key's state and the time of the change (``changed_at`` in its copy), plus who
announced it. So a signature cannot be moved onto another key, another role or unit,
another revocation state or another time. It does not cover the envelope's
``event_id`` and ``correlation_id``: a key event is a state, not a command, and followers
read the keys topic without an inbox, so the same signed content under another id is
the same state applied again, which changes nothing (``shared.keys_sync``'s upsert is
idempotent, and a revocation is final whatever arrives after it).

Secrets: ``MOTCUA_KEYS_SIGNING_SECRET``, comma-separated, current first. Intake signs
with the first; a follower accepts any of them, so the secret is rotated by adding the
new one everywhere first (``deploy/README.md``). Unset on a PLAINTEXT broker (the local
development broker), one is generated once in ``<var_dir>/keys-signing.secret`` (mode
600) and every process of the local stack is given it; with any other broker protocol
``Settings`` refuses to load without one. A secret is never logged nor put in a repr.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import orjson

from shared.events import ApiKeyChanged, Envelope
from shared.settings import Settings

__all__ = [
    "DEV_SECRET_FILE",
    "KeySigning",
    "Rejection",
    "dev_secret",
    "key_signing",
    "signed_content",
    "signing_secrets",
]

SCHEME = "motcua api_key.changed hmac-sha256 v1"
"""First element of the signed array: what is signed and how, so that a signature made
for anything else (another event type, a later scheme) never matches."""

DEV_SECRET_FILE = "keys-signing.secret"
"""The generated development secret, under ``var_dir``."""

Rejection = Literal["unsigned", "bad_signature"]
"""Why a follower ignored a key event (the ``reason`` label of its metric)."""


def _instant(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="microseconds")


def signed_content(payload: ApiKeyChanged, *, occurred_at: datetime, source: str) -> bytes:
    """The bytes the signature of ``payload`` is computed over (see the module's doc)."""
    return orjson.dumps(
        [
            SCHEME,
            _instant(occurred_at),
            source,
            payload.key_id,
            payload.secret_hash,
            payload.role,
            payload.unit,
            _instant(payload.revoked_at),
        ]
    )


@dataclass(frozen=True, slots=True)
class KeySigning:
    """The secrets of one process: it signs with the first and accepts any of them."""

    secrets: tuple[bytes, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.secrets:
            msg = "at least one keys signing secret is needed"
            raise ValueError(msg)

    @classmethod
    def of(cls, *secrets: str) -> KeySigning:
        """Signing with ``secrets`` (current first)."""
        return cls(tuple(s.encode("utf-8") for s in secrets))

    def sign(self, payload: ApiKeyChanged, *, occurred_at: datetime, source: str) -> ApiKeyChanged:
        """``payload`` with its signature under the current secret, for an envelope of
        ``occurred_at`` from ``source``."""
        content = signed_content(payload, occurred_at=occurred_at, source=source)
        return payload.model_copy(update={"signature": _mac(self.secrets[0], content)})

    def check(self, envelope: Envelope) -> Rejection | None:
        """``None`` if the ``api_key.changed`` in ``envelope`` is signed under an accepted
        secret; otherwise why not. Constant-time comparisons."""
        return _check(envelope, self.secrets)

    def signs_now(self, envelope: Envelope) -> bool:
        """Whether the ``api_key.changed`` in ``envelope`` is signed under the current
        secret (what intake would sign it with today)."""
        return _check(envelope, self.secrets[:1]) is None


def _check(envelope: Envelope, secrets: tuple[bytes, ...]) -> Rejection | None:
    payload = envelope.body(ApiKeyChanged)
    if payload.signature is None:
        return "unsigned"
    content = signed_content(payload, occurred_at=envelope.occurred_at, source=envelope.source)
    given = payload.signature.encode("utf-8")
    matches = [hmac.compare_digest(_mac(s, content).encode(), given) for s in secrets]
    return None if any(matches) else "bad_signature"


def _mac(secret: bytes, content: bytes) -> str:
    return hmac.new(secret, content, hashlib.sha256).hexdigest()


def dev_secret(var_dir: Path, name: str = DEV_SECRET_FILE) -> str:
    """A development secret in ``<var_dir>/<name>`` (default ``keys-signing.secret``; mode
    600, its folder 700), created once with 256 random bits. Processes starting together
    get the same one: the file appears whole (written aside, then linked into place) or not
    at all."""
    path = var_dir / name
    if not path.exists():
        var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        aside = var_dir / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):  # another process was first: use its
                os.link(aside, path)
        finally:
            aside.unlink()
    path.chmod(0o600)
    secret = path.read_text("utf-8").strip()
    if len(secret) < 32:
        msg = f"{path}: not a generated secret (delete it to have a new one made)"
        raise ValueError(msg)
    return secret


def signing_secrets(settings: Settings) -> str:
    """The accepted secrets as ``MOTCUA_KEYS_SIGNING_SECRET`` holds them (comma-separated,
    current first): the setting, else the generated development secret (``Settings``
    allows that on a PLAINTEXT broker only)."""
    if settings.keys_signing_secret is not None:
        return settings.keys_signing_secret.get_secret_value()
    return dev_secret(settings.var_dir)


def key_signing(settings: Settings) -> KeySigning:
    """The signing of a process with ``settings``."""
    return KeySigning.of(*signing_secrets(settings).split(","))
