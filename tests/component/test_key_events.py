"""API keys as events: intake's outbox on issue and revocation, the catch-up at start,
and the copy a following service keeps (real SQLite files, no broker)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from fastapi import HTTPException
from sqlalchemy import delete
from sqlmodel import col, select

from services.intake import keys, store
from shared.auth import ALL_UNITS, Authenticator, Principal, Role, issue_key, parse_key
from shared.db import Database, table
from shared.events import ApiKeyChanged, Envelope, decode
from shared.keys_sync import TABLES, ApiKeyCopy, keep_keys, key_lookup
from shared.outbox import OutboxRow
from shared.settings import Settings
from shared.signing import key_signing
from shared.topics import API_KEYS

UNIT = "000.00.00.H56"
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def intake_db(settings: Settings) -> Database:
    return Database(settings.database_url_for("intake"))


async def key_events(settings: Settings) -> list[tuple[str | None, ApiKeyChanged]]:
    """(record key, payload) of every ``api_key.changed`` in intake's outbox, in order."""
    db = intake_db(settings)
    try:
        async with db.sessions() as session:
            rows = (await session.exec(select(OutboxRow).order_by(col(OutboxRow.id)))).all()
    finally:
        await db.dispose()
    assert all(row.topic == API_KEYS.name for row in rows)
    return [(row.key, decode(row.value).body(ApiKeyChanged)) for row in rows]


async def test_issuing_and_revoking_a_key_each_put_its_state_in_the_outbox(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path)
    token = await keys.create_key(settings, Role.COUNTER, UNIT, "desk 3", clock=lambda: T0)
    parsed = parse_key(token)
    assert parsed is not None
    key_id, secret = parsed
    await keys.revoke_key(settings, key_id, clock=lambda: T0 + timedelta(hours=1))
    await keys.revoke_key(settings, key_id)  # a second revocation changes nothing

    events = await key_events(settings)
    assert [record_key for record_key, _ in events] == [key_id, key_id]
    issued, revoked = (payload for _, payload in events)
    assert (issued.role, issued.unit, issued.revoked_at) == ("counter", UNIT, None)
    assert revoked.revoked_at == T0 + timedelta(hours=1)
    assert issued.secret_hash == revoked.secret_hash
    assert secret not in str([issued, revoked])  # the hash travels, never the secret
    signing = key_signing(settings)
    assert await keys.announce_keys(intake_db(settings), signing) == 0  # nothing left


async def test_keys_made_before_keys_were_events_are_announced_once_at_start(
    tmp_path: Path,
) -> None:
    settings = Settings(var_dir=tmp_path)
    first = parse_key(await keys.create_key(settings, Role.ADMIN, ALL_UNITS))
    second = parse_key(await keys.create_key(settings, Role.OFFICE, UNIT))
    assert first is not None
    assert second is not None
    await keys.revoke_key(settings, second[0])
    db = intake_db(settings)
    try:
        async with db.transaction() as session:  # as an older intake left its database
            await session.exec(delete(table(store.ApiKeyPublication)))  # type: ignore[call-overload]
            await session.exec(delete(table(OutboxRow)))  # type: ignore[call-overload]
        signing = key_signing(settings)
        assert await keys.announce_keys(db, signing, clock=lambda: T0) == 2
        assert await keys.announce_keys(db, signing) == 0
    finally:
        await db.dispose()
    announced = {payload.key_id: payload for _, payload in await key_events(settings)}
    assert set(announced) == {first[0], second[0]}
    assert announced[first[0]].revoked_at is None
    assert announced[second[0]].revoked_at is not None


def change(key_id: str, secret_hash: str, *, role: str = "office", revoked: bool) -> Envelope:
    return Envelope.wrap(
        ApiKeyChanged(
            key_id=key_id,
            secret_hash=secret_hash,
            role=role,  # type: ignore[arg-type]
            unit=UNIT,
            revoked_at=T0 if revoked else None,
        ),
        occurred_at=T0,
        source="intake",
        dossier_code=None,
    )


async def refused(auth: Authenticator, token: str) -> int:
    """The status code with which ``auth`` refuses ``token``."""
    with pytest.raises(HTTPException) as refusal:
        await auth.authenticate(token)
    return refusal.value.status_code


@pytest.fixture
async def copy_db(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
    await db.create_tables(TABLES)
    return db


async def test_the_copy_checks_keys_and_a_revocation_is_final_in_any_order(
    copy_db: Database,
) -> None:
    issued = issue_key()
    auth = Authenticator(key_lookup(copy_db))
    assert await refused(auth, issued.token) == 401  # not heard of yet

    async with copy_db.transaction() as session:
        await keep_keys(session, [change(issued.key_id, issued.secret_hash, revoked=False)])
    principal = await auth.authenticate(issued.token)
    assert (principal.key_id, principal.role, principal.unit) == (issued.key_id, Role.OFFICE, UNIT)

    revocation = change(issued.key_id, issued.secret_hash, revoked=True)
    late_issue = change(issued.key_id, issued.secret_hash, role="admin", revoked=False)
    for batch in ([revocation], [revocation], [late_issue]):  # redelivered, then out of order
        async with copy_db.transaction() as session:
            await keep_keys(session, batch)
    assert await refused(auth, issued.token) == 401
    async with copy_db.sessions() as session:
        rows = (await session.exec(select(ApiKeyCopy))).all()
    assert [(r.key_id, r.revoked, r.revoked_at) for r in rows] == [(issued.key_id, True, T0)]
    await copy_db.dispose()


async def test_a_wrong_secret_for_a_known_id_is_refused(copy_db: Database) -> None:
    issued = issue_key()
    async with copy_db.transaction() as session:
        await keep_keys(session, [change(issued.key_id, issued.secret_hash, revoked=False)])
    forged = f"mc_{issued.key_id}_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"
    assert await refused(Authenticator(key_lookup(copy_db)), forged) == 401
    await copy_db.dispose()


def test_an_admin_key_covers_every_unit_even_when_bound_to_one() -> None:
    bound_admin = Principal("a" * 12, Role.ADMIN, UNIT)
    clerk = Principal("b" * 12, Role.COUNTER, UNIT)
    assert bound_admin.covers("000.00.61.H56")
    assert clerk.covers(UNIT)
    assert not clerk.covers("000.00.61.H56")


def test_the_event_names_every_role_a_key_can_have() -> None:
    annotation = ApiKeyChanged.model_fields["role"].annotation
    assert set(get_args(annotation)) == {role.value for role in Role}
