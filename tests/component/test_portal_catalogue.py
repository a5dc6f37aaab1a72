"""The portal follows the catalogue topic: a procedure routing adds after the portal
started is sent with its name and fee; after a restart the kept version names it before
any catalogue event comes; the fee is the one of the dossier's channel. The portal's real
wiring (``process.build``) on a SQLite file brought to head by its migrations, the broker
in memory, the stand-in portal over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker

from services.portal import process
from services.portal.settings import PortalSettings
from shared.catalogue import Catalogue, added, parse_procedure, seed_catalogue
from shared.catalogue_sync import published_event
from shared.events import Channel, DossierContact, DossierReceived, Envelope, Payload, TimeLimit
from shared.migrations import upgrade
from shared.settings import Settings
from shared.topics import CATALOGUE, DOSSIER_CONTACTS, DOSSIER_LIFECYCLE
from tests.factories import contact_envelope
from tests.portal_standin import DSTCODE, PASSWORD, USERNAME, PortalStandIn

NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
NEW_CODE = "1.999001"
NEW_NAME = "Thủ tục thử nghiệm"
NEW_FEE = 15000


def new_catalogue() -> Catalogue:
    """Version 2: the seed plus a procedure with a fee of its own."""
    procedure = parse_procedure(
        {
            "code": NEW_CODE,
            "name": NEW_NAME,
            "field": "Hộ tịch",
            "levels": ["xa"],
            "duration": {"value": 2, "unit": "working_days"},
            "supplement_rule": "pause",
            "fee_vnd": NEW_FEE,
            "steps": [{"office": None, "hours": 16}],
        }
    )
    return added(seed_catalogue(), procedure)


def wrap(payload: Payload, code: str | None) -> Envelope:
    return Envelope.wrap(payload, occurred_at=NOW, source="test", dossier_code=code)


def received(
    code: str, procedure: str, channel: Channel = Channel.COUNTER, version: int = 2
) -> Envelope:
    return wrap(
        DossierReceived(
            procedure_code=procedure,
            channel=channel,
            receiving_unit=DSTCODE,
            received_at=NOW,
            due_at=NOW + timedelta(days=2),
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(2), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=version,
        ),
        code,
    )


def catalogue_event() -> Envelope:
    return wrap(published_event(new_catalogue(), changed_by="ops", change="test"), None)


TOPICS = {
    "catalogue.published": CATALOGUE,
    DossierContact.event_type: DOSSIER_CONTACTS,
}


@pytest.fixture
def standin() -> Iterator[PortalStandIn]:
    with PortalStandIn() as portal:
        yield portal


async def start(var_dir: Path, standin: PortalStandIn, batch: int = 100) -> process.PortalProcess:
    portal = PortalSettings(
        url=standin.url,
        username=USERNAME,
        password=PASSWORD,  # type: ignore[arg-type]
        dstcode=DSTCODE,
        batch=batch,
    )
    built = process.build(Settings(var_dir=var_dir), portal=portal, clock=lambda: NOW)
    await upgrade(built.runtime.db, "portal")
    return built


async def deliver(built: process.PortalProcess, *events: Envelope) -> None:
    async with TestKafkaBroker(built.runtime.broker) as broker:
        for event in events:
            topic = TOPICS.get(event.type, DOSSIER_LIFECYCLE)
            await broker.publish(event.encode(), topic.name, key=event.key)


async def dossier(built: process.PortalProcess, code: str, procedure: str, **kw: Any) -> None:
    """The dossier's reception and contact, then a sender round."""
    contact = contact_envelope(code, procedure=procedure, unit=DSTCODE)
    await deliver(built, received(code, procedure, **kw), contact)
    await built.sender.send_round()


def sent(standin: PortalStandIn, code: str) -> dict[str, Any]:
    """The first record the stand-in accepted for ``code``."""
    record: dict[str, Any] = standin.accepted("DongBoHoSoMC", code)[0].body["data"][0]
    return record


async def test_a_procedure_added_after_start_is_sent_with_its_name_and_fee(
    tmp_path: Path, standin: PortalStandIn
) -> None:
    built = await start(tmp_path, standin)
    code = f"{DSTCODE}-261202-0001"
    try:
        await deliver(built, catalogue_event())
        await dossier(built, code, NEW_CODE)
    finally:
        await built.sender.client.close()
        await built.runtime.db.dispose()
    record = sent(standin, code)
    assert record["TenTTHC"] == NEW_NAME
    assert [fee["Gia"] for fee in record["DanhSachLePhi"]] == [str(NEW_FEE)]


async def test_a_dossier_received_under_a_version_not_yet_in_use_waits_for_it(
    tmp_path: Path, standin: PortalStandIn
) -> None:
    """The lifecycle topic may bring the dossier before the catalogue topic brings the
    version intake received it under: it waits, and then goes with the name."""
    built = await start(tmp_path, standin)
    code = f"{DSTCODE}-261202-0005"
    try:
        await dossier(built, code, NEW_CODE)
        assert standin.accepted("DongBoHoSoMC", code) == []
        assert (await built.operations.dossier(code)).attempts == 0
        await deliver(built, catalogue_event())
        await built.sender.send_round()
    finally:
        await built.sender.client.close()
        await built.runtime.db.dispose()
    assert sent(standin, code)["TenTTHC"] == NEW_NAME


async def test_a_dossier_held_for_the_catalogue_does_not_keep_newer_ones_out(
    tmp_path: Path, standin: PortalStandIn
) -> None:
    """With a batch of one, the held dossier (the oldest pending) would take every
    round's only place; it is left out of the rounds until the catalogue moves on."""
    built = await start(tmp_path, standin, batch=1)
    held, ready = f"{DSTCODE}-261202-0006", f"{DSTCODE}-261202-0007"
    try:
        await dossier(built, held, NEW_CODE)
        await dossier(built, ready, "1.004222", version=1)
        assert standin.accepted("DongBoHoSoMC", held) == []
        assert sent(standin, ready)["MaTTHC"] == "1.004222"
        await deliver(built, catalogue_event())
        await built.sender.send_round()
    finally:
        await built.sender.client.close()
        await built.runtime.db.dispose()
    assert sent(standin, held)["TenTTHC"] == NEW_NAME


async def test_a_restarted_portal_names_it_from_its_copy(
    tmp_path: Path, standin: PortalStandIn
) -> None:
    first = await start(tmp_path, standin)
    try:
        await deliver(first, catalogue_event())
    finally:
        await first.sender.client.close()
        await first.runtime.db.dispose()
    restarted = await start(tmp_path, standin)
    code = f"{DSTCODE}-261202-0002"
    try:
        await dossier(restarted, code, NEW_CODE)
    finally:
        await restarted.sender.client.close()
        await restarted.runtime.db.dispose()
    assert sent(standin, code)["TenTTHC"] == NEW_NAME


async def test_the_fee_sent_is_the_one_of_the_dossiers_channel(
    tmp_path: Path, standin: PortalStandIn
) -> None:
    """Đăng ký thường trú (1.004222): 20,000 đ at the counter, 10,000 đ online."""
    built = await start(tmp_path, standin)
    counter, online = f"{DSTCODE}-261202-0003", f"{DSTCODE}-261202-0004"
    try:
        await dossier(built, counter, "1.004222", version=1)
        await dossier(built, online, "1.004222", channel=Channel.ONLINE, version=1)
    finally:
        await built.sender.client.close()
        await built.runtime.db.dispose()
    fees = {code: sent(standin, code)["DanhSachLePhi"] for code in (counter, online)}
    assert {code: [f["Gia"] for f in fee] for code, fee in fees.items()} == {
        counter: ["20000"],
        online: ["10000"],
    }
    assert sent(standin, online)["KenhThucHien"] == "2"
