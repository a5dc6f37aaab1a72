"""Test data shared by the suites."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.auth import ALL_UNITS, API_KEY_HEADER, Role, issue_key, parse_key
from shared.db import Database
from shared.events import (
    ApiKeyChanged,
    Channel,
    Contact,
    DossierContact,
    DossierReceived,
    Envelope,
    TimeLimit,
)
from shared.keys_sync import ApiKeyCopy, keep_keys

_SEQ = itertools.count(1)


def received_envelope(code: str | None = None, *, procedure: str = "2.000635") -> Envelope:
    """A ``dossier.received`` event as intake would publish it."""
    now = datetime.now(UTC)
    code = code or f"000.00.00.H56-260602-{next(_SEQ):04d}"
    return Envelope.wrap(
        DossierReceived(
            procedure_code=procedure,
            channel=Channel.COUNTER,
            receiving_unit="000.00.00.H56",
            received_at=now,
            due_at=now,
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(1), unit="same_day"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        occurred_at=now,
        source="test",
        dossier_code=code,
    )


CONTACT_AT = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)
"""When the factory's contacts were taken: a fixed instant (notify does not read it)."""


def contact_envelope(
    code: str,
    *,
    name: str = "Trần Thị B",
    phone: str | None = "0987654321",
    email: str | None = None,
    procedure: str = "2.000635",
    unit: str = "000.00.00.H56",
) -> Envelope:
    """The ``dossier.contact`` event intake publishes with a dossier's first event."""
    return Envelope.wrap(
        DossierContact(
            applicant=Contact(name=name, phone=phone, email=email),
            procedure_code=procedure,
            receiving_unit=unit,
        ),
        occurred_at=CONTACT_AT,
        source="test",
        dossier_code=code,
    )


def dossier_body(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /api/v1/dossiers`` body."""
    body: dict[str, Any] = {
        "procedure_code": "2.000635",
        "channel": "counter",
        "receiving_unit": "000.00.00.H56",
        "applicant": {"name": "Nguyễn Văn A", "phone": "0912345678"},
        "documents": ["Tờ khai"],
    }
    body.update(overrides)
    return body


def api_key_header(key: str) -> dict[str, str]:
    """The header that carries an API key."""
    return {"X-API-Key": key}


async def deliver_key(db: Database, key: ApiKeyChanged) -> None:
    """Deliver ``key``'s ``api_key.changed`` event to the copy a following service keeps in
    ``db`` (through ``shared.keys_sync``, as the keys topic would)."""
    event = Envelope.wrap(key, occurred_at=datetime.now(UTC), source="intake", dossier_code=None)
    async with db.transaction() as session:
        await keep_keys(session, [event])


async def grant_key(db: Database, role: Role = Role.ADMIN, unit: str = ALL_UNITS) -> dict[str, str]:
    """Issue a key as intake does and deliver it to the service of ``db``; its header."""
    issued = issue_key()
    await deliver_key(
        db,
        ApiKeyChanged(
            key_id=issued.key_id, secret_hash=issued.secret_hash, role=role.value, unit=unit
        ),
    )
    return api_key_header(issued.token)


async def revoke_granted(db: Database, headers: dict[str, str]) -> None:
    """Deliver the event intake publishes when it revokes the key in ``headers`` (granted
    by ``grant_key`` to the service of ``db``)."""
    parsed = parse_key(headers[API_KEY_HEADER])
    assert parsed is not None
    async with db.sessions() as session:
        row = await session.get(ApiKeyCopy, parsed[0])
    assert row is not None
    await deliver_key(
        db,
        ApiKeyChanged(
            key_id=row.key_id,
            secret_hash=row.secret_hash,
            role=row.role,
            unit=row.unit,
            revoked_at=datetime.now(UTC),
        ),
    )
