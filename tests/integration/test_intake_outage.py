"""Kafka away for a whole counter session: dossiers received and acted on while the broker
is frozen are all accepted, and once it is back every event is published once, in order
per dossier (the sequence of its actions)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from motcua.stack import Stack
from shared.events import DossierActionRecorded, decode
from shared.topics import DOSSIER_CONTACTS, DOSSIER_LIFECYCLE
from tests.factories import api_key_header
from tests.integration.conftest import PostMany, Probe
from tests.integration.test_pipeline import read_topic

pytestmark = pytest.mark.integration

ACTIONS = ["request_supplement", "submit_supplement", "resolve", "return_result"]


async def test_actions_while_the_broker_is_frozen_are_published_once_in_order(
    stack: Stack, probe: Probe, post_dossiers: PostMany
) -> None:
    assert stack.broker is not None
    assert stack.admin_key is not None
    stack.broker.freeze()
    try:
        codes = await post_dossiers(12)
        async with httpx.AsyncClient(
            base_url=stack.services["intake"].url,
            timeout=30,
            headers=api_key_header(stack.admin_key),
        ) as client:
            for action in ACTIONS:
                answers = await asyncio.gather(
                    *(
                        client.post(f"/api/v1/dossiers/{code}/actions", json={"action": action})
                        for code in codes
                    )
                )
                assert [a.status_code for a in answers] == [200] * len(codes), answers[0].text
        unsent = "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND topic = '{}'"
        lifecycle = unsent.format(DOSSIER_LIFECYCLE.name)
        assert await probe.scalar("intake", lifecycle) == len(codes) * (1 + len(ACTIONS))
        contacts = unsent.format(DOSSIER_CONTACTS.name)
        assert await probe.scalar("intake", contacts) == len(codes)
    finally:
        stack.broker.thaw()

    expected = len(codes) * (1 + len(ACTIONS))
    records = await read_topic(
        stack.bootstrap_servers, DOSSIER_LIFECYCLE.name, expect=expected, within=120
    )
    events = [decode(value) for _, value, _ in records]
    assert len(events) == expected  # nothing lost, nothing published twice
    assert len({e.event_id for e in events}) == expected
    for code in codes:
        mine = [e for e in events if e.dossier_code == code]
        assert mine[0].type == "dossier.received"
        actions = [e.body(DossierActionRecorded) for e in mine[1:]]
        assert [a.action.value for a in actions] == ACTIONS
        assert [a.sequence for a in actions] == sorted(a.sequence for a in actions)
