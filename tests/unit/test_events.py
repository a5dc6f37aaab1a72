"""The event contract: envelope, payloads, encoding and decoding."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from shared.events import (
    PAYLOAD_TYPES,
    Channel,
    Contact,
    DossierContact,
    DossierReceived,
    DossierRouted,
    Envelope,
    UndecodableEvent,
    decode,
)
from shared.topics import ALL_TOPICS, BY_NAME, DOSSIER_CONTACTS, DOSSIER_LIFECYCLE

AT = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)


def received(**overrides: object) -> DossierReceived:
    fields: dict[str, object] = {
        "procedure_code": "2.000635",
        "channel": Channel.COUNTER,
        "receiving_unit": "000.00.00.H56",
        "received_at": AT,
        "due_at": AT,
        "field": "Hộ tịch",
        "time_limit": {"value": 1, "unit": "same_day"},
        "supplement_rule": "pause",
        "catalogue_version": 1,
    }
    fields.update(overrides)
    return DossierReceived.model_validate(fields)


def test_wrap_sets_type_key_and_correlation() -> None:
    env = Envelope.wrap(received(), occurred_at=AT, source="intake", dossier_code="X-1")
    assert env.type == "dossier.received"
    assert env.key == b"X-1"
    assert env.correlation_id == env.event_id
    assert env.version == 1


def test_round_trip_keeps_everything() -> None:
    env = Envelope.wrap(
        received(), occurred_at=AT, source="intake", dossier_code="X-1", correlation_id=uuid.uuid4()
    )
    back = decode(env.encode())
    assert back == env
    assert back.body(DossierReceived) == received()


def test_body_refuses_the_wrong_model() -> None:
    env = Envelope.wrap(received(), occurred_at=AT, source="intake", dossier_code="X-1")
    with pytest.raises(TypeError, match=r"dossier\.received"):
        env.body(DossierRouted)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError):
        received(received_at=datetime(2026, 6, 2, 9, 0))  # noqa: DTZ001
    with pytest.raises(ValidationError):
        Envelope.wrap(
            received(),
            occurred_at=datetime(2026, 6, 2),  # noqa: DTZ001
            source="intake",
            dossier_code=None,
        )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe not json", "invalid envelope"),
        (b"{}", "invalid envelope: event_id"),
        (
            orjson.dumps(
                {
                    "event_id": str(uuid.uuid4()),
                    "type": "no.such",
                    "occurred_at": AT.isoformat(),
                    "dossier_code": None,
                    "source": "t",
                    "correlation_id": str(uuid.uuid4()),
                    "payload": {},
                }
            ),
            "unknown event type 'no.such'",
        ),
        (
            orjson.dumps(
                {
                    "event_id": str(uuid.uuid4()),
                    "type": "dossier.routed",
                    "occurred_at": AT.isoformat(),
                    "dossier_code": "X",
                    "source": "t",
                    "correlation_id": str(uuid.uuid4()),
                    "payload": {"office": 1},
                }
            ),
            "invalid dossier.routed payload",
        ),
    ],
)
def test_decode_names_what_is_wrong(raw: bytes, reason: str) -> None:
    with pytest.raises(UndecodableEvent, match=reason):
        decode(raw)


def contact() -> DossierContact:
    return DossierContact(
        applicant=Contact(name="Nguyễn Văn A", phone="0912345678"),
        procedure_code="2.000635",
        receiving_unit="000.00.00.H56",
    )


def test_decode_error_never_echoes_personal_data() -> None:
    env = Envelope.wrap(contact(), occurred_at=AT, source="intake", dossier_code="X-1")
    data = orjson.loads(env.encode())
    data["payload"]["applicant"]["phone"] = 912345678  # wrong type, personal value
    with pytest.raises(UndecodableEvent) as info:
        decode(orjson.dumps(data))
    assert "912345678" not in str(info.value)


def test_contacts_travel_on_their_own_topic_and_nowhere_else() -> None:
    assert DossierContact.topic is DOSSIER_CONTACTS
    for model in PAYLOAD_TYPES.values():
        if model is not DossierContact:
            assert "applicant" not in model.model_fields, model.event_type
    lifecycle = Envelope.wrap(received(), occurred_at=AT, source="intake", dossier_code="X-1")
    assert "applicant" not in lifecycle.payload


def test_a_contract_1_event_with_its_applicant_is_still_applied() -> None:
    """Events written before contacts had their own topic carried the applicant: they
    decode (the lifecycle model drops it), so nothing in flight is dead-lettered."""
    data = orjson.loads(
        Envelope.wrap(received(), occurred_at=AT, source="intake", dossier_code="X-1").encode()
    )
    data["payload"]["applicant"] = {"name": "Nguyễn Văn A", "phone": "0912345678"}
    back = decode(orjson.dumps(data))
    assert back.body(DossierReceived) == received()
    assert "applicant" not in back.body(DossierReceived).model_dump()


def test_every_payload_type_has_a_declared_topic() -> None:
    for event_type, model in PAYLOAD_TYPES.items():
        assert model.event_type == event_type
        assert BY_NAME[model.topic.name] is model.topic


def test_topics_have_dead_letter_twins_and_partitions() -> None:
    assert DOSSIER_LIFECYCLE.dead_letter == "motcua.dossier.lifecycle.dlq"
    assert all(t.partitions >= 1 for t in ALL_TOPICS)
    assert len({t.name for t in ALL_TOPICS}) == len(ALL_TOPICS)
