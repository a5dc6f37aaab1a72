"""Signed key events: intake signs every ``api_key.changed``, a follower keeps only what
is signed under a secret it accepts, and counts the rest (real SQLite files, no broker).

The forgeries come as a broker would deliver them: decoded envelopes given to the
follower's ``apply`` (``shared.keys_sync.following_keys``), the same code the keys topic
feeds.
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import HTTPException
from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.intake import keys
from shared.auth import ALL_UNITS, Authenticator, Role, issue_key, parse_key
from shared.calendar import VN_TZ
from shared.db import Database
from shared.events import ApiKeyChanged, Envelope, decode
from shared.inbox import Apply
from shared.keys_sync import TABLES, following_keys, key_lookup
from shared.outbox import OutboxRow
from shared.settings import Settings
from shared.signing import DEV_SECRET_FILE, KeySigning, key_signing, signed_content
from shared.topics import API_KEYS

UNIT = "000.00.00.H56"
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
OLD = "o" * 40
NEW = "n" * 40
ATTACKER = "a" * 40
SERVICE = "routing"


def rejected(reason: str, service: str = SERVICE) -> float:
    """``motcua_key_events_rejected_total`` of ``service`` for ``reason`` so far."""
    value = REGISTRY.get_sample_value(
        "motcua_key_events_rejected_total", {"service": service, "reason": reason}
    )
    return value or 0.0


async def intake_events(settings: Settings) -> list[Envelope]:
    """Every ``api_key.changed`` in intake's outbox, in order, as followers will read it."""
    db = Database(settings.database_url_for("intake"))
    try:
        async with db.sessions() as session:
            rows = (await session.exec(select(OutboxRow).order_by(col(OutboxRow.id)))).all()
    finally:
        await db.dispose()
    assert all(row.topic == API_KEYS.name for row in rows)
    return [decode(row.value) for row in rows]


def key_event(
    key_id: str,
    secret_hash: str,
    *,
    role: str = "admin",
    unit: str = ALL_UNITS,
    signing: KeySigning | None = None,
    occurred_at: datetime = T0,
    source: str = "intake",
) -> Envelope:
    """An ``api_key.changed`` as anyone could put it on the topic: unsigned, or signed with
    ``signing``."""
    payload = ApiKeyChanged(key_id=key_id, secret_hash=secret_hash, role=role, unit=unit)
    if signing is not None:
        payload = signing.sign(payload, occurred_at=occurred_at, source=source)
    return Envelope.wrap(payload, occurred_at=occurred_at, source=source, dossier_code=None)


def with_payload(envelope: Envelope, **changes: object) -> Envelope:
    """``envelope`` with payload fields changed and everything else (signature included)
    kept: a signature moved onto other content."""
    return envelope.model_copy(update={"payload": {**envelope.payload, **changes}})


class Follower:
    """A service's copy of the keys, fed by its ``following_keys``."""

    def __init__(self, db: Database, apply: Apply) -> None:
        self.db = db
        self.apply = apply
        self.auth = Authenticator(key_lookup(db))

    async def deliver(self, *events: Envelope) -> None:
        async with self.db.transaction() as session:
            await self.apply(session, events)

    async def accepts(self, token: str) -> bool:
        try:
            await self.auth.authenticate(token)
        except HTTPException as refusal:
            if refusal.status_code != 401:  # only "unknown key" is a refusal here
                raise
            return False
        return True


@pytest.fixture
async def copy_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'routing.db'}")
    await db.create_tables(TABLES)
    yield db
    await db.dispose()


def follower(db: Database, secret: str, *, others: list[Envelope] | None = None) -> Follower:
    """A follower accepting ``secret`` (comma-separated for several); the events of other
    types it is given land in ``others``."""

    async def apply(_session: AsyncSession, events: Sequence[Envelope]) -> None:
        if others is not None:
            others.extend(events)

    settings = Settings(keys_signing_secret=secret)
    return Follower(db, following_keys(settings, SERVICE, apply))


# -- intake signs, a follower with the same secret keeps ------------------------------


async def test_what_intake_issues_and_revokes_is_signed_and_kept(
    tmp_path: Path, copy_db: Database
) -> None:
    settings = Settings(var_dir=tmp_path, keys_signing_secret=f"{NEW},{OLD}")
    token = await keys.create_key(settings, Role.OFFICE, UNIT, clock=lambda: T0)
    parsed = parse_key(token)
    assert parsed is not None
    issued_events = await intake_events(settings)
    copy = follower(copy_db, f"{OLD},{NEW}")
    unsigned, bad = rejected("unsigned"), rejected("bad_signature")

    await copy.deliver(*issued_events)
    assert await copy.accepts(token)

    await keys.revoke_key(settings, parsed[0], clock=lambda: T0 + timedelta(hours=1))
    revocation = (await intake_events(settings))[-1]
    assert revocation.body(ApiKeyChanged).revoked_at is not None
    await copy.deliver(revocation)
    assert not await copy.accepts(token)
    assert (rejected("unsigned"), rejected("bad_signature")) == (unsigned, bad)

    # signed with the first secret only: a follower knowing only the old one refuses it
    assert KeySigning.of(NEW).check(issued_events[0]) is None
    assert KeySigning.of(OLD).check(issued_events[0]) == "bad_signature"


async def test_other_events_pass_through_untouched(copy_db: Database) -> None:
    others: list[Envelope] = []
    copy = follower(copy_db, OLD, others=others)
    calendar_like = Envelope(
        event_id=uuid.uuid4(),
        type="calendar.changed",
        occurred_at=T0,
        dossier_code=None,
        source="intake",
        correlation_id=uuid.uuid4(),
        payload={"province": "default", "last_year": None, "rows": [], "removed": []},
    )
    key = issue_key()
    signed = key_event(key.key_id, key.secret_hash, signing=KeySigning.of(OLD))
    await copy.deliver(calendar_like, signed)
    assert others == [calendar_like]
    assert await copy.accepts(key.token)


# -- forgeries change nothing and are counted ----------------------------------------


async def test_an_unsigned_key_event_changes_nothing_and_is_counted(
    copy_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    copy = follower(copy_db, OLD)
    forged = issue_key()  # the attacker's own admin key of every unit
    before = rejected("unsigned")
    with caplog.at_level(logging.WARNING, logger="shared.keys_sync"):
        await copy.deliver(key_event(forged.key_id, forged.secret_hash))
    assert not await copy.accepts(forged.token)
    assert rejected("unsigned") == before + 1
    (line,) = [r.getMessage() for r in caplog.records if r.name == "shared.keys_sync"]
    assert SERVICE in line
    assert forged.key_id in line
    assert "unsigned" in line
    assert forged.secret_hash not in line
    assert OLD not in line


async def test_a_key_event_signed_with_another_secret_changes_nothing(
    copy_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    copy = follower(copy_db, OLD)
    forged = issue_key()
    before = rejected("bad_signature")
    with caplog.at_level(logging.WARNING, logger="shared.keys_sync"):
        await copy.deliver(
            key_event(forged.key_id, forged.secret_hash, signing=KeySigning.of(ATTACKER))
        )
    assert not await copy.accepts(forged.token)
    assert rejected("bad_signature") == before + 1
    text = caplog.text
    assert "bad signature" in text
    assert ATTACKER not in text
    assert OLD not in text


async def test_a_forged_revocation_does_not_revoke(copy_db: Database) -> None:
    copy = follower(copy_db, OLD)
    genuine = issue_key()
    await copy.deliver(key_event(genuine.key_id, genuine.secret_hash, signing=KeySigning.of(OLD)))
    revoke = with_payload(key_event(genuine.key_id, genuine.secret_hash), revoked_at=T0.isoformat())
    await copy.deliver(revoke)
    assert await copy.accepts(genuine.token)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"role": "admin"}, id="another role"),
        pytest.param({"unit": "000.00.61.H56"}, id="another unit"),
        pytest.param({"revoked_at": None}, id="un-revoked"),
        pytest.param({"key_id": "f" * 12}, id="another key"),
        pytest.param({"secret_hash": "0" * 64}, id="another secret"),
        pytest.param({"signature": "é" * 64}, id="not even hex"),
    ],
)
async def test_a_signature_moved_onto_other_content_is_refused(
    changes: dict[str, object],
) -> None:
    signing = KeySigning.of(OLD)
    key = issue_key()
    payload = ApiKeyChanged(
        key_id=key.key_id,
        secret_hash=key.secret_hash,
        role="office",
        unit=UNIT,
        revoked_at=T0,
    )
    signed = Envelope.wrap(
        signing.sign(payload, occurred_at=T0, source="intake"),
        occurred_at=T0,
        source="intake",
        dossier_code=None,
    )
    assert signing.check(signed) is None
    assert signing.check(with_payload(signed, **changes)) == "bad_signature"


def test_a_signature_moved_onto_another_time_or_source_is_refused() -> None:
    signing = KeySigning.of(OLD)
    key = issue_key()
    signed = key_event(key.key_id, key.secret_hash, signing=signing)
    later = signed.model_copy(update={"occurred_at": T0 + timedelta(seconds=1)})
    elsewhere = signed.model_copy(update={"source": "routing"})
    assert signing.check(later) == "bad_signature"
    assert signing.check(elsewhere) == "bad_signature"
    # the same instant written in another zone is the same content
    in_hanoi = signed.model_copy(update={"occurred_at": T0.astimezone(VN_TZ)})
    assert signing.check(in_hanoi) is None


async def test_a_copy_under_another_event_id_is_the_same_state_again(
    copy_db: Database,
) -> None:
    """What the signature leaves out on purpose: the envelope's ids. A copy re-applies the
    same state, which changes nothing."""
    copy = follower(copy_db, OLD)
    key = issue_key()
    signed = key_event(
        key.key_id, key.secret_hash, role="office", unit=UNIT, signing=KeySigning.of(OLD)
    )
    copied = signed.model_copy(update={"event_id": uuid.uuid4(), "correlation_id": uuid.uuid4()})
    before = rejected("bad_signature")
    await copy.deliver(signed, copied)
    assert await copy.accepts(key.token)
    assert rejected("bad_signature") == before


def test_the_signed_content_is_canonical() -> None:
    key = ApiKeyChanged(key_id="a" * 12, secret_hash="b" * 64, role="viewer", unit=UNIT)
    at = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert signed_content(key, occurred_at=at, source="intake") == (
        b'["motcua api_key.changed hmac-sha256 v1","2026-12-02T09:00:00.000000+00:00",'
        b'"intake","aaaaaaaaaaaa","' + b"b" * 64 + b'","viewer","000.00.00.H56",null]'
    )


# -- rotation --------------------------------------------------------------------------


async def test_rotation_without_a_refused_key(copy_db: Database) -> None:
    """Step 1: every service accepts OLD,NEW (intake still signs with OLD). Step 2: NEW,OLD
    everywhere (intake signs with NEW). Step 3: NEW alone, once every key was announced
    again under NEW. No follower refuses a genuine key at any step."""
    step1, step2, step3 = f"{OLD},{NEW}", f"{NEW},{OLD}", NEW
    before = (rejected("unsigned"), rejected("bad_signature"))
    key_under_old = issue_key()
    key_under_new = issue_key()
    old_event = key_event(
        key_under_old.key_id,
        key_under_old.secret_hash,
        signing=key_signing(Settings(keys_signing_secret=step1)),
    )
    new_event = key_event(
        key_under_new.key_id,
        key_under_new.secret_hash,
        signing=key_signing(Settings(keys_signing_secret=step2)),
    )
    # a follower still on step 1 while intake is on step 2, and the other way round
    await follower(copy_db, step1).deliver(new_event)
    await follower(copy_db, step2).deliver(old_event)
    assert await follower(copy_db, step3).accepts(key_under_old.token)
    assert await follower(copy_db, step3).accepts(key_under_new.token)
    assert (rejected("unsigned"), rejected("bad_signature")) == before
    # once OLD is dropped, what only OLD signed is refused
    assert KeySigning.of(step3).check(old_event) == "bad_signature"


async def test_intake_announces_again_what_an_old_secret_signed(tmp_path: Path) -> None:
    """At its start after a rotation (NEW first), intake announces every key again under
    NEW, its revocation state included; after that, OLD can be retired."""
    before = Settings(var_dir=tmp_path, keys_signing_secret=OLD)
    live = parse_key(await keys.create_key(before, Role.OFFICE, UNIT))
    revoked = parse_key(await keys.create_key(before, Role.VIEWER, UNIT))
    assert live is not None
    assert revoked is not None
    await keys.revoke_key(before, revoked[0])
    db = Database(before.database_url_for("intake"))
    try:
        rotated = KeySigning.of(NEW, OLD)
        assert await keys.announce_keys(db, rotated, clock=lambda: T0) == 2
        assert await keys.announce_keys(db, rotated) == 0  # all current now
    finally:
        await db.dispose()
    newest = {e.body(ApiKeyChanged).key_id: e for e in await intake_events(before)}
    assert all(KeySigning.of(NEW).check(e) is None for e in newest.values())
    assert newest[live[0]].body(ApiKeyChanged).revoked_at is None
    assert newest[revoked[0]].body(ApiKeyChanged).revoked_at is not None


# -- where the secret comes from -------------------------------------------------------


def test_without_a_secret_a_development_one_is_made_once_in_var(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert settings.keys_signing_secret is None
    first = key_signing(settings)
    again = key_signing(Settings(var_dir=tmp_path))
    path = tmp_path / DEV_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) == 64
    key = issue_key()
    assert again.check(key_event(key.key_id, key.secret_hash, signing=first)) is None
    assert [p.name for p in tmp_path.iterdir()] == [DEV_SECRET_FILE]  # nothing left aside
    assert path.read_text().strip() not in repr(first)


def test_the_services_refuse_a_secured_broker_without_a_secret(tmp_path: Path) -> None:
    secured = {
        "var_dir": tmp_path,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_username": "routing",
        "kafka_sasl_password": "p" * 40,
    }
    with pytest.raises(ValidationError, match="MOTCUA_KEYS_SIGNING_SECRET is not set") as refusal:
        Settings(**secured)  # type: ignore[arg-type]
    assert "p" * 40 not in str(refusal.value)
    assert not os.listdir(tmp_path)  # nothing generated in production
    assert Settings(**secured, keys_signing_secret=NEW).keys_signing_secret is not None  # type: ignore[arg-type]


def test_a_short_secret_is_refused_without_being_echoed() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters") as refusal:
        Settings(keys_signing_secret=f"{NEW},tooshort")
    assert "tooshort" not in str(refusal.value)
    assert NEW not in str(refusal.value)
    assert NEW not in repr(Settings(keys_signing_secret=NEW))
