"""Forged key events on the real broker change nothing.

Whoever can write the keys topic (on the local stack: anyone on loopback) publishes
``api_key.changed`` events of their own making: an admin key of every unit with a secret
they chose, unsigned; another signed with a secret of their own; and an unsigned
revocation of the genuine admin key. Routing, sla and notify ignore all three and count
them, while a key intake issues afterwards works everywhere as usual.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from motcua.stack import KEY_PROBES, Stack
from services.intake.keys import create_key
from shared.auth import ALL_UNITS, IssuedKey, Role, hash_secret, issue_key, parse_key
from shared.events import ApiKeyChanged, Envelope
from shared.settings import ServiceName
from shared.signing import KeySigning
from shared.topics import API_KEYS
from tests.factories import api_key_header

UNIT = "000.00.00.H56"
FOLLOWERS: tuple[ServiceName, ...] = ("routing", "sla", "notify")


def forged_issue(key: IssuedKey, now: datetime, signing: KeySigning | None = None) -> Envelope:
    """An admin key of every unit, as intake would announce it at ``now``, maybe signed
    by ``signing``."""
    payload = ApiKeyChanged(
        key_id=key.key_id, secret_hash=key.secret_hash, role="admin", unit=ALL_UNITS
    )
    if signing is not None:
        payload = signing.sign(payload, occurred_at=now, source="intake")
    return Envelope.wrap(payload, occurred_at=now, source="intake", dossier_code=None)


def forged_revocation(token: str, now: datetime) -> Envelope:
    """The revocation of the key ``token`` at ``now``, unsigned."""
    parsed = parse_key(token)
    assert parsed is not None
    payload = ApiKeyChanged(
        key_id=parsed[0],
        secret_hash=hash_secret(parsed[1]),
        role="admin",
        unit=ALL_UNITS,
        revoked_at=now,
    )
    return Envelope.wrap(payload, occurred_at=now, source="intake", dossier_code=None)


async def publish(stack: Stack, *events: Envelope) -> None:
    """Put ``events`` straight on the keys topic, keyed by key id as intake keys them."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                API_KEYS.name,
                event.encode(),
                key=str(event.payload["key_id"]).encode(),
                headers=[("content-type", b"application/json")],
            )
    finally:
        await producer.stop()


async def answers(stack: Stack, token: str) -> dict[str, int]:
    """Each service's answer to its key probe with ``token``."""
    async with httpx.AsyncClient(timeout=10, headers=api_key_header(token)) as client:
        return {
            name: (await client.get(f"{stack.services[name].url}{path}")).status_code
            for name, path in KEY_PROBES.items()
        }


async def rejections(stack: Stack, name: ServiceName) -> dict[str, float]:
    """``motcua_key_events_rejected_total`` of one service, by reason."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{stack.services[name].url}/metrics")).text
    return {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "motcua_key_events_rejected"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("service") == name
    }


async def test_forged_key_events_on_the_broker_change_nothing(stack: Stack) -> None:
    assert stack.admin_key is not None
    unsigned = issue_key()
    badly_signed = issue_key()
    await publish(
        stack,
        forged_issue(unsigned, stack.now()),
        forged_issue(
            badly_signed, stack.now(), KeySigning.of("attacker-chosen secret, 32 chars or more")
        ),
        forged_revocation(stack.admin_key, stack.now()),
    )

    # Intake issues a key after the forgeries: on the keys topic's one partition it comes
    # after them, so once a follower has it, it has read (and judged) all three.
    genuine = await create_key(stack.settings(), Role.VIEWER, UNIT, "after the forgeries")
    await asyncio.to_thread(stack.wait_for_key, genuine, 30.0)

    for name in FOLLOWERS:
        counted = await rejections(stack, name)
        assert counted.get("unsigned", 0) >= 2, (name, counted)
        assert counted.get("bad_signature", 0) >= 1, (name, counted)
    refused = dict.fromkeys(KEY_PROBES, 401)
    assert await answers(stack, unsigned.token) == refused
    assert await answers(stack, badly_signed.token) == refused
    assert 401 not in (await answers(stack, stack.admin_key)).values()  # not revoked
    assert 401 not in (await answers(stack, genuine)).values()
