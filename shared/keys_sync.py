"""API keys travel as events, so every service checks the keys intake issues.

Intake owns the keys (``motcua keys``, ``motcua up``): each issue and each revocation puts
``api_key.changed`` (id, secret hash, role, unit, revocation time) in its outbox in the
same transaction. A service that follows the keys topic keeps each key in its own
``api_key_copy`` table and authenticates requests against it with ``shared.auth``, one
indexed read per request, so a restarted process checks keys at once, before it has
read the topic again.

Invariants:
- applying an event twice, or events of one key in any order, gives the same row: the
  newest hash, role and unit win by arrival, and a revocation is final (a key once seen
  revoked stays revoked, with its first revocation time);
- a key this service never heard of is unknown (401), the same as a wrong one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Boolean, Column, String, Table, func
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.auth import KeyLookup, Role, StoredKey
from shared.db import AwareDateTime, Database, table, upsert_insert
from shared.events import ApiKeyChanged, Envelope
from shared.inbox import Apply


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
    event, in arrival order); events of other types are ignored."""
    for envelope in events:
        if envelope.type != ApiKeyChanged.event_type:
            continue
        key = envelope.body(ApiKeyChanged)
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


def following_keys(apply: Apply) -> Apply:
    """``apply`` that also keeps ``api_key.changed`` events: pass it to
    ``shared.consume.follow`` with the keys topic and add ``TABLES`` to the service's."""

    async def wrapped(session: AsyncSession, events: Sequence[Envelope]) -> None:
        await keep_keys(session, events)
        await apply(session, [e for e in events if e.type != ApiKeyChanged.event_type])

    return wrapped
