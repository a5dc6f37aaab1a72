"""Broadcast topics: every instance of a service applies every calendar and catalogue
event to its own memory, even when a sibling sharing its database applied it first."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from faststream.kafka import TestKafkaBroker

from shared.catalogue import Catalogue, seed_catalogue
from shared.catalogue_sync import TABLES as CATALOGUE_TABLES
from shared.catalogue_sync import following_catalogue, published_event
from shared.consume import INSTANCE, follow
from shared.events import Envelope
from shared.service import ServiceRuntime
from shared.settings import Settings
from shared.topics import CATALOGUE


def sibling(var_dir: Path, held: list[Catalogue]) -> ServiceRuntime:
    """One instance of a service following the catalogue, on the shared database."""
    runtime = ServiceRuntime(
        "intake", Settings(var_dir=var_dir), tables=CATALOGUE_TABLES, publishes=[]
    )
    follow(runtime, following_catalogue(held.append), CATALOGUE)
    return runtime


async def test_each_instance_takes_a_version_its_sibling_already_kept(tmp_path: Path) -> None:
    first_held: list[Catalogue] = []
    second_held: list[Catalogue] = []
    first, second = sibling(tmp_path, first_held), sibling(tmp_path, second_held)
    await first.db.create_tables(first.tables)
    seed = seed_catalogue()
    v2 = Catalogue(version=2, procedures=seed.procedures)
    event = Envelope.wrap(
        published_event(v2, changed_by="test", change="v2"),
        occurred_at=datetime.now(UTC),
        source="routing",
        dossier_code=None,
    )
    async with TestKafkaBroker(first.broker) as broker:
        await broker.publish(event.encode(), CATALOGUE.name)
    async with TestKafkaBroker(second.broker) as broker:  # its own group: it gets it too
        await broker.publish(event.encode(), CATALOGUE.name)
    assert [c.version for c in first_held] == [2]
    assert [c.version for c in second_held] == [2]


def test_each_process_follows_in_a_group_of_its_own(tmp_path: Path) -> None:
    runtime = sibling(tmp_path, [])
    groups = {sub.group_id for sub in runtime.broker.subscribers}  # type: ignore[attr-defined]
    assert groups == {f"motcua-intake-{INSTANCE}"}
