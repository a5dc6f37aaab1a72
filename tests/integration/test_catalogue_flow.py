"""A procedure added through routing's API reaches intake through the real broker."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from motcua.stack import Stack
from shared.events import CataloguePublished, decode
from shared.topics import CATALOGUE
from tests.factories import api_key_header, dossier_body
from tests.integration.conftest import Probe
from tests.integration.test_pipeline import read_topic

pytestmark = pytest.mark.integration

NEW_CODE = "1.999001"
PROCEDURE = {
    "code": NEW_CODE,
    "name": "Thủ tục thử nghiệm liên thông",
    "field": "Hộ tịch",
    "levels": ["xa"],
    "duration": {"value": 2, "unit": "working_days"},
    "online_duration": None,
    "supplement_rule": "pause",
    "fee_vnd": 0,
    "steps": [{"office": None, "hours": 8}, {"office": "000.00.61.H56", "hours": 8}],
}


async def test_intake_accepts_a_procedure_added_through_routing(stack: Stack, probe: Probe) -> None:
    assert stack.admin_key is not None
    async with (
        httpx.AsyncClient(
            base_url=stack.services["routing"].url,
            timeout=30,
            headers=api_key_header(stack.admin_key),
        ) as routing,
        httpx.AsyncClient(
            base_url=stack.services["intake"].url,
            timeout=30,
            headers=api_key_header(stack.admin_key),
        ) as intake,
    ):
        body = dossier_body(procedure_code=NEW_CODE)
        unknown = await intake.post("/api/v1/dossiers", json=body)
        assert unknown.status_code == 422

        added = await routing.post("/api/v1/catalogue", params={"by": "ops"}, json=PROCEDURE)
        assert added.status_code == 201, added.text
        assert added.json()["version"] == 2
        [latest, *_] = (await routing.get("/api/v1/catalogue/history")).json()
        assert latest["changed_by"].startswith("ops (key ")

        deadline = time.monotonic() + 30
        accepted = await intake.post("/api/v1/dossiers", json=body)
        while accepted.status_code == 422 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            accepted = await intake.post("/api/v1/dossiers", json=body)
        assert accepted.status_code == 201, accepted.text

    # the fresh stack published the seed (v1) at start, then the change (v2)
    records = await read_topic(stack.bootstrap_servers, CATALOGUE.name, expect=2)
    versions = [decode(value).body(CataloguePublished).version for _, value, _ in records]
    assert versions == [1, 2]
    kept = await probe.scalar("intake", "SELECT max(version) FROM catalogue_copy")
    assert kept == 2
