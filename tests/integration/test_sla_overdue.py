"""The SLA tracker on the real broker and the real clock: an overdue flag as it happens."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from motcua.stack import Stack
from shared.events import (
    Channel,
    DossierReceived,
    Envelope,
    SlaWarning,
    TimeLimit,
    decode,
)
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_SLA
from tests.factories import api_key_header

pytestmark = pytest.mark.integration


def received(code: str, now: datetime, due_in: timedelta) -> Envelope:
    """A reception at ``now`` whose appointment slip says ``due_in`` later."""
    return Envelope.wrap(
        DossierReceived(
            procedure_code="2.000635",
            channel=Channel.COUNTER,
            receiving_unit="000.00.00.H56",
            received_at=now,
            due_at=now + due_in,
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(1), unit="working_hours"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        occurred_at=now,
        source="test",
        dossier_code=code,
    )


async def inject(bootstrap: str, event: Envelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(DOSSIER_LIFECYCLE.name, event.encode(), key=event.key)
    finally:
        await producer.stop()


async def wait_tracked(client: httpx.AsyncClient, code: str, within: float = 60.0) -> None:
    """Until the tracker answers for ``code`` (its consumer group has joined)."""
    deadline = asyncio.get_running_loop().time() + within
    while (await client.get(f"/api/v1/sla/{code}")).status_code != 200:
        assert asyncio.get_running_loop().time() < deadline, f"{code} never tracked"
        await asyncio.sleep(0.2)


async def warnings_for(bootstrap: str, code: str, *, until: str, within: float) -> list[Envelope]:
    """The sla.warning events of ``code`` from the start of the topic, until kind ``until``."""
    consumer = AIOKafkaConsumer(
        DOSSIER_SLA.name,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    seen: list[Envelope] = []
    try:
        deadline = asyncio.get_running_loop().time() + within
        while asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    event = decode(record.value or b"")
                    if event.dossier_code == code and event.type == SlaWarning.event_type:
                        seen.append(event)
            if any(e.payload["kind"] == until for e in seen):
                extra = await consumer.getmany(timeout_ms=1000)
                for records in extra.values():
                    seen += [
                        e
                        for e in (decode(r.value or b"") for r in records)
                        if e.dossier_code == code and e.type == SlaWarning.event_type
                    ]
                break
    finally:
        await consumer.stop()
    return seen


async def test_overdue_is_flagged_on_the_sla_topic_when_the_due_time_passes(
    stack: Stack,
) -> None:
    sla_url = stack.services["sla"].url
    assert stack.admin_key is not None
    headers = api_key_header(stack.admin_key)
    async with httpx.AsyncClient(base_url=sla_url, timeout=10, headers=headers) as client:
        warm_up = received("000.00.00.H56-260601-9000", stack.now(), timedelta(hours=1))
        await inject(stack.bootstrap_servers, warm_up)
        await wait_tracked(client, "000.00.00.H56-260601-9000")

        code = "000.00.00.H56-260601-9001"
        event = received(code, stack.now(), timedelta(seconds=2))
        due_at = event.body(DossierReceived).due_at
        assert due_at is not None
        await inject(stack.bootstrap_servers, event)
        warnings = await warnings_for(stack.bootstrap_servers, code, until="overdue", within=60)
        state = (await client.get(f"/api/v1/sla/{code}")).json()["state"]

    overdue = [w.body(SlaWarning) for w in warnings if w.payload["kind"] == "overdue"]
    assert len(overdue) == 1
    assert overdue[0].at > due_at
    assert overdue[0].due_at == due_at
    assert {w.payload["kind"] for w in warnings} == {"due_soon", "apology_needed", "overdue"}
    assert state == "overdue"
