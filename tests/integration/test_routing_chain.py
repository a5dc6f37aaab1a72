"""A liên thông dossier walks its chain through the real broker, with per-step due times."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from motcua.stack import Stack
from shared.calendar import VN_TZ
from shared.events import (
    Channel,
    DossierAction,
    DossierActionRecorded,
    DossierReceived,
    DossierRouted,
    Envelope,
    TimeLimit,
    decode,
)
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_ROUTING
from tests.factories import api_key_header
from tests.integration.test_pipeline import read_topic

pytestmark = pytest.mark.integration

CODE = "000.00.00.H56-260302-0001"
UNIT = "000.00.00.H56"
POLICE = "000.00.61.H56"
BHXH = "000.00.62.H56"
RECEIVED = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)
TO_POLICE = datetime(2026, 3, 2, 15, 0, tzinfo=VN_TZ)
TO_BHXH = datetime(2026, 3, 3, 9, 0, tzinfo=VN_TZ)


def lifecycle() -> list[Envelope]:
    received = DossierReceived(
        procedure_code="1.010801",
        channel=Channel.ONLINE,
        receiving_unit=UNIT,
        received_at=RECEIVED,
        due_at=datetime(2026, 3, 5, 10, 0, tzinfo=VN_TZ),
        field="Hộ tịch",
        time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
        supplement_rule="pause",
        catalogue_version=1,
    )
    transfers = [
        DossierActionRecorded(
            action=DossierAction.TRANSFER,
            sequence=n,
            at=at,
            status="processing",
            national_status=4,
            office=office,
        )
        for n, (at, office) in enumerate([(TO_POLICE, POLICE), (TO_BHXH, BHXH)], start=1)
    ]
    return [
        Envelope.wrap(p, occurred_at=RECEIVED, source="test", dossier_code=CODE)
        for p in (received, *transfers)
    ]


async def sheet_when(url: str, key: str, done: Any, within: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while True:
            answer = await client.get(f"/api/v1/rules/sheet/{CODE}", headers=api_key_header(key))
            assert answer.status_code != 401, answer.text
            body: dict[str, Any] = answer.json()
            if (answer.status_code == 200 and done(body)) or time.monotonic() > deadline:
                return body
            await asyncio.sleep(0.3)


async def test_a_lien_thong_dossier_walks_its_chain(stack: Stack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap_servers)
    await producer.start()
    try:
        for envelope in lifecycle():
            await producer.send_and_wait(
                DOSSIER_LIFECYCLE.name, envelope.encode(), key=envelope.key
            )
    finally:
        await producer.stop()

    assert stack.admin_key is not None
    sheet = await sheet_when(
        stack.services["routing"].url, stack.admin_key, lambda s: s["current_step"] == 2
    )

    assert sheet["current_step"] == 2
    assert [(s["office"], s["started_at"], s["due_at"], s["ended_at"]) for s in sheet["steps"]] == [
        (UNIT, "2026-03-02T03:00:00Z", "2026-03-03T03:00:00Z", "2026-03-02T08:00:00Z"),
        (POLICE, "2026-03-02T08:00:00Z", "2026-03-03T08:00:00Z", "2026-03-03T02:00:00Z"),
        (BHXH, "2026-03-03T02:00:00Z", "2026-03-04T02:00:00Z", None),
    ]
    [(key, value, _)] = await read_topic(stack.bootstrap_servers, DOSSIER_ROUTING.name, expect=1)
    assert key == CODE.encode()
    routed = decode(value).body(DossierRouted)
    assert [(s.office, s.hours) for s in routed.steps] == [
        (UNIT, Decimal(8)),
        (POLICE, Decimal(8)),
        (BHXH, Decimal(8)),
    ]
