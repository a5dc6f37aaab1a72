"""Notify end to end in one process: events in (in-memory broker, real SQLite), messages
out to a REAL local SMTP server (aiosmtpd) and a REAL local HTTP server standing in for
the brand-name SMS gateway, both on loopback.

The gateway stand-in behaves as the contract notify relies on: it answers
``{"code": "00", "message_id": ...}`` and delivers a given ``request_id`` once, however
often it is posted (that is what makes resending after a crash safe).
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlmodel import select

from services.notify import app as notify_app
from services.notify import process as notify_process
from services.notify import store
from services.notify.api import router
from services.notify.channels import FailoverSink, FileSink, HttpSmsSink, SmtpSink
from services.notify.digest import Digests
from services.notify.domain import Trigger
from services.notify.settings import NotifySettings
from shared.auth import Authenticator, Role
from shared.calendar import VN_TZ
from shared.events import (
    PAYLOAD_TYPES,
    Channel,
    Contact,
    DossierAction,
    DossierActionRecorded,
    DossierContact,
    DossierReceived,
    Envelope,
    Payload,
    SlaFinished,
    SlaWarning,
    TimeLimit,
)
from shared.keys_sync import key_lookup
from shared.service import answer_refusals
from shared.settings import Settings
from shared.topics import TopicSpec
from tests.factories import grant_key
from tests.standins import JsonPostServer

API_KEY = "test-key"
REPORT_TOKEN = "gateway-callback-secret"
PHONE = "0987654321"
EMAIL = "citizen@example.vn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the SMTP server -------------------------------------------------------------------


@dataclass
class MailBox:
    mails: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.mails.append(message_from_bytes(envelope.content, policy=default_policy))
        self.envelopes.append((envelope.mail_from or "", list(envelope.rcpt_tos)))
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[int, MailBox]]:
    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


# --- the SMS gateway stand-in ------------------------------------------------------------


@dataclass
class Gateway:
    requests: list[dict[str, Any]] = field(default_factory=list)
    delivered: dict[str, str] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, body: dict[str, Any], api_key: str | None) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.requests.append(body)
            if api_key != API_KEY:
                return 401, {"code": "401"}
            if self.fail_next:
                return self.fail_next.pop(0), {"code": "99"}
            reference = body["request_id"]
            self.delivered.setdefault(reference, body["message"])
            return 200, {"code": "00", "message_id": f"gw-{reference}"}


@pytest.fixture(scope="session")
def gateway_server() -> Iterator[tuple[str, Gateway]]:
    gateway = Gateway()
    with JsonPostServer(
        lambda body, headers, _path: gateway.answer(body, headers.get("X-API-Key"))
    ) as server:
        yield f"{server.base_url}/api/sms/send", gateway


@pytest.fixture
def mailbox(smtp_server: tuple[int, MailBox]) -> MailBox:
    smtp_server[1].mails.clear()
    smtp_server[1].envelopes.clear()
    return smtp_server[1]


@pytest.fixture
def gateway(gateway_server: tuple[str, Gateway]) -> Gateway:
    g = gateway_server[1]
    g.requests.clear()
    g.delivered.clear()
    g.fail_next.clear()
    return g


# --- notify under test --------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, retry_backoff_seconds=0.0, retry_attempts=3)


@pytest.fixture
def notify_settings(
    smtp_server: tuple[int, MailBox], gateway_server: tuple[str, Gateway]
) -> NotifySettings:
    return NotifySettings(
        sms_sinks="http",
        email_sinks="smtp",
        smtp_port=smtp_server[0],
        smtp_sender="motcua@motcua.test",
        sms_url=gateway_server[0],
        sms_api_key=SecretStr(API_KEY),
        sms_report_token=SecretStr(REPORT_TOKEN),
        backoff_seconds=0,
        max_attempts=4,
        sending_lease_seconds=60,
    )


async def make_notifier(
    settings: Settings, notify: NotifySettings, clock: FakeClock
) -> notify_app.Notifier:
    notifier = notify_process.build(settings, notify, clock=clock).notifier
    await notifier.runtime.db.create_tables(notifier.runtime.tables)
    return notifier


CODE = "000.00.00.H56-260302-0001"


def envelope(payload: Payload, code: str = CODE) -> Envelope:
    return Envelope.wrap(
        payload,
        occurred_at=datetime(2026, 3, 2, 9, 0, tzinfo=VN_TZ),
        source="test",
        dossier_code=code,
    )


def received(
    code: str = CODE, *, phone: str | None = PHONE, email: str | None = EMAIL
) -> tuple[Envelope, Envelope]:
    """The contact and the ``dossier.received`` intake publishes together."""
    at = datetime(2026, 3, 2, 9, 0, tzinfo=VN_TZ)
    contact = DossierContact(
        applicant=Contact(name="Trần Thị B", phone=phone, email=email),
        procedure_code="2.000635",
        receiving_unit="000.00.00.H56",
    )
    return envelope(contact, code), envelope(
        DossierReceived(
            procedure_code="2.000635",
            channel=Channel.COUNTER,
            receiving_unit="000.00.00.H56",
            received_at=at,
            due_at=datetime(2026, 3, 5, 9, 0, tzinfo=VN_TZ),
            field="Hộ tịch",
            time_limit=TimeLimit(value=Decimal(3), unit="working_days"),
            supplement_rule="pause",
            catalogue_version=1,
        ),
        code,
    )


def acted(kind: DossierAction, sequence: int, code: str = CODE, **extra: Any) -> Envelope:
    return envelope(
        DossierActionRecorded(
            action=kind,
            sequence=sequence,
            at=datetime(2026, 3, 3, 9, 0, tzinfo=VN_TZ),
            status="x",
            national_status=5,
            **extra,
        ),
        code,
    )


async def feed(notifier: notify_app.Notifier, *events: Envelope | tuple[Envelope, ...]) -> None:
    """Publish the events in order, each on its topic (a tuple: its events in order)."""
    flat = [e for item in events for e in (item if isinstance(item, tuple) else (item,))]
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        for event in flat:
            await broker.publish(event.encode(), topic_of(event).name, key=event.key)


def topic_of(event: Envelope) -> TopicSpec:
    """The topic an event travels on."""
    return PAYLOAD_TYPES[event.type].topic


def sla_warning(
    kind: str, code: str = CODE, *, office: str | None = None, hours: float = 0.0
) -> Envelope:
    due = datetime(2026, 3, 5, 9, 0, tzinfo=VN_TZ)
    return envelope(
        SlaWarning(kind=kind, office=office, due_at=due, working_hours_left=hours, at=due),
        code,
    )


def sla_finished(code: str = CODE) -> Envelope:
    return envelope(
        SlaFinished(
            outcome="late",
            finished_at=datetime(2026, 3, 5, 10, 0, tzinfo=VN_TZ),
            due_at=datetime(2026, 3, 5, 9, 0, tzinfo=VN_TZ),
            supplement_requests=0,
            extended=False,
            office="STP",
            procedure_code="2.000635",
            receiving_unit="000.00.00.H56",
            channel=Channel.COUNTER,
        ),
        code,
    )


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def statuses(notifier: notify_app.Notifier, code: str = CODE) -> dict[str, str]:
    return {m.key: m.status for m in await notifier.for_dossier(code)}


# --- the tests ------------------------------------------------------------------------------


async def test_receipt_arrives_by_sms_and_email_with_the_right_text(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    await feed(notifier, received())
    assert await notifier.dispatch_round() == 2

    [request] = gateway.requests
    assert request == {
        "phone": PHONE,
        "message": f"Ho so {CODE} da duoc tiep nhan. Hen tra ket qua: 09:00 05/03/2026. "
        "Tra cuu bang ma ho so.",
        "brandname": "MOTCUA",
        "request_id": f"{CODE}:received:sms",
    }
    [mail] = mailbox.mails
    assert mailbox.envelopes == [("motcua@motcua.test", [EMAIL])]
    assert mail["Subject"] == f"Tiếp nhận hồ sơ {CODE}"
    text = mail.get_content()
    assert "Kính gửi Trần Thị B," in text
    assert "Thời gian hẹn trả kết quả: 09 giờ 00 phút, ngày 05 tháng 03 năm 2026." in text
    assert await statuses(notifier) == {
        f"{CODE}:received:email": "sent",
        f"{CODE}:received:sms": "sent",
    }
    [sms] = [m for m in await notifier.for_dossier(CODE) if m.channel == "sms"]
    assert sms.provider_id == f"gw-{CODE}:received:sms"
    assert sms.sink == "http"


async def test_later_triggers_reach_the_stored_contact(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    new_due = datetime(2026, 3, 9, 16, 30, tzinfo=VN_TZ)
    await feed(notifier, received(email=None))
    await feed(
        notifier,
        acted(DossierAction.REQUEST_SUPPLEMENT, 1, reason="Thiếu tờ khai"),
        acted(DossierAction.SUBMIT_SUPPLEMENT, 2),
        acted(DossierAction.REQUEST_SUPPLEMENT, 3),
        acted(DossierAction.EXTEND, 4, new_due_at=new_due),
        envelope(
            SlaWarning(
                kind="overdue",
                due_at=new_due,
                working_hours_left=0.0,
                at=new_due,
            )
        ),
    )
    assert await notifier.dispatch_round() == 5
    await feed(notifier, acted(DossierAction.RESOLVE, 5))
    assert await notifier.dispatch_round() == 1
    by_ref = {r["request_id"]: r["message"] for r in gateway.requests}
    assert by_ref[f"{CODE}:supplement_requested#1:sms"] == (
        f"Ho so {CODE} can bo sung. Noi dung can bo sung xem tai Bo phan Mot cua "
        "hoac tra cuu bang ma ho so."
    )  # the clerk's reason stays at the counter and in the look-up, never in an SMS
    assert f"{CODE}:supplement_requested#3:sms" in by_ref
    assert "Hen tra moi: 16:30 09/03/2026" in by_ref[f"{CODE}:apology#4:sms"]
    assert "da qua han" in by_ref[f"{CODE}:overdue:sms"]
    assert "da co ket qua" in by_ref[f"{CODE}:result_ready#5:sms"]
    assert mailbox.mails == []


async def test_duplicate_events_send_once(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    event = received()
    resolve = acted(DossierAction.RESOLVE, 2)
    # The same events twice, and a second resolve event with the same sequence (a
    # re-published action gets a new event_id but keeps its per-dossier sequence).
    await feed(notifier, event, resolve, event, resolve, acted(DossierAction.RESOLVE, 2))
    assert await notifier.dispatch_round() == 4
    assert await notifier.dispatch_round() == 0
    assert len(gateway.requests) == 2
    assert len(mailbox.mails) == 2


async def test_gateway_failing_twice_then_succeeding_gives_one_delivery(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    gateway.fail_next = [503, 503]
    await feed(notifier, received(email=None))
    key = f"{CODE}:received:sms"
    assert await notifier.dispatch_round() == 1
    [message] = await notifier.for_dossier(CODE)
    assert (message.status, message.attempts, message.last_error) == (
        "queued",
        1,
        "http: gateway http 503",
    )
    assert await notifier.dispatch_round() == 1
    assert await notifier.dispatch_round() == 1
    assert await notifier.dispatch_round() == 0
    assert len(gateway.requests) == 3
    assert list(gateway.delivered) == [key]
    [message] = await notifier.for_dossier(CODE)
    assert (message.status, message.attempts, message.last_error) == ("sent", 3, None)


async def test_retries_wait_with_exponential_backoff_then_fail_with_the_reason(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    gateway: Gateway,
) -> None:
    notify = notify_settings.model_copy(update={"backoff_seconds": 10.0, "max_attempts": 3})
    notifier = await make_notifier(settings, notify, clock)
    gateway.fail_next = [500, 500, 500, 500]
    await feed(notifier, received(email=None))
    assert await notifier.dispatch_round() == 1  # fails; next try in 10 s
    clock.now += timedelta(seconds=9)
    assert await notifier.dispatch_round() == 0
    clock.now += timedelta(seconds=1)
    assert await notifier.dispatch_round() == 1  # fails; next try in 20 s
    clock.now += timedelta(seconds=19)
    assert await notifier.dispatch_round() == 0
    clock.now += timedelta(seconds=1)
    assert await notifier.dispatch_round() == 1  # third failure: gives up
    clock.now += timedelta(hours=1)
    assert await notifier.dispatch_round() == 0
    [message] = await notifier.for_dossier(CODE)
    assert (message.status, message.attempts) == ("failed", 3)
    assert message.last_error == "http: gateway http 500"
    assert gateway.delivered == {}


async def test_permanent_error_fails_at_once(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    gateway: Gateway,
) -> None:
    notify = notify_settings.model_copy(update={"sms_api_key": SecretStr("wrong")})
    notifier = await make_notifier(settings, notify, clock)
    await feed(notifier, received(email=None))
    assert await notifier.dispatch_round() == 1
    [message] = await notifier.for_dossier(CODE)
    assert (message.status, message.attempts, message.last_error) == (
        "failed",
        1,
        "http: gateway http 401",
    )


async def test_crash_between_send_and_record_does_not_send_twice(
    *,
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    await feed(notifier, received())

    async def crash(*_: object) -> None:
        raise RuntimeError("process killed")

    monkeypatch.setattr(notifier.dispatcher, "_record", crash)
    with pytest.raises(RuntimeError):
        await notifier.dispatch_round()
    assert len(gateway.requests) == 1
    assert len(mailbox.mails) == 1
    await notifier.runtime.db.dispose()

    # A new process on the same database. Within the lease, nothing is touched (another
    # dispatcher could still be sending).
    restarted = await make_notifier(settings, notify_settings, clock)
    assert await restarted.dispatch_round() == 0
    assert set((await statuses(restarted)).values()) == {"sending"}

    clock.now += timedelta(seconds=61)
    assert await restarted.dispatch_round() == 1  # only the SMS is resent
    assert await restarted.dispatch_round() == 0
    # The SMS went out again under the same reference id, which the gateway ignored:
    # one delivery. The e-mail was not resent: SMTP cannot de-duplicate.
    assert [r["request_id"] for r in gateway.requests] == [f"{CODE}:received:sms"] * 2
    assert len(gateway.delivered) == 1
    assert len(mailbox.mails) == 1
    assert await statuses(restarted) == {
        f"{CODE}:received:email": "unknown",
        f"{CODE}:received:sms": "sent",
    }


async def test_sms_is_held_in_quiet_hours_and_sent_after(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    clock.now = datetime(2026, 3, 2, 22, 15, tzinfo=VN_TZ)
    notifier = await make_notifier(settings, notify_settings, clock)
    await feed(notifier, received())
    assert await notifier.dispatch_round() == 1  # the e-mail only
    assert len(mailbox.mails) == 1
    assert gateway.requests == []
    clock.now = datetime(2026, 3, 3, 6, 59, tzinfo=VN_TZ)
    assert await notifier.dispatch_round() == 0
    clock.now = datetime(2026, 3, 3, 7, 0, tzinfo=VN_TZ)
    assert await notifier.dispatch_round() == 1
    assert len(gateway.requests) == 1


async def test_quiet_hours_do_not_hold_the_development_file_sink(
    settings: Settings, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 3, 2, 23, 0, tzinfo=VN_TZ)
    notifier = await make_notifier(settings, NotifySettings(), clock)
    await feed(notifier, received(email=None))
    assert await notifier.dispatch_round() == 1
    assert len(list((settings.var_dir / "messages").glob("*.json"))) == 1


async def test_a_failing_sink_fails_over_to_the_next(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    gateway: Gateway,
) -> None:
    down = notify_settings.model_copy(update={"sms_url": f"http://127.0.0.1:{free_port()}/x"})
    channels = {
        "sms": FailoverSink([HttpSmsSink(down), FileSink(settings.var_dir / "fallback")]),
        "email": FailoverSink([SmtpSink(notify_settings)]),
    }
    notifier = notify_process.build(
        settings, notify_settings, channels=channels, clock=clock
    ).notifier
    await notifier.runtime.db.create_tables(notifier.runtime.tables)
    await feed(notifier, received(email=None))
    assert await notifier.dispatch_round() == 1
    [message] = await notifier.for_dossier(CODE)
    assert (message.status, message.sink) == ("sent", "file")
    [written] = (settings.var_dir / "fallback").glob("*.json")
    assert CODE in written.read_text("utf-8")
    assert channels["sms"].resend_safe
    assert not channels["email"].resend_safe


async def test_switched_off_triggers_and_opt_outs_send_nothing(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    other = "000.00.00.H56-260302-0002"
    await notifier.set_toggle(Trigger.RECEIVED, False, procedure="2.000635", unit="*")
    await feed(notifier, received(), received(other, phone="0900000001", email=None))
    assert await notifier.dispatch_round() == 0
    assert await notifier.for_dossier(CODE) == []

    await notifier.opt_out(dossier=CODE, contact=None)
    await notifier.opt_out(dossier=None, contact="+84900000001")
    await feed(notifier, acted(DossierAction.RESOLVE, 1), acted(DossierAction.RESOLVE, 1, other))
    assert await notifier.dispatch_round() == 0
    assert set((await statuses(notifier)).values()) == {"suppressed"}
    assert set((await statuses(notifier, other)).values()) == {"suppressed"}
    assert gateway.requests == []
    assert mailbox.mails == []


async def test_api_shows_statuses_and_takes_delivery_reports(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    db = notifier.runtime.db
    app = FastAPI()
    answer_refusals(app)  # as create_http_app does
    app.include_router(router(notifier, Authenticator(key_lookup(db))))
    viewer = await grant_key(db, Role.VIEWER)
    admin = await grant_key(db, Role.ADMIN)
    await feed(notifier, received(email=None))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        [queued] = (
            await client.get("/api/v1/notifications", params={"dossier": CODE}, headers=viewer)
        ).json()
        assert queued["status"] == "queued"
        assert "recipient" not in queued
        assert "body" not in queued
        await notifier.dispatch_round()
        key = f"{CODE}:received:sms"
        forged = await client.post(  # the gateway's callback carries its token, no key
            "/api/v1/notifications/delivery-reports",
            json={"reference": key, "status": "failed"},
            headers={"X-Report-Token": "guessed"},
        )
        assert forged.status_code == 401
        answer = await client.post(
            "/api/v1/notifications/delivery-reports",
            json={"reference": key, "status": "delivered"},
            headers={"X-Report-Token": REPORT_TOKEN},
        )
        assert answer.status_code == 204
        [shown] = (
            await client.get("/api/v1/notifications", params={"dossier": CODE}, headers=viewer)
        ).json()
        assert shown["status"] == "delivered"
        assert shown["delivered_at"].endswith("+07:00")
        unknown = await client.post(
            "/api/v1/notifications/delivery-reports",
            json={"reference": "nope", "status": "delivered"},
            headers={"X-Report-Token": REPORT_TOKEN},
        )
        assert unknown.status_code == 404
        toggled = await client.put(
            "/api/v1/notifications/toggles",
            json={"trigger": "overdue", "enabled": False, "receiving_unit": "000.00.00.H56"},
            headers=admin,
        )
        assert toggled.status_code == 204
        toggles = (await client.get("/api/v1/notifications/toggles", headers=viewer)).json()
        assert toggles == [
            {
                "trigger": "overdue",
                "enabled": False,
                "procedure_code": "*",
                "receiving_unit": "000.00.00.H56",
            }
        ]


async def test_bodies_refuse_unknown_fields_and_overlong_values(
    settings: Settings, notify_settings: NotifySettings, clock: FakeClock
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    db = notifier.runtime.db
    app = FastAPI()
    answer_refusals(app)  # as create_http_app does
    app.include_router(router(notifier, Authenticator(key_lookup(db))))
    counter = await grant_key(db, Role.COUNTER)
    admin = await grant_key(db, Role.ADMIN)
    report = {"X-Report-Token": REPORT_TOKEN}
    refused = [
        ("post", "/opt-outs", {"dossier": CODE, "phone": PHONE}, counter, "phone"),
        ("post", "/opt-outs", {"contact": "0" * 201}, counter, "contact"),
        ("post", "/opt-outs/undo", {"dossier": "x" * 61}, counter, "dossier"),
        ("post", "/delivery-reports", {"reference": "k", "status": "failed", "x": 1}, report, "x"),
        (
            "post",
            "/delivery-reports",
            {"reference": "k" * 161, "status": "failed"},
            report,
            "reference",
        ),
        ("put", "/toggles", {"trigger": "overdue", "enabled": True, "on": 1}, admin, "on"),
        (
            "put",
            "/toggles",
            {"trigger": "overdue", "enabled": True, "procedure_code": "p" * 41},
            admin,
            "procedure_code",
        ),
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        for method, path, body, headers, field_name in refused:
            answer = await client.request(
                method, f"/api/v1/notifications{path}", json=body, headers=headers
            )
            assert answer.status_code == 422, (path, body)
            assert field_name in [e["loc"][-1] for e in answer.json()["detail"]], answer.json()


async def test_a_contact_opt_out_is_a_keyed_fingerprint_and_can_be_undone(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    db = notifier.runtime.db
    app = FastAPI()
    answer_refusals(app)  # as create_http_app does
    app.include_router(router(notifier, Authenticator(key_lookup(db))))
    admin = await grant_key(db, Role.ADMIN)  # a bare contact: every unit's dossiers
    secret_file = settings.var_dir / notify_process.OPT_OUT_SECRET_FILE
    assert secret_file.stat().st_mode & 0o777 == 0o600  # generated for development
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        opted = await client.post(
            "/api/v1/notifications/opt-outs", json={"contact": "+84987654321"}, headers=admin
        )
        assert opted.json() == {"suppressed": 0}
        async with db.sessions() as session:
            [stored] = (await session.exec(select(store.OptOut.target))).all()
        plain = hashlib.sha256(PHONE.encode()).hexdigest()
        assert stored.startswith("contact:")
        assert plain not in stored  # not the unsalted hash anyone can recompute
        await feed(notifier, received(email=None))
        assert set((await statuses(notifier)).values()) == {"suppressed"}

        undone = await client.post(
            "/api/v1/notifications/opt-outs/undo", json={"contact": PHONE}, headers=admin
        )
        assert undone.json() == {"removed": 1}
        again = await client.post(
            "/api/v1/notifications/opt-outs/undo", json={"contact": PHONE}, headers=admin
        )
        assert again.json() == {"removed": 0}
    await feed(notifier, acted(DossierAction.RESOLVE, 1))
    assert await notifier.dispatch_round() == 1  # the earlier one stays suppressed
    assert [r["request_id"] for r in gateway.requests] == [f"{CODE}:result_ready#1:sms"]


async def test_final_messages_lose_recipient_and_text_after_the_retention(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notify_settings = notify_settings.model_copy(update={"message_retention_days": 90})
    notifier = await make_notifier(settings, notify_settings, clock)
    await feed(notifier, received())
    assert await notifier.dispatch_round() == 2
    clock.now += timedelta(days=89)
    other = "000.00.00.H56-260302-0002"
    await feed(notifier, received(other, email=None))  # queued, not sent: kept whatever its age
    assert await notifier.purge_expired() == 0
    clock.now += timedelta(days=2)
    assert await notifier.purge_expired() == 2
    assert await notifier.purge_expired() == 0
    old = await notifier.for_dossier(CODE)
    assert {(m.channel, m.status, m.recipient, m.subject, m.body) for m in old} == {
        ("sms", "sent", "", None, ""),
        ("email", "sent", "", None, ""),
    }
    assert all(m.sent_at is not None for m in old)  # the history stays
    [kept] = await notifier.for_dossier(other)
    assert (kept.status, kept.recipient) == ("queued", PHONE)


async def test_contacts_past_the_retention_go_once_processing_ended(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notify_settings = notify_settings.model_copy(update={"message_retention_days": 90})
    notifier = await make_notifier(settings, notify_settings, clock)
    open_code = "000.00.00.H56-260302-0002"
    stopped = "000.00.00.H56-260302-0003"
    await feed(notifier, received(), received(open_code), received(stopped))
    await feed(notifier, acted(DossierAction.RESOLVE, 1))
    await feed(
        notifier, acted(DossierAction.STOP, 1, stopped), acted(DossierAction.RESUME, 2, stopped)
    )
    clock.now += timedelta(days=91)
    await notifier.purge_expired()
    assert await notifier.receiving_unit(CODE) is None  # ended 91 days ago: contact gone
    assert await notifier.receiving_unit(open_code) == UNIT  # still in process: kept
    assert await notifier.receiving_unit(stopped) == UNIT  # resumed: in process again


async def test_a_notice_before_its_contact_waits_for_it_and_keeps_its_order(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    """The contact travels on its own topic: the lifecycle may be read first."""
    notifier = await make_notifier(settings, notify_settings, clock)
    contact, receipt = received(email=None)
    waited = counted("motcua_notifications_unaddressed_total", trigger="received")
    await feed(notifier, receipt, receipt)
    clock.now += timedelta(minutes=1)
    await feed(notifier, acted(DossierAction.REQUEST_PAYMENT, 1))  # its key sorts first
    assert await notifier.dispatch_round() == 0
    assert await notifier.for_dossier(CODE) == []
    assert counted("motcua_notifications_unaddressed_total", trigger="received") == waited + 1

    clock.now += timedelta(minutes=5)
    await feed(notifier, contact)
    assert await notifier.dispatch_round() == 2
    assert [r["request_id"] for r in gateway.requests] == [
        f"{CODE}:received:sms",
        f"{CODE}:payment_requested#1:sms",
    ]
    await feed(notifier, contact, receipt)  # again: nothing waits, nothing twice
    assert await notifier.dispatch_round() == 0
    assert len(gateway.requests) == 2


async def test_a_notice_parked_beside_its_stored_contact_is_released(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    """Another notify process parked it while this one stored the contact (neither saw
    the other's transaction): the periodic release queues it."""
    notifier = await make_notifier(settings, notify_settings, clock)
    contact, _ = received(email=None)
    await feed(notifier, contact)
    async with notifier.runtime.db.transaction() as session:
        session.add(
            store.WaitingNotice(
                key=f"{CODE}:received",
                dossier_code=CODE,
                trigger="received",
                occurrence="",
                facts={"due_short": "09:00 05/03/2026"},
                created_at=clock.now,
            )
        )
    assert await notifier.release_waiting() == 1
    assert await notifier.release_waiting() == 0
    assert await notifier.dispatch_round() == 1
    assert [r["request_id"] for r in gateway.requests] == [f"{CODE}:received:sms"]


async def test_a_lateness_notice_waiting_for_its_contact_is_dropped_when_processing_ends(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    contact, receipt = received(email=None)
    await feed(notifier, receipt, sla_warning("overdue"), acted(DossierAction.RESOLVE, 1))
    await feed(notifier, contact)
    await notifier.dispatch_round()
    sent = {r["request_id"] for r in gateway.requests}
    assert f"{CODE}:overdue:sms" not in sent
    assert f"{CODE}:received:sms" in sent


async def test_lateness_warnings_that_come_after_the_result_are_never_sent(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    await Digests(notifier).set_head(UNIT, name="Lê Văn C", email=HEAD_EMAIL)
    contact, receipt = received(email=None)
    await feed(notifier, (contact, receipt), acted(DossierAction.RESOLVE, 1))
    # sla's warnings travel on their own topic: here they come in later batches
    await feed(notifier, sla_warning("overdue"), sla_warning("apology_needed"))
    await notifier.dispatch_round()
    assert await statuses(notifier) == {
        f"{CODE}:received:sms": "sent",
        f"{CODE}:result_ready#1:sms": "sent",
        f"{CODE}:overdue:sms": "superseded",
        f"{CODE}:office_warning:email": "superseded",
    }
    sent = {r["request_id"] for r in gateway.requests}
    assert sent == {f"{CODE}:received:sms", f"{CODE}:result_ready#1:sms"}
    assert mailbox.mails == []


async def test_a_contract_1_event_still_brings_its_contact(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    """A ``dossier.received`` written before contacts had their own topic (in a topic or
    an outbox at the upgrade) carried the applicant: its receipt is still sent."""
    notifier = await make_notifier(settings, notify_settings, clock)
    _, receipt = received(email=None)
    legacy = receipt.model_copy(
        update={"payload": {**receipt.payload, "applicant": {"name": "B", "phone": PHONE}}}
    )
    await feed(notifier, legacy)
    assert await notifier.dispatch_round() == 1
    assert [r["phone"] for r in gateway.requests] == [PHONE]


# --- office warnings and superseded messages ----------------------------------------------

HEAD_EMAIL = "truong.phong@h56.gov.vn"
UNIT = "000.00.00.H56"


async def test_apology_needed_emails_the_office_head_once_and_tells_the_citizen_nothing(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    await Digests(notifier).set_head(UNIT, name="Lê Văn C", email=HEAD_EMAIL)
    await feed(notifier, received())
    assert await notifier.dispatch_round() == 2
    mailbox.mails.clear()
    mailbox.envelopes.clear()
    gateway.requests.clear()
    warned = counted("motcua_office_warnings_total", kind="apology_needed", office="")

    warning = sla_warning("apology_needed", hours=2.5)
    await feed(notifier, warning)
    assert await notifier.dispatch_round() == 1
    assert gateway.requests == []
    [mail] = mailbox.mails
    assert mailbox.envelopes == [("motcua@motcua.test", [HEAD_EMAIL])]
    assert mail["Subject"] == (f"Hồ sơ {CODE} sắp đến hạn trả kết quả: cần chuẩn bị thư xin lỗi")
    text = mail.get_content()
    assert "Kính gửi Lê Văn C," in text
    assert f"Hồ sơ {CODE} (thủ tục 2.000635 - Cấp bản sao trích lục hộ tịch)" in text
    assert "thời hạn trả kết quả: 09 giờ 00 phút, ngày 05 tháng 03 năm 2026." in text
    assert "Thời gian làm việc còn lại: 2 giờ 30 phút." in text
    for personal in ("Trần Thị B", PHONE, EMAIL):
        assert personal not in text
    assert counted("motcua_office_warnings_total", kind="apology_needed", office="") == (warned + 1)

    # The same event again, and the warning re-published under a new event id.
    await feed(notifier, warning, sla_warning("apology_needed", hours=2.5))
    assert await notifier.dispatch_round() == 0
    assert len(mailbox.mails) == 1
    assert await statuses(notifier) == {
        f"{CODE}:received:email": "sent",
        f"{CODE}:received:sms": "sent",
        f"{CODE}:office_warning:email": "sent",
    }


async def test_the_warned_offices_head_comes_before_the_receiving_units(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    digests = Digests(notifier)
    await digests.set_head(UNIT, name="Lê Văn C", email=HEAD_EMAIL)
    await digests.set_head("STP", name="Phạm Thị D", email="giam.doc@stp.gov.vn")
    other = "000.00.00.H56-260302-0002"
    await feed(
        notifier,
        received(email=None, phone=None),
        received(other, email=None, phone=None),
        sla_warning("apology_needed", office="STP"),
        sla_warning("apology_needed", other, office="SXD"),  # no head on file for SXD
    )
    # A citizen's opt-out covers messages to the citizen, not the office's warning.
    assert await notifier.opt_out(dossier=CODE, contact=None) == 0
    assert await notifier.dispatch_round() == 2
    assert sorted(rcpt for _, [rcpt] in mailbox.envelopes) == [
        "giam.doc@stp.gov.vn",
        HEAD_EMAIL,
    ]
    [to_stp] = [m for m in mailbox.mails if m["To"] == "giam.doc@stp.gov.vn"]
    assert CODE in to_stp["Subject"]
    assert "Cơ quan đang giải quyết: STP." in to_stp.get_content()


async def test_apology_needed_without_a_head_queues_nothing_and_counts_it(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
    gateway: Gateway,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    before = counted("motcua_office_warnings_unaddressed_total", kind="apology_needed")
    await feed(notifier, received(email=None), sla_warning("apology_needed", office="STP"))
    assert await notifier.dispatch_round() == 1
    assert await statuses(notifier) == {f"{CODE}:received:sms": "sent"}
    assert [r["request_id"] for r in gateway.requests] == [f"{CODE}:received:sms"]
    assert mailbox.mails == []
    after = counted("motcua_office_warnings_unaddressed_total", kind="apology_needed")
    assert after == before + 1


@pytest.mark.parametrize(
    "ending",
    [
        acted(DossierAction.RESOLVE, 1),
        acted(DossierAction.WITHDRAW, 1),
        acted(DossierAction.STOP, 1),
        sla_finished(),
    ],
    ids=["resolve", "withdraw", "stop", "sla.finished"],
)
async def test_an_overdue_sms_held_for_quiet_hours_is_not_sent_once_processing_ended(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    gateway: Gateway,
    ending: Envelope,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    await feed(notifier, received(email=None))
    assert await notifier.dispatch_round() == 1
    clock.now = datetime(2026, 3, 5, 21, 30, tzinfo=VN_TZ)  # sla was late to say it
    await feed(notifier, sla_warning("overdue"))
    assert await notifier.dispatch_round() == 0  # held: quiet hours
    assert (await statuses(notifier))[f"{CODE}:overdue:sms"] == "queued"

    await feed(notifier, ending)
    clock.now = datetime(2026, 3, 6, 7, 0, tzinfo=VN_TZ)
    while await notifier.dispatch_round():
        pass
    assert (await statuses(notifier))[f"{CODE}:overdue:sms"] == "superseded"
    assert f"{CODE}:overdue:sms" not in {r["request_id"] for r in gateway.requests}


async def test_an_overdue_sms_waiting_for_a_retry_is_not_sent_after_the_result(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    gateway: Gateway,
) -> None:
    notify = notify_settings.model_copy(update={"backoff_seconds": 60.0})
    notifier = await make_notifier(settings, notify, clock)
    await feed(notifier, received(email=None))
    assert await notifier.dispatch_round() == 1
    gateway.fail_next = [503]
    await feed(notifier, sla_warning("overdue"))
    assert await notifier.dispatch_round() == 1  # fails: retried in a minute
    assert (await statuses(notifier))[f"{CODE}:overdue:sms"] == "queued"
    await feed(notifier, acted(DossierAction.RESOLVE, 1))
    clock.now += timedelta(minutes=5)
    assert await notifier.dispatch_round() == 1  # the result, not the overdue retry
    assert await statuses(notifier) == {
        f"{CODE}:received:sms": "sent",
        f"{CODE}:overdue:sms": "superseded",
        f"{CODE}:result_ready#1:sms": "sent",
    }
    assert list(gateway.delivered) == [f"{CODE}:received:sms", f"{CODE}:result_ready#1:sms"]


async def test_a_queued_office_warning_is_superseded_by_the_result_in_the_same_batch(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    mailbox: MailBox,
) -> None:
    notifier = await make_notifier(settings, notify_settings, clock)
    await Digests(notifier).set_head(UNIT, name="Lê Văn C", email=HEAD_EMAIL)
    await feed(
        notifier,
        received(email=None, phone=None),
        sla_warning("apology_needed"),
        acted(DossierAction.RESOLVE, 1),
    )
    assert await notifier.dispatch_round() == 0
    assert mailbox.mails == []
    assert await statuses(notifier) == {f"{CODE}:office_warning:email": "superseded"}
