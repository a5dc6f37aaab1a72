"""The portal's ledger over a real database (SQLite, and PostgreSQL when
``MOTCUA_TEST_POSTGRES_URL`` is set): a batch folded at once gives the ledger rows and
states that applying its events one by one gives, redeliveries, several events of one
dossier, and contacts and routing decisions in any place among the lifecycle included."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from services.portal import store
from services.portal.app import Ledger
from services.portal.app.ledger import parse_facts
from shared.db import Database
from shared.events import (
    Channel,
    Contact,
    DossierAction,
    DossierActionRecorded,
    DossierContact,
    DossierReceived,
    DossierRouted,
    DossierSubmitted,
    DossierUnroutable,
    Envelope,
    Payload,
    TimeLimit,
)
from shared.migrations import upgrade
from shared.settings import Settings

POSTGRES_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
UNIT = "000.00.00.H56"
LEDGER = Ledger(clock=lambda: NOW)


def wrap(code: str | None, payload: Payload) -> Envelope:
    return Envelope.wrap(payload, occurred_at=NOW, source="test", dossier_code=code)


def again(envelope: Envelope) -> Envelope:
    """The same event published again (a new event id: the inbox does not catch it)."""
    return envelope.model_copy(update={"event_id": uuid.uuid4()})


def submitted(code: str) -> Envelope:
    return wrap(
        code,
        DossierSubmitted(
            procedure_code="2.000635",
            channel=Channel.ONLINE,
            receiving_unit=UNIT,
            submitted_at=NOW - timedelta(hours=1),
        ),
    )


def received(code: str, *, minutes: int = 0) -> Envelope:
    at = NOW + timedelta(minutes=minutes)
    return wrap(
        code,
        DossierReceived(
            procedure_code="2.000635",
            channel=Channel.ONLINE,
            receiving_unit=UNIT,
            received_at=at,
            due_at=at + timedelta(days=2),
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(2), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=3,
        ),
    )


def contact(code: str, name: str = "Phạm Thị Dung") -> Envelope:
    return wrap(
        code,
        DossierContact(
            applicant=Contact(name=name, phone="0912000333"),
            procedure_code="2.000635",
            receiving_unit=UNIT,
        ),
    )


def routed(code: str, office: str = "000.00.07.H56") -> Envelope:
    return wrap(
        code,
        DossierRouted(
            procedure_code="2.000635",
            office=office,
            field="Hộ tịch",
            rule="test",
            catalogue_version=3,
        ),
    )


def action(code: str, sequence: int, what: DossierAction, status: int, **more: Any) -> Envelope:
    return wrap(
        code,
        DossierActionRecorded(
            action=what,
            sequence=sequence,
            at=NOW + timedelta(hours=sequence),
            status=what.value,
            national_status=status,
            **more,
        ),
    )


def life(code: str) -> list[Envelope]:
    """A dossier's whole lifecycle, in intake's order: submitted online, received, a
    supplement asked and brought, transferred, extended, resolved, returned."""
    return [
        submitted(code),
        received(code),
        action(code, 1, DossierAction.REQUEST_SUPPLEMENT, 5, reason="thiếu giấy tờ"),
        action(code, 2, DossierAction.SUBMIT_SUPPLEMENT, 4),
        action(code, 3, DossierAction.TRANSFER, 4, office="000.00.09.H56"),
        action(code, 4, DossierAction.EXTEND, 4, new_due_at=NOW + timedelta(days=5)),
        action(code, 5, DossierAction.RESOLVE, 9),
        action(code, 6, DossierAction.RETURN_RESULT, 10),
    ]


def mixed_batch(codes: list[str]) -> list[Envelope]:
    """Several dossiers' events in one batch, interleaved, with redeliveries."""
    a, b, c, d = codes
    life_a = life(a)
    return [
        routed(b),  # routing before anything else of b
        *life_a[:3],
        contact(a),
        received(b),
        again(life_a[2]),  # the supplement request again (same step)
        life_a[3],
        again(received(b, minutes=30)),  # b's reception again, other content: first wins
        contact(b),
        *life_a[4:],
        action(c, 1, DossierAction.RESOLVE, 9),  # an action of a dossier never received
        received(d, minutes=5),  # d was seen in an earlier batch
        action(d, 1, DossierAction.REQUEST_SUPPLEMENT, 5),
        life_a[-1],  # the return again, same event
        wrap(b, DossierUnroutable(procedure_code="x", reason="none")),  # not the ledger's
        wrap(None, routed(a).payload_model),  # no dossier: not the ledger's
        routed(a, "000.00.08.H56"),  # routing after the transfer: it wins
        contact(d, "Nguyễn Văn E"),
    ]


def prelude(codes: list[str]) -> list[Envelope]:
    """What an earlier batch brought: d's contact and routing."""
    d = codes[3]
    return [contact(d), routed(d)]


Snapshot = tuple[list[dict[str, Any]], list[dict[str, Any]]]


async def snapshot(db: Database) -> Snapshot:
    """Every ledger row and state, all columns, in key order."""
    dossiers, states = store.TABLES
    async with db.sessions() as session:
        conn = await session.connection()
        rows = (await conn.execute(select(dossiers).order_by(dossiers.c.code))).all()
        found = (await conn.execute(select(states).order_by(states.c.code, states.c.step))).all()
    return [dict(r._mapping) for r in rows], [dict(s._mapping) for s in found]


async def apply(db: Database, batches: Iterable[list[Envelope]]) -> None:
    for batch in batches:
        async with db.transaction() as session:
            await LEDGER.apply(session, batch)


class Databases:
    """Two empty portal databases of one backend: one fed in batches, one event by event."""

    def __init__(self, batched: Database, single: Database) -> None:
        self.batched = batched
        self.single = single


async def _database(url: str | None, tmp_path: Path, name: str) -> tuple[Database, str | None]:
    settings = Settings(
        var_dir=tmp_path / name, database_url=url, db_schema_prefix=f"l{uuid.uuid4().hex[:8]}_"
    )
    schema = settings.schema_for("portal")
    db = Database(settings.database_url_for("portal"), schema=schema)
    await upgrade(db, "portal")
    return db, schema


@pytest.fixture(params=["sqlite", "postgresql"])
async def dbs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Databases]:
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("PostgreSQL: set MOTCUA_TEST_POSTGRES_URL to run this backend")
    url = POSTGRES_URL if request.param == "postgresql" else None
    made = [await _database(url, tmp_path, name) for name in ("batched", "single")]
    yield Databases(made[0][0], made[1][0])
    for db, schema in made:
        if schema:
            async with db.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await db.dispose()


def codes(prefix: str, n: int) -> list[str]:
    return [f"{UNIT}-261202-{prefix}{i:03d}" for i in range(n)]


async def test_a_mixed_batch_gives_what_one_by_one_gives(dbs: Databases) -> None:
    four = codes("m", 4)
    events = mixed_batch(four)
    await apply(dbs.batched, [prelude(four), events])
    await apply(dbs.single, [[e] for e in (*prelude(four), *events)])
    batched = await snapshot(dbs.batched)
    assert batched == await snapshot(dbs.single)

    rows, states = batched
    a, b, c, d = four
    by_code = {row["code"]: row for row in rows}
    assert set(by_code) == set(four)
    steps = {(s["code"], s["step"]): s for s in states}
    assert sorted(step for code, step in steps if code == a) == [0, 1, 2, 3, 4, 5, 6, 7]
    assert steps[(b, 1)]["at"] == NOW  # b's first reception, not the redelivered one
    assert sorted(step for code, step in steps if code == c) == [2]
    assert sorted(step for code, step in steps if code == d) == [1, 2]
    assert by_code[a]["office"] == "000.00.08.H56"  # the later routing decision
    assert by_code[c]["facts"] is None  # no facts without a lifecycle event
    assert "Nguyễn Văn E" in by_code[d]["applicant"]
    facts = parse_facts(a, by_code[a]["office"], by_code[a]["facts"])
    assert facts is not None
    assert [(s.requested_step, s.submitted_step) for s in facts.supplements] == [(2, 3)]
    assert facts.resolved_at == NOW + timedelta(hours=5)
    assert facts.returned_at == NOW + timedelta(hours=6)
    assert all(s["status"] == store.PENDING and s["created_at"] == NOW for s in states)


@pytest.mark.parametrize("seed", range(6))
async def test_any_cut_into_batches_gives_what_one_by_one_gives(dbs: Databases, seed: int) -> None:
    chance = random.Random(seed)
    dossiers = codes(f"r{seed}", 5)
    streams = [
        [*life(code), again(life(code)[1])] if i % 2 else life(code)[1:5]
        for i, code in enumerate(dossiers)
    ]
    streams += [[contact(code)] for code in dossiers] + [[routed(code)] for code in dossiers]
    events: list[Envelope] = []
    while any(streams):  # each stream keeps its order; streams interleave at random
        stream = chance.choice([s for s in streams if s])
        events.append(stream.pop(0))
    cuts = sorted(chance.sample(range(1, len(events)), 4))
    batches = [events[i:j] for i, j in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    await apply(dbs.batched, batches)
    await apply(dbs.single, [[e] for e in events])
    assert await snapshot(dbs.batched) == await snapshot(dbs.single)


async def test_a_batch_leaves_the_senders_columns_alone(dbs: Databases) -> None:
    code = codes("s", 1)[0]
    await apply(dbs.batched, [[received(code), contact(code)]])
    async with dbs.batched.transaction() as session:
        await store.acknowledge(session, code, 1, 2, NOW)
    await apply(dbs.batched, [[action(code, 1, DossierAction.RESOLVE, 9), routed(code)]])
    async with dbs.batched.sessions() as session:
        row = await store.dossier(session, code)
    assert row is not None
    assert (row.created, row.acked_step, row.acked_status, row.synced_at) == (True, 1, 2, NOW)
    assert row.office == "000.00.07.H56"


async def test_the_gauges_and_the_due_list_count_every_pending_dossier(dbs: Databases) -> None:
    """``counts`` (the gauges, every ``gauge_seconds`` even with no portal configured) and
    ``due_codes`` (each sender round) over one grouped pass of the pending states (their
    cost, once quadratic in the ledger: bench/RESULTS.md)."""
    n = 400
    events = [e for code in codes("g", n) for e in (received(code), contact(code))]
    await apply(dbs.batched, [events[i : i + 100] for i in range(0, len(events), 100)])
    async with dbs.batched.sessions() as session:
        units = await store.counts(session)
        due = await store.due_codes(session, NOW, 100)
    assert [(u.unit, u.synced, u.pending, u.failed) for u in units] == [(UNIT, 0, n, 0)]
    assert due == codes("g", 100)  # one creation time: by code
