"""Test data shared by the suites."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.events import Channel, Contact, DossierReceived, Envelope, TimeLimit

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
            applicant=Contact(name="Trần Thị B", phone="0987654321"),
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(1), unit="same_day"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        occurred_at=now,
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
