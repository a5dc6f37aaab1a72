"""Notify's dispatcher when sinks are slow or break, and with two dispatchers on one
database: every message is sent once, every outcome lands, no message is left ``sending``.

The sinks are real: a local SMTP server (aiosmtpd) and a local HTTP server standing in
for the SMS gateway, both on loopback, both able to answer slowly, to hold a request
until the test lets it go, and to count how many sends they have in flight at once.
Time is a fixed instant (a working Monday morning, outside SMS quiet hours) that tests
move by hand, or, where a lease must lapse for real, that runs on at the real clock's
pace from that instant. No test asserts a duration.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import select

from services.notify import app as notify_app
from services.notify import process as notify_process
from services.notify import store
from services.notify.api import router
from services.notify.channels.smtp import message_id
from services.notify.settings import NotifySettings
from shared.auth import Authenticator
from shared.calendar import VN_TZ
from shared.db import Database
from shared.keys_sync import key_lookup
from shared.service import answer_refusals
from shared.settings import Settings
from tests.component.test_notify_delivery import (
    CODE,
    REPORT_TOKEN,
    FakeClock,
    counted,
    feed,
    free_port,
    make_notifier,
    received,
)
from tests.standins import JsonPostServer

MONDAY_MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)
SENDER = "motcua@motcua.test"
NAME = "Trần Thị B"  # the applicant's name in ``received``: personal data, never logged


# --- what both servers can do: hold requests, count sends in flight ---------------------


class Hold:
    """Lets a test stop the next ``count`` requests at a server until it releases them."""

    def __init__(self) -> None:
        self.count = 0
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.lock = threading.Lock()

    def next(self, count: int) -> None:
        self.count = count

    def take(self) -> bool:
        with self.lock:
            if self.count <= 0:
                return False
            self.count -= 1
            self.arrived.set()
            return True

    async def arrival(self) -> None:
        assert await asyncio.to_thread(self.arrived.wait, 30), "the held request never came"


@dataclass
class InFlight:
    """Sends a server is busy with, now and at most, in all and per recipient."""

    now: int = 0
    most: int = 0
    per_recipient: Counter[str] = field(default_factory=Counter)
    most_per_recipient: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, recipient: str) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.per_recipient[recipient] += 1
            self.most_per_recipient = max(self.most_per_recipient, self.per_recipient[recipient])

    def leave(self, recipient: str) -> None:
        with self.lock:
            self.now -= 1
            self.per_recipient[recipient] -= 1


# --- the SMTP server -------------------------------------------------------------------


@dataclass
class SlowMailBox:
    """An SMTP server that takes ``delay`` seconds to accept each mail."""

    port: int
    delay: float = 0.0
    message_ids: list[str] = field(default_factory=list)
    in_flight: InFlight = field(default_factory=InFlight)
    hold: Hold = field(default_factory=Hold)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        assert isinstance(envelope.content, bytes)
        mail = message_from_bytes(envelope.content, policy=default_policy)
        recipient = ",".join(envelope.rcpt_tos)
        self.in_flight.enter(recipient)
        try:
            if self.hold.take():
                await asyncio.to_thread(self.hold.released.wait, 30)
            await asyncio.sleep(self.delay)
            self.message_ids.append(str(mail["Message-ID"]))
        finally:
            self.in_flight.leave(recipient)
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[SlowMailBox]:
    """A server of the test's own: a late send of an earlier test cannot count here."""
    box = SlowMailBox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    box.hold.released.set()
    controller.stop()


# --- the SMS gateway stand-in ------------------------------------------------------------


@dataclass
class SlowGateway:
    """The brand-name SMS gateway: takes ``delay`` seconds per request, answers ``status``
    (200: accepted, code 00; else code 99, try again later)."""

    url: str = ""
    delay: float = 0.0
    status: int = 200
    request_ids: list[str] = field(default_factory=list)
    in_flight: InFlight = field(default_factory=InFlight)
    hold: Hold = field(default_factory=Hold)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, str]]:
        phone, reference = body["phone"], body["request_id"]
        self.in_flight.enter(phone)
        try:
            if self.hold.take():
                self.hold.released.wait(30)
            time.sleep(self.delay)
            with self.lock:
                self.request_ids.append(reference)
        finally:
            self.in_flight.leave(phone)
        if self.status != 200:
            return self.status, {"code": "99"}
        return 200, {"code": "00", "message_id": f"gw-{reference}"}


@pytest.fixture
def gateway() -> Iterator[SlowGateway]:
    """A server of the test's own: a late send of an earlier test cannot count here."""
    gateway = SlowGateway()
    server = JsonPostServer(lambda body, _headers, _path: gateway.answer(body), poll_interval=0.05)
    gateway.url = f"{server.base_url}/api/sms/send"
    yield gateway
    gateway.hold.released.set()
    server.close()


# --- notify under test --------------------------------------------------------------------


class RunningClock:
    """A clock that starts at a fixed instant and runs on at the real clock's pace, for
    the tests where a lease must be able to lapse while real sends are under way."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.started = time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.started)


@pytest.fixture
def notify_settings(mailbox: SlowMailBox, gateway: SlowGateway) -> NotifySettings:
    return NotifySettings(
        sms_sinks="http",
        email_sinks="smtp",
        smtp_port=mailbox.port,
        smtp_sender=SENDER,
        sms_url=gateway.url,
        sms_api_key=SecretStr("test-key"),
        sms_report_token=SecretStr(REPORT_TOKEN),
        backoff_seconds=30,
        max_attempts=4,
        sending_lease_seconds=60,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Settings]:
    """Notify's database on SQLite (a file), or on PostgreSQL in a schema of this test's
    own (dropped afterwards) when ``MOTCUA_TEST_POSTGRES_URL`` is set."""
    if request.param == "sqlite":
        yield Settings(var_dir=tmp_path, retry_backoff_seconds=0.0, retry_attempts=3)
        return
    url = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL: set MOTCUA_TEST_POSTGRES_URL to run this backend")
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    yield Settings(
        var_dir=tmp_path,
        database_url=url,
        db_schema_prefix=prefix,
        retry_backoff_seconds=0.0,
        retry_attempts=3,
    )
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{prefix}notify" CASCADE'))
    await db.dispose()


def code(n: int) -> str:
    return f"000.00.00.H56-260302-{n:04d}"


def phone(n: int) -> str:
    return f"09000000{n:02d}"


def email(n: int) -> str:
    return f"citizen{n}@example.vn"


async def all_statuses(notifier: notify_app.Notifier) -> dict[str, str]:
    async with notifier.runtime.db.sessions() as session:
        rows = await session.exec(select(store.Message.key, store.Message.status))
        return dict(rows.all())


async def message(notifier: notify_app.Notifier, key: str) -> store.Message:
    async with notifier.runtime.db.sessions() as session:
        row = await session.get(store.Message, key)
        assert row is not None
        return row


# --- the tests ------------------------------------------------------------------------------


async def test_two_dispatchers_send_each_message_once_though_each_send_outlasts_the_lease(
    settings: Settings,
    notify_settings: NotifySettings,
    mailbox: SlowMailBox,
    gateway: SlowGateway,
) -> None:
    """Two notify processes (two engines, one database), each send slower than the lease.

    One claims 8 of the 12 messages, the other the last 4; two sends at a time per channel
    make the bigger round last about two sends, its rows waiting for a slot or in a send
    older than the lease unless it is renewed. The other, idle after its own round,
    reconciles all the while: it must find nothing to settle. (Before leases were renewed,
    it turned the e-mails ``unknown`` and sent the SMS a second time.)
    """
    clock = RunningClock(MONDAY_MORNING)
    notify = notify_settings.model_copy(
        update={"sending_lease_seconds": 2.0, "dispatch_batch": 8, "send_concurrency": 2}
    )
    mailbox.delay = gateway.delay = 3.0  # each send outlasts the lease
    first = notify_process.build(settings, notify, clock=clock).notifier
    second = notify_process.build(settings, notify, clock=clock).notifier
    await first.runtime.db.create_tables(first.runtime.tables)
    await feed(first, *(received(code(n), phone=phone(n), email=email(n)) for n in range(6)))
    keys = await all_statuses(first)
    assert len(keys) == 12
    lost = counted("motcua_notifications_claim_lost_total", channel="email") + counted(
        "motcua_notifications_claim_lost_total", channel="sms"
    )

    dispatchers = [asyncio.create_task(n.dispatch_forever()) for n in (first, second)]
    seen: set[str] = set()
    try:
        for _ in range(600):  # a bound on the wait, not an expected duration
            now = await all_statuses(second)
            seen.update(now.values())
            if set(now.values()) == {"sent"}:
                break
            await asyncio.sleep(0.05)
    finally:
        for task in dispatchers:
            task.cancel()
        await asyncio.gather(*dispatchers, return_exceptions=True)

    # Never reconciled while its dispatcher was alive: no 'unknown', no re-queue.
    assert seen <= {"queued", "sending", "sent"}
    assert await all_statuses(first) == dict.fromkeys(keys, "sent")
    emails = [k for k in keys if k.endswith(":email")]
    sms = [k for k in keys if k.endswith(":sms")]
    assert Counter(mailbox.message_ids) == {message_id(k, SENDER): 1 for k in emails}
    assert Counter(gateway.request_ids) == dict.fromkeys(sms, 1)
    assert (
        counted("motcua_notifications_claim_lost_total", channel="email")
        + counted("motcua_notifications_claim_lost_total", channel="sms")
        == lost
    )
    await first.runtime.db.dispose()
    await second.runtime.db.dispose()


async def test_a_sink_raising_oserror_fails_only_its_message_which_is_retried(
    tmp_path: Path,
) -> None:
    """The development file sink on a disk where some messages' files cannot be written
    (a directory is in the way: ``os.replace`` raises ``IsADirectoryError``)."""
    clock = FakeClock(MONDAY_MORNING)
    settings = Settings(var_dir=tmp_path, retry_backoff_seconds=0.0, retry_attempts=3)
    notifier = await make_notifier(settings, NotifySettings(backoff_seconds=30), clock)
    await feed(notifier, *(received(code(n), phone=phone(n), email=email(n)) for n in range(3)))
    broken = {f"{code(0)}:received:sms", f"{code(2)}:received:email"}
    outbox = settings.var_dir / "messages"
    for key in broken:
        (outbox / f"{key.replace(':', '_')}.json").mkdir(parents=True)

    assert await notifier.dispatch_round() == 6
    after = await all_statuses(notifier)
    assert "sending" not in after.values()
    assert {k for k, s in after.items() if s == "queued"} == broken
    assert {k for k, s in after.items() if s == "sent"} == set(after) - broken
    for key in broken:
        row = await message(notifier, key)
        assert (row.attempts, row.last_error) == (1, "file: IsADirectoryError")
        assert row.next_attempt_at == clock.now + timedelta(seconds=30)

    for key in broken:
        (outbox / f"{key.replace(':', '_')}.json").rmdir()
    clock.now += timedelta(seconds=29)
    assert await notifier.dispatch_round() == 0  # the backoff holds
    clock.now += timedelta(seconds=1)
    assert await notifier.dispatch_round() == 2
    assert set((await all_statuses(notifier)).values()) == {"sent"}
    for key in broken:
        assert (await message(notifier, key)).attempts == 2
    await notifier.runtime.db.dispose()


async def test_sends_run_in_parallel_up_to_the_bound_per_sink(
    settings: Settings,
    notify_settings: NotifySettings,
    mailbox: SlowMailBox,
    gateway: SlowGateway,
) -> None:
    """Counted at the servers: at most ``send_concurrency`` sends in flight at each, and
    one recipient's two messages never at the same time."""
    clock = FakeClock(MONDAY_MORNING)
    notify = notify_settings.model_copy(update={"send_concurrency": 2})
    mailbox.delay = gateway.delay = 0.5
    notifier = await make_notifier(settings, notify, clock)
    events = [received(code(n), phone=phone(n), email=email(n)) for n in range(5)]
    events.append(received(code(5), phone=phone(0), email=email(0)))  # a second dossier
    await feed(notifier, *events)

    assert await notifier.dispatch_round() == 12
    assert set((await all_statuses(notifier)).values()) == {"sent"}
    assert len(mailbox.message_ids) == len(gateway.request_ids) == 6
    assert mailbox.in_flight.most == 2  # in parallel, and no more than the bound
    assert gateway.in_flight.most == 2
    assert mailbox.in_flight.most_per_recipient == 1
    assert gateway.in_flight.most_per_recipient == 1
    await notifier.runtime.db.dispose()


@pytest.mark.parametrize(
    ("report", "gateway_status", "final"),
    [("delivered", 200, "delivered"), ("failed", 200, "failed"), ("delivered", 503, "delivered")],
    ids=["delivered-then-accepted", "failed-then-accepted", "delivered-then-timed-out"],
)
async def test_a_delivery_report_that_overtakes_the_record_of_its_send_is_kept(
    *,
    settings: Settings,
    notify_settings: NotifySettings,
    gateway: SlowGateway,
    report: str,
    gateway_status: int,
    final: str,
) -> None:
    """The gateway calls back before answering our request (or our side of the request
    fails after the gateway took it): the report is accepted while the message is
    ``sending`` and the record of the send does not undo it."""
    clock = FakeClock(MONDAY_MORNING)
    notifier = await make_notifier(settings, notify_settings, clock)
    app = FastAPI()
    answer_refusals(app)  # as create_http_app does
    app.include_router(router(notifier, Authenticator(key_lookup(notifier.runtime.db))))
    await feed(notifier, received(email=None))
    key = f"{CODE}:received:sms"
    gateway.status = gateway_status
    gateway.hold.next(1)

    sending = asyncio.create_task(notifier.dispatch_round())
    await gateway.hold.arrival()
    assert await all_statuses(notifier) == {key: "sending"}
    clock.now += timedelta(seconds=5)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        answer = await client.post(
            "/api/v1/notifications/delivery-reports",
            json={"reference": key, "status": report, "reason": "subscriber unreachable"},
            headers={"X-Report-Token": REPORT_TOKEN},
        )
    assert answer.status_code == 204
    clock.now += timedelta(seconds=5)
    gateway.hold.released.set()
    assert await sending == 1

    row = await message(notifier, key)
    assert (row.status, row.attempts, row.claim) == (final, 1, None)
    if final == "delivered":
        assert row.delivered_at == MONDAY_MORNING + timedelta(seconds=5)
        assert row.last_error is None
    else:
        assert row.last_error == "subscriber unreachable"
    if gateway_status == 200:
        assert (row.sent_at, row.sink, row.provider_id) == (
            MONDAY_MORNING + timedelta(seconds=10),
            "http",
            f"gw-{key}",
        )
    # Settled: not sent again, however long one waits.
    clock.now += timedelta(hours=1)
    assert await notifier.dispatch_round() == 0
    assert gateway.request_ids == [key]
    await notifier.runtime.db.dispose()


async def test_a_dispatcher_whose_lease_lapsed_neither_sends_nor_records_over_the_other(
    settings: Settings,
    notify_settings: NotifySettings,
    mailbox: SlowMailBox,
    gateway: SlowGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first dispatcher stalls mid-round past its lease (here: its clock jumps 61 s
    while its sends are held at the servers, too fast for its renewal to see). The second
    reconciles its rows: the SMS is resent under its key, the e-mails become ``unknown``.
    When the first wakes, ``WHERE claim = mine`` keeps it from recording over that, and
    the e-mail still waiting for a slot is not sent at all; each lost claim is counted and
    logged by key, without the citizen's phone, e-mail or name."""
    caplog.set_level(logging.WARNING, logger=notify_app.__name__)
    clock = FakeClock(MONDAY_MORNING)
    notify = notify_settings.model_copy(update={"send_concurrency": 1})
    first = await make_notifier(settings, notify, clock)
    second = notify_process.build(settings, notify, clock=clock).notifier
    await feed(
        first,
        received(code(1), phone=phone(1), email=email(1)),
        received(code(2), phone=None, email=email(2)),
    )
    sms, mail_1, mail_2 = (
        f"{code(1)}:received:sms",
        f"{code(1)}:received:email",
        f"{code(2)}:received:email",
    )
    before = {
        c: counted("motcua_notifications_claim_lost_total", channel=c) for c in ("sms", "email")
    }
    gateway.hold.next(1)
    mailbox.hold.next(1)

    stalled = asyncio.create_task(first.dispatch_round())
    await gateway.hold.arrival()
    await mailbox.hold.arrival()
    clock.now += timedelta(seconds=61)
    assert await second.dispatch_round() == 1  # the SMS, resent under the same key
    assert await all_statuses(second) == {sms: "sent", mail_1: "unknown", mail_2: "unknown"}

    gateway.hold.released.set()
    mailbox.hold.released.set()
    assert await stalled == 3
    assert await all_statuses(first) == {sms: "sent", mail_1: "unknown", mail_2: "unknown"}
    for key in (mail_1, mail_2):
        row = await message(first, key)
        assert (row.last_error, row.attempts) == ("interrupted during send; not resent", 0)
    assert (await message(first, sms)).attempts == 1  # the second's send, not the first's
    assert gateway.request_ids == [sms, sms]  # the gateway keeps one: same reference id
    # One e-mail was held at the server; the other, waiting for the channel's one slot, was
    # never sent.
    [sent] = mailbox.message_ids
    assert sent in {message_id(mail_1, SENDER), message_id(mail_2, SENDER)}
    after = {
        c: counted("motcua_notifications_claim_lost_total", channel=c) for c in ("sms", "email")
    }
    assert after == {"sms": before["sms"] + 1, "email": before["email"] + 2}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged.count("claim lost") == 3
    for key in (sms, mail_1, mail_2):
        assert key in logged
    for personal in (phone(1), email(1), email(2), NAME):
        assert personal not in logged
    await first.runtime.db.dispose()
    await second.runtime.db.dispose()


async def test_a_round_cancelled_at_shutdown_puts_what_it_never_sent_back_in_the_queue(
    settings: Settings,
    notify_settings: NotifySettings,
    mailbox: SlowMailBox,
) -> None:
    """Shutdown mid-round: the e-mail in the middle of its send stays ``sending`` (it may
    have gone out: its lease decides), the one still waiting for the channel's slot is
    queued again, as if never claimed, instead of becoming ``unknown`` unsent."""
    clock = FakeClock(MONDAY_MORNING)
    notify = notify_settings.model_copy(update={"send_concurrency": 1})
    notifier = await make_notifier(settings, notify, clock)
    await feed(
        notifier,
        received(code(1), phone=None, email=email(1)),
        received(code(2), phone=None, email=email(2)),
    )
    mailbox.hold.next(1)
    stopping = asyncio.create_task(notifier.dispatch_round())
    await mailbox.hold.arrival()
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping

    after = await all_statuses(notifier)
    assert sorted(after.values()) == ["queued", "sending"]
    [waiting] = [k for k, s in after.items() if s == "queued"]
    row = await message(notifier, waiting)
    assert (row.attempts, row.claim, row.last_error) == (0, None, None)
    mailbox.hold.released.set()
    assert await notifier.dispatch_round() == 1  # the one never sent; the other waits
    assert mailbox.message_ids.count(message_id(waiting, SENDER)) == 1
    assert (await all_statuses(notifier))[waiting] == "sent"
    await notifier.runtime.db.dispose()
