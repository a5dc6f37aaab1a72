"""Payloads validated once (kept on the envelope) and handlers registered per payload type."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest.mock import patch

import pytest

from shared.events import (
    Channel,
    Contact,
    DossierContact,
    DossierReceived,
    Envelope,
    decode,
    of_type,
)
from shared.handlers import Handlers

AT = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)


def contact(code: str, name: str = "A") -> Envelope:
    payload = DossierContact(
        applicant=Contact(name=name), procedure_code="2.000635", receiving_unit="H56"
    )
    return Envelope.wrap(payload, occurred_at=AT, source="intake", dossier_code=code)


def received(code: str) -> Envelope:
    payload = DossierReceived.model_validate(
        {
            "procedure_code": "2.000635",
            "channel": Channel.COUNTER,
            "receiving_unit": "H56",
            "received_at": AT,
            "due_at": AT,
            "field": "Hộ tịch",
            "time_limit": {"value": 1, "unit": "same_day"},
            "supplement_rule": "pause",
            "catalogue_version": 1,
        }
    )
    return Envelope.wrap(payload, occurred_at=AT, source="intake", dossier_code=code)


def test_decode_validates_the_payload_once() -> None:
    raw = received("X-1").encode()
    with patch.object(
        DossierReceived, "model_validate", wraps=DossierReceived.model_validate
    ) as validate:
        env = decode(raw)
        first, second = env.body(DossierReceived), env.body(DossierReceived)
    assert validate.call_count == 1
    assert first is second is env.payload_model


def test_the_kept_model_takes_no_part_in_equality_or_the_wire_form() -> None:
    env = received("X-1")
    back = decode(env.encode())
    bare = Envelope.model_validate_json(env.encode())  # nothing kept
    assert back == env == bare
    assert back.encode() == bare.encode() == env.encode()
    assert back.model_dump() == bare.model_dump()


def test_a_copy_with_another_payload_reads_its_own() -> None:
    env = contact("X-1", name="A")
    assert env.body(DossierContact).applicant.name == "A"
    other = env.model_copy(update={"payload": {**env.payload, "applicant": {"name": "B"}}})
    assert other.body(DossierContact).applicant.name == "B"
    assert env.body(DossierContact).applicant.name == "A"


def test_body_of_another_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        decode(received("X-1").encode()).body(DossierContact)


def test_handlers_take_their_types_in_order_and_skip_the_others() -> None:
    handlers: Handlers[str] = Handlers()
    handlers.add(DossierReceived, lambda body, env: f"received {env.dossier_code}")
    events = [received("X-1"), contact("X-2"), received("X-3")]
    assert handlers.run(events) == ["received X-1", "received X-3"]
    assert handlers.handle(events[1]) is None
    assert handlers.taken(events) == [events[0], events[2]]

    @handlers.on(DossierContact)
    def on_contact(body: DossierContact, env: Envelope) -> str:
        return f"contact {body.applicant.name} {env.dossier_code}"

    assert handlers.run(events) == ["received X-1", "contact A X-2", "received X-3"]
    assert handlers.event_types == {"dossier.received", "dossier.contact"}
    with pytest.raises(ValueError, match="has a handler already"):
        handlers.add(DossierContact, on_contact)


def test_of_type_selects_with_the_payload() -> None:
    events = [received("X-1"), contact("X-2"), received("X-3")]
    found = of_type(events, DossierReceived)
    assert [env.dossier_code for _, env in found] == ["X-1", "X-3"]
    assert all(isinstance(body, DossierReceived) for body, _ in found)
