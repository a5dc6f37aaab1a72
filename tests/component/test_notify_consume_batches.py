"""Notify's consumer hop gives the same rows whether a mixed stretch of events comes as one
batch or one event at a time: the messages (texts, statuses, times), the notices waiting
for a contact, the addressees, and every report table.

The batch path reads each table once per batch (``IN (...)``) and writes with multi-row
statements; event by event is the reference it must agree with.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from services.notify import process as notify_process
from services.notify import store
from services.notify.reports import TABLES as REPORT_TABLES
from shared.calendar import VN_TZ
from shared.db import table
from shared.events import (
    PAYLOAD_TYPES,
    Channel,
    ClockStarted,
    Contact,
    DossierAction,
    DossierActionRecorded,
    DossierContact,
    DossierReceived,
    Envelope,
    Payload,
    RatingChannel,
    RatingGiven,
    SatisfactionLevel,
    SlaFinished,
    SlaWarning,
    TimeLimit,
)
from shared.settings import Settings

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)
AT = datetime(2026, 3, 2, 9, 0, tzinfo=VN_TZ)
DUE = datetime(2026, 3, 5, 9, 0, tzinfo=VN_TZ)
UNIT = "000.00.00.H56"
OFFICE = "000.00.01.H56"
COUNTS = {"report_day", "report_due", "report_month", "report_due_month"}
"""The aggregate tables, whose last column is the count."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def wrap(payload: Payload, code: str) -> Envelope:
    return Envelope.wrap(payload, occurred_at=AT, source="test", dossier_code=code)


def contact(code: str, *, phone: str | None = "0987654321", email: str | None = None) -> Envelope:
    return wrap(
        DossierContact(
            applicant=Contact(name="Trần Thị B", phone=phone, email=email),
            procedure_code="2.000635",
            receiving_unit=UNIT,
        ),
        code,
    )


def received(code: str) -> DossierReceived:
    return DossierReceived(
        procedure_code="2.000635",
        channel=Channel.COUNTER,
        receiving_unit=UNIT,
        received_at=AT,
        due_at=DUE,
        field="Hộ tịch",
        time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
        supplement_rule="pause",
        catalogue_version=1,
    )


def acted(code: str, action: DossierAction, sequence: int, **extra: Any) -> Envelope:
    return wrap(
        DossierActionRecorded(
            action=action,
            sequence=sequence,
            at=AT + timedelta(hours=sequence),
            status=action.value,
            national_status=5,
            **extra,
        ),
        code,
    )


def warning(code: str, kind: str, *, office: str | None = None) -> Envelope:
    payload = SlaWarning(
        kind=kind, office=office, due_at=DUE, working_hours_left=2.5, at=DUE - timedelta(hours=3)
    )
    return wrap(payload, code)


def finished(code: str) -> Envelope:
    return wrap(
        SlaFinished(
            outcome="late",
            finished_at=DUE + timedelta(hours=1),
            due_at=DUE,
            supplement_requests=1,
            extended=False,
            office=OFFICE,
            procedure_code="2.000635",
            receiving_unit=UNIT,
            channel=Channel.COUNTER,
        ),
        code,
    )


def mixed_events() -> list[Envelope]:
    """Receipts (contact first, contact after the lifecycle event, a contact repeated by
    contract 1's ``dossier.received``), a supplement asked, an apology, a result, SLA
    warnings (due soon, apology needed for the office head, overdue before the result),
    a rating, events redelivered (same event id) and repeated (new id, same notice), and
    several events of one dossier together."""
    a, b, c, d = (f"{UNIT}-260302-{n:04d}" for n in range(1, 5))
    a_received = wrap(received(a), a)
    b_received = wrap(received(b), b)
    c_supplement = acted(c, DossierAction.REQUEST_SUPPLEMENT, 1)
    legacy = Envelope.wrap(received(d), occurred_at=AT, source="test", dossier_code=d)
    legacy.payload["applicant"] = {"name": "Lê Văn C", "phone": None, "email": "c@example.vn"}
    return [
        contact(a, email="b@example.vn"),
        a_received,
        wrap(ClockStarted(started_at=AT, due_at=DUE), a),
        b_received,  # before its contact
        c_supplement,  # before its contact too
        warning(a, "due_soon", office=OFFICE),
        contact(b),
        a_received,  # redelivered: the inbox skips it
        wrap(received(a), a),  # repeated under a new id: the same message keys
        acted(a, DossierAction.REQUEST_SUPPLEMENT, 1),
        acted(a, DossierAction.REQUEST_SUPPLEMENT, 2),
        warning(b, "apology_needed", office=OFFICE),
        warning(a, "apology_needed"),
        warning(b, "overdue"),
        acted(b, DossierAction.EXTEND, 1, new_due_at=DUE + timedelta(days=2)),
        contact(c, phone="0912345678", email="c@example.vn"),
        c_supplement,  # redelivered after its contact came
        acted(a, DossierAction.RESOLVE, 3),
        finished(a),
        legacy,
        wrap(
            RatingGiven(
                level=SatisfactionLevel.SATISFIED,
                channel=RatingChannel.KIOSK,
                at=DUE + timedelta(hours=2),
                procedure_code="2.000635",
                receiving_unit=UNIT,
                dossier_channel=Channel.COUNTER,
            ),
            a,
        ),
        acted(b, DossierAction.RESOLVE, 2),
        acted(d, DossierAction.STOP, 1),
        acted(d, DossierAction.RESUME, 2),
    ]


def records(events: list[Envelope]) -> list[Record]:
    return [
        Record(PAYLOAD_TYPES[e.type].topic.name, 0, n, e.key, e.encode())
        for n, e in enumerate(events)
    ]


def settings_on(backend: str, tmp_path: Path) -> Settings:
    """Notify's database on SQLite (a file), or on PostgreSQL in a schema of its own when
    ``MOTCUA_TEST_POSTGRES_URL`` is set."""
    if backend == "sqlite":
        return Settings(var_dir=tmp_path)
    url = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL: set MOTCUA_TEST_POSTGRES_URL to run this backend")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    return Settings(var_dir=tmp_path, database_url=url, db_schema_prefix=prefix)


async def consumed(
    settings: Settings, batches: list[list[Record]]
) -> dict[str, list[tuple[Any, ...]]]:
    """Every row notify keeps of the events, by table, after consuming ``batches`` (a
    PostgreSQL schema is dropped afterwards)."""
    built = notify_process.build(settings, clock=lambda: NOW)
    db = built.runtime.db
    await db.create_tables(built.runtime.tables)
    async with db.transaction() as session:
        await store.put_head(session, OFFICE, name="Nguyễn Văn A", email="head@example.vn", now=AT)
    consumer = built.runtime.consumer(notify_process.consume_apply(built.notifier))
    for batch in batches:
        await consumer.consume(batch)
    kept = [table(store.Message), table(store.WaitingNotice), table(store.AddresseeRow)]
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with db.sessions() as session:
        conn = await session.connection()
        for target in [*kept, *REPORT_TABLES]:
            rows = [tuple(row) for row in (await conn.execute(select(target))).all()]
            if target.name in COUNTS:  # a count that fell to zero may stay (or not)
                rows = [row for row in rows if row[-1] != 0]
            out[target.name] = sorted(rows, key=repr)
    if settings.db_schema_prefix:
        async with db.engine.begin() as conn:
            await conn.execute(
                text(f'DROP SCHEMA IF EXISTS "{settings.db_schema_prefix}notify" CASCADE')
            )
    await db.dispose()
    return out


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("size", [len(mixed_events()), 7])
async def test_a_mixed_batch_gives_the_rows_of_event_by_event(
    tmp_path: Path, size: int, backend: str
) -> None:
    feed = records(mixed_events())
    one_by_one = await consumed(settings_on(backend, tmp_path / "one"), [[r] for r in feed])
    batched = await consumed(
        settings_on(backend, tmp_path / "batch"),
        [feed[i : i + size] for i in range(0, len(feed), size)],
    )
    assert batched == one_by_one
    messages = {row[0]: row for row in batched["message"]}
    assert len(messages) == 17, sorted(messages)
    assert batched["notice_waiting"] == []
    assert batched["report_fact"], "the report saw the dossiers"
