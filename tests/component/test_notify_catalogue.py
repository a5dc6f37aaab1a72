"""Notify follows the catalogue topic: a procedure routing adds after notify started is
reported with its level and named by its name; after a restart the kept version names
it before any event comes; one removed since is still named. Notify's real wiring
(``process.build``) on a SQLite file, the broker in memory."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from faststream.kafka import TestKafkaBroker

from services.notify import process as notify_process
from shared.calendar import VN_TZ
from shared.catalogue import Catalogue, added, parse_procedure, removed, seed_catalogue
from shared.catalogue_sync import published_event
from shared.events import Channel, DossierReceived, Envelope, TimeLimit
from shared.settings import Settings
from shared.topics import CATALOGUE, DOSSIER_LIFECYCLE

NOW = datetime(2026, 6, 2, 9, 0, tzinfo=VN_TZ)
DAY = NOW.date()
UNIT = "000.00.00.H56"
NEW_CODE = "1.999001"
NEW_NAME = "Thủ tục thử nghiệm"
CODE = "000.00.00.H56-260602-0001"


def new_catalogue() -> Catalogue:
    """Version 2: the seed plus a procedure done at commune level (``xa``) only."""
    procedure = parse_procedure(
        {
            "code": NEW_CODE,
            "name": NEW_NAME,
            "field": "Hộ tịch",
            "levels": ["xa"],
            "duration": {"value": 2, "unit": "working_days"},
            "online_duration": None,
            "supplement_rule": "pause",
            "fee_vnd": 0,
            "steps": [{"office": None, "hours": 16}],
        }
    )
    return added(seed_catalogue(), procedure)


def published(catalogue: Catalogue) -> Envelope:
    return Envelope.wrap(
        published_event(catalogue, changed_by="ops", change="test"),
        occurred_at=NOW,
        source="routing",
        dossier_code=None,
    )


def received() -> Envelope:
    return Envelope.wrap(
        DossierReceived(
            procedure_code=NEW_CODE,
            channel=Channel.COUNTER,
            receiving_unit=UNIT,
            received_at=NOW,
            due_at=datetime(2026, 6, 4, 9, 0, tzinfo=VN_TZ),
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(2), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=2,
        ),
        occurred_at=NOW,
        source="intake",
        dossier_code=CODE,
    )


async def start(var_dir: Path) -> notify_process.NotifyProcess:
    built = notify_process.build(Settings(var_dir=var_dir), clock=lambda: NOW)
    await built.runtime.db.create_tables(built.runtime.tables)
    return built


async def deliver(built: notify_process.NotifyProcess, *events: Envelope) -> None:
    async with TestKafkaBroker(built.runtime.broker) as broker:
        for event in events:
            topic = CATALOGUE if event.type == "catalogue.published" else DOSSIER_LIFECYCLE
            await broker.publish(event.encode(), topic.name, key=event.key)


async def labels(built: notify_process.NotifyProcess, group_by: str) -> dict[str, tuple[str, int]]:
    """Today's report grouped by ``group_by``: key → (label, dossiers received)."""
    report = await built.reports.report(DAY, DAY, group_by)
    return {row.key: (row.label, row.counts.received) for row in report.rows}


async def test_a_procedure_added_after_start_reports_its_level_and_name(tmp_path: Path) -> None:
    built = await start(tmp_path)
    try:
        assert NEW_CODE not in built.notifier.catalogue().procedures
        await deliver(built, published(new_catalogue()))
        assert built.notifier.catalogue.version == 2
        await deliver(built, received())
        assert await labels(built, "level") == {"xa": ("Cấp xã", 1)}
        assert await labels(built, "procedure") == {NEW_CODE: (NEW_NAME, 1)}
    finally:
        await built.runtime.db.dispose()


async def test_a_restarted_notify_names_it_from_its_copy_even_once_removed(
    tmp_path: Path,
) -> None:
    first = await start(tmp_path)
    try:
        await deliver(first, published(new_catalogue()), received())
    finally:
        await first.runtime.db.dispose()

    restarted = await start(tmp_path)
    try:
        assert await labels(restarted, "procedure") == {NEW_CODE: (NEW_NAME, 1)}
        assert restarted.notifier.catalogue.version == 2
        await deliver(restarted, published(removed(new_catalogue(), NEW_CODE)))
        assert restarted.notifier.catalogue.version == 3
        assert await labels(restarted, "procedure") == {NEW_CODE: (NEW_NAME, 1)}
    finally:
        await restarted.runtime.db.dispose()


async def test_the_command_line_reads_the_kept_version(tmp_path: Path) -> None:
    served = await start(tmp_path)
    try:
        await deliver(served, published(new_catalogue()))
    finally:
        await served.runtime.db.dispose()
    settings = Settings(var_dir=tmp_path)
    standalone = notify_process.standalone(settings, clock=lambda: NOW)
    try:
        await notify_process.prepare(standalone, settings)
        assert standalone.notifier.catalogue.version == 2
        assert standalone.digests.catalogue.get(NEW_CODE) is not None
    finally:
        await standalone.runtime.db.dispose()
