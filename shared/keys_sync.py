"""API keys travel as events, so every service checks the keys intake issues.

Intake owns the keys (``motcua keys``, ``motcua up``): each issue and each revocation puts
``api_key.changed`` (id, secret hash, role, unit, revocation time), signed
(``shared.signing``), in its outbox in the same transaction. A service that follows the
keys topic (``following_keys``) keeps each key in its own ``api_key_copy`` table and
authenticates requests against it with ``shared.auth``, one indexed read per request, so
a restarted process checks keys at once, before it has read the topic again.

The broker is not trusted: a key event that is unsigned or signed under no secret the
service accepts is ignored. It is not applied, not dead-lettered (whoever can write the
topic must not be able to fill the dead letters, and replaying a forgery would be refused
again), logged with its event and key id only, and counted in
``motcua_key_events_rejected_total{service, reason}``.

Invariants:
- applying an event twice, or events of one key in any order, gives the same row: the
  newest hash, role and unit win by arrival, and a revocation is final (a key once seen
  revoked stays revoked, with its first revocation time);
- a key this service never heard of is unknown (401), the same as a wrong one;
- only an event signed under an accepted secret reaches ``api_key_copy`` from the topic.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import get_args

from sqlalchemy import Boolean, Column, String, Table, func
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.auth import KeyLookup, Role, StoredKey
from shared.db import AwareDateTime, Database, table, upsert_insert
from shared.events import ApiKeyChanged, Envelope, of_type
from shared.inbox import Apply
from shared.metrics import KEY_EVENTS_REJECTED
from shared.settings import Settings
from shared.signing import KeySigning, Rejection, key_signing

log = logging.getLogger(__name__)

REJECTIONS: tuple[Rejection, ...] = get_args(Rejection)


class ApiKeyCopy(SQLModel, table=True):
    """A key as this service received it from intake (never the secret)."""

    __tablename__ = "api_key_copy"

    key_id: str = Field(sa_column=Column(String(20), primary_key=True))
    secret_hash: str = Field(sa_column=Column(String(64), nullable=False))
    role: str = Field(sa_column=Column(String(20), nullable=False))
    unit: str = Field(sa_column=Column(String(20), nullable=False))
    revoked: bool = Field(sa_column=Column(Boolean, nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(AwareDateTime))
    changed_at: datetime = Field(sa_column=Column(AwareDateTime, nullable=False))
    """When intake made the change this row last took."""


TABLES: list[Table] = [table(ApiKeyCopy)]
"""Add these to the tables of a service that follows the keys topic."""

_COPY = table(ApiKeyCopy)


def key_lookup(db: Database) -> KeyLookup:
    """``shared.auth``'s look-up over this service's copy of the keys."""

    async def find(key_id: str) -> StoredKey | None:
        async with db.sessions() as session:
            row = await session.get(ApiKeyCopy, key_id)
        if row is None:
            return None
        return StoredKey(row.key_id, row.secret_hash, Role(row.role), row.unit, row.revoked)

    return find


async def keep_keys(session: AsyncSession, events: Sequence[Envelope]) -> None:
    """Write the keys of ``api_key.changed`` events to ``api_key_copy`` (one upsert per
    event, in arrival order); events of other types are ignored.

    It trusts what it is given: from the topic, only ``following_keys`` calls it, with the
    events whose signature it checked."""
    for key, envelope in of_type(events, ApiKeyChanged):
        insert = upsert_insert(session, _COPY).values(
            key_id=key.key_id,
            secret_hash=key.secret_hash,
            role=key.role,
            unit=key.unit,
            revoked=key.revoked_at is not None,
            revoked_at=key.revoked_at,
            changed_at=envelope.occurred_at,
        )
        await session.exec(
            insert.on_conflict_do_update(
                index_elements=["key_id"],
                set_={
                    "secret_hash": insert.excluded.secret_hash,
                    "role": insert.excluded.role,
                    "unit": insert.excluded.unit,
                    "revoked": _COPY.c.revoked | insert.excluded.revoked,
                    "revoked_at": func.coalesce(_COPY.c.revoked_at, insert.excluded.revoked_at),
                    "changed_at": insert.excluded.changed_at,
                },
            )
        )


def signed_keys(events: Sequence[Envelope], signing: KeySigning, service: str) -> list[Envelope]:
    """The ``api_key.changed`` events of ``events`` signed under a secret of ``signing``;
    each other one is logged (ids only) and counted for ``service``."""
    kept: list[Envelope] = []
    for key, envelope in of_type(events, ApiKeyChanged):
        rejection = signing.check(envelope)
        if rejection is None:
            kept.append(envelope)
            continue
        KEY_EVENTS_REJECTED.labels(service, rejection).inc()
        log.warning(
            "%s: ignored api_key.changed %s for key %s from %r: %s",
            service,
            envelope.event_id,
            key.key_id,
            envelope.source,
            rejection.replace("_", " "),
        )
    return kept


def following_keys(settings: Settings, service: str, apply: Apply | None = None) -> Apply:
    """What a service that follows the keys topic passes to ``shared.consume.follow``: it
    keeps the ``api_key.changed`` events signed under a secret of ``settings`` and ignores
    (logs, counts) the others, and gives every other event to ``apply``. Add ``TABLES`` to
    the service's.

    The secrets are read at the first batch, not here: building a service (to write the
    AsyncAPI document, say) touches no file."""
    for reason in REJECTIONS:  # exported at 0 from the start, so a rate can be alerted on
        KEY_EVENTS_REJECTED.labels(service, reason)
    signing = cache(lambda: key_signing(settings))

    async def wrapped(session: AsyncSession, events: Sequence[Envelope]) -> None:
        await keep_keys(session, signed_keys(events, signing(), service))
        if apply is not None:
            await apply(session, [e for e in events if e.type != ApiKeyChanged.event_type])

    return wrapped
