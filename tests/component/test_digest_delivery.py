"""The office heads' digest end to end in one process: report events through notify's
consumer (in-memory broker, real SQLite), the scheduler on an injected clock, and the
e-mail through the dispatcher to a REAL local SMTP server (aiosmtpd) on loopback.

The events and their hand-counted March figures are those of ``test_reports_sla``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from sqlmodel import select

from services.notify import app as notify_app
from services.notify import process as notify_process
from services.notify import store
from services.notify.digest import Digests
from services.notify.digest.api import router
from services.notify.digest.domain import parse_period
from services.notify.settings import NotifySettings
from shared.auth import Authenticator
from shared.calendar import VN_TZ, load_calendar
from shared.events import Envelope
from shared.keys_sync import key_lookup
from shared.service import answer_refusals
from shared.settings import Settings
from shared.topics import DOSSIER_LIFECYCLE, DOSSIER_SLA
from tests.component.test_reports_sla import FIXTURE, UNIT_A, UNIT_B, a, received, warning
from tests.factories import grant_key

HEAD_NAME = "Lê Văn Trưởng"
HEAD_EMAIL = "truong.phong@example.vn"
KEY_A = f"digest:{UNIT_A}:2026-03"
BEFORE_DUE = datetime(2026, 4, 1, 7, 29, tzinfo=VN_TZ)  # 1 April 2026: a Wednesday
DUE = datetime(2026, 4, 1, 7, 30, tzinfo=VN_TZ)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MailBox:
    mails: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpEnvelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.mails.append(message_from_bytes(envelope.content, policy=default_policy))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[tuple[int, MailBox]]:
    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[int, MailBox]) -> MailBox:
    smtp_server[1].mails.clear()
    smtp_server[1].recipients.clear()
    return smtp_server[1]


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(BEFORE_DUE)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, retry_backoff_seconds=0.0, retry_attempts=3)


@pytest.fixture
def notify_settings(smtp_server: tuple[int, MailBox]) -> NotifySettings:
    return NotifySettings(
        sms_sinks="file",
        email_sinks="smtp",
        smtp_port=smtp_server[0],
        smtp_sender="motcua@motcua.test",
        backoff_seconds=0,
    )


@pytest.fixture
def is_working_day(tmp_path: Path) -> Callable[[date], bool]:
    return load_calendar("default", tmp_path).is_working_day


@dataclass
class Notify:
    """One notify process: its notifier (consumer, dispatcher) and its digests."""

    notifier: notify_app.Notifier
    digests: Digests


@pytest.fixture
def start(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    is_working_day: Callable[[date], bool],
) -> Callable[[], Awaitable[Notify]]:
    async def started() -> Notify:
        notifier = notify_process.build(settings, notify_settings, clock=clock).notifier
        await notifier.runtime.db.create_tables(notifier.runtime.tables)
        return Notify(notifier, Digests(notifier, is_working_day=is_working_day))

    return started


async def feed(notifier: notify_app.Notifier, events: list[Envelope] = FIXTURE) -> None:
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        for event in events:
            topic = DOSSIER_SLA if event.type.startswith("sla.") else DOSSIER_LIFECYCLE
            await broker.publish(event.encode(), topic.name, key=event.key)


def plain(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def html(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


async def test_digest_arrives_once_at_the_send_time_with_the_figures_and_overdue_list(
    start: Callable[[], Awaitable[Notify]], clock: FakeClock, mailbox: MailBox
) -> None:
    notify: Notify = await start()
    await feed(notify.notifier)
    await notify.digests.set_head(UNIT_A, name=HEAD_NAME, email=HEAD_EMAIL)

    assert await notify.digests.run_due() == []
    assert await notify.notifier.dispatch_round() == 0
    clock.now = DUE
    assert await notify.digests.run_due() == [KEY_A]
    assert await notify.notifier.dispatch_round() == 1

    [mail] = mailbox.mails
    assert mailbox.recipients == [[HEAD_EMAIL]]
    assert mail["Subject"] == f"Báo cáo giải quyết hồ sơ tháng 03/2026 - {UNIT_A}"
    assert mail["X-Motcua-Key"] == KEY_A
    text = plain(mail)
    assert text.startswith(f"Kính gửi {HEAD_NAME},")
    # The hand-counted March figures of unit A (EXPECTED_A in test_reports_sla).
    for line in (
        "từ ngày 01/03/2026 đến ngày 31/03/2026",
        "1. Số hồ sơ tiếp nhận: 9 (kỳ trước chuyển sang: 2; tiếp nhận mới: 7)",
        "2. Số hồ sơ đã giải quyết: 4 (trước hạn: 2; đúng hạn: 1; quá hạn: 1)",
        "3. Số hồ sơ đang giải quyết cuối kỳ: 4 (trong hạn: 2; quá hạn: 2)",
        "4. Tỷ lệ giải quyết trước hạn và đúng hạn: 75,00%",
        "5. Tỷ lệ đúng hạn theo Quyết định 766/QĐ-TTg: 37,50%",
        "Hồ sơ đang quá hạn tính đến 07:30 01/04/2026: 1\n",
        f"- {a(3)} | 2.000635 - Cấp bản sao trích lục hộ tịch | hạn trả: 09:00 02/03/2026",
    ):
        assert line in text
    # Unit B's overdue dossier is not unit A's business; no citizen's name is in it.
    assert UNIT_B not in text
    assert "Trần Thị B" not in text
    page = html(mail)
    assert f"<td>{a(3)}</td>" in page
    assert '<td>Tỷ lệ giải quyết trước hạn và đúng hạn</td><td align="right">75,00%</td>' in page

    [row] = await notify.notifier.for_dossier("")
    assert (row.key, row.trigger, row.status, row.sink) == (KEY_A, "digest", "sent", "smtp")


# Apology letters needed as of 1 April 2026: A6 and A7 (due 3 and 5 April). Unit B's
# dossier, though warned to unit A's office, is unit B's (the receiving unit's) business,
# as in the overdue list; A3 is overdue already, so in that list only.
APOLOGY = [
    warning(a(6), "apology_needed", "2026-04-03"),
    warning(a(7), "apology_needed", "2026-04-05"),
    received(f"{UNIT_B}-260330-0001", UNIT_B, "2026-03-30", "2026-04-02"),
    warning(f"{UNIT_B}-260330-0001", "apology_needed", "2026-04-02", office=UNIT_A),
    warning(a(3), "apology_needed", "2026-03-02"),
]


async def test_digest_lists_the_units_dossiers_needing_the_apology_letter(
    start: Callable[[], Awaitable[Notify]], clock: FakeClock, mailbox: MailBox
) -> None:
    clock.now = DUE
    notify: Notify = await start()
    await feed(notify.notifier, [*FIXTURE, *APOLOGY])
    await notify.digests.set_head(UNIT_A, name=HEAD_NAME, email=HEAD_EMAIL)
    assert await notify.digests.run_due() == [KEY_A]
    assert await notify.notifier.dispatch_round() == 1

    [mail] = mailbox.mails
    text = plain(mail)
    procedure = "2.000635 - Cấp bản sao trích lục hộ tịch"
    apology = text.split("Hồ sơ cần thư xin lỗi (Mẫu số 04) trước hạn trả, ")[1]
    assert apology.startswith("tính đến 07:30 01/04/2026: 2\n")
    assert apology.index(f"- {a(6)} | {procedure} | hạn trả: 09:00 03/04/2026") < apology.index(
        f"- {a(7)} | {procedure} | hạn trả: 09:00 05/04/2026"
    )
    assert f"- {a(3)} |" not in apology  # overdue: in the list above only
    assert f"- {a(3)} | {procedure} | hạn trả: 09:00 02/03/2026" in text
    assert UNIT_B not in text
    assert "Trần Thị B" not in text
    page = html(mail)
    assert page.index("Hồ sơ cần thư xin lỗi (Mẫu số 04)") < page.index(f"<td>{a(6)}</td>")


async def test_the_apology_list_keeps_to_the_digest_limit(
    settings: Settings,
    notify_settings: NotifySettings,
    clock: FakeClock,
    is_working_day: Callable[[date], bool],
    mailbox: MailBox,
) -> None:
    clock.now = DUE
    limited = notify_settings.model_copy(update={"digest_overdue_limit": 1})
    notifier = notify_process.build(settings, limited, clock=clock).notifier
    await notifier.runtime.db.create_tables(notifier.runtime.tables)
    digests = Digests(notifier, is_working_day=is_working_day)
    await feed(notifier, [*FIXTURE, *APOLOGY])
    await digests.set_head(UNIT_A, name=HEAD_NAME, email=HEAD_EMAIL)
    assert await digests.run_due() == [KEY_A]
    assert await notifier.dispatch_round() == 1

    text = plain(mailbox.mails[0])
    assert (
        "Hồ sơ cần thư xin lỗi (Mẫu số 04) trước hạn trả, tính đến 07:30 01/04/2026: 1+ "
        "(chỉ liệt kê 1 hồ sơ gần hạn nhất)"
    ) in text
    assert f"- {a(6)} |" in text
    assert f"- {a(7)} |" not in text


async def test_a_second_round_and_a_restart_do_not_send_again(
    start: Callable[[], Awaitable[Notify]], clock: FakeClock, mailbox: MailBox
) -> None:
    clock.now = DUE
    first: Notify = await start()
    await feed(first.notifier)
    await first.digests.set_head(UNIT_A, name=HEAD_NAME, email=HEAD_EMAIL)
    assert await first.digests.run_due() == [KEY_A]
    assert await first.notifier.dispatch_round() == 1

    clock.now = datetime(2026, 4, 20, 9, 0, tzinfo=VN_TZ)  # still March's digest due
    assert await first.digests.run_due() == []
    assert await first.digests.queue(parse_period("2026-03"), unit=UNIT_A) == []
    assert await first.notifier.dispatch_round() == 0
    await first.notifier.runtime.db.dispose()

    restarted: Notify = await start()
    assert await restarted.digests.run_due() == []
    assert await restarted.notifier.dispatch_round() == 0
    assert len(mailbox.mails) == 1

    # May's digest is a new key: due on the first working day of June.
    clock.now = datetime(2026, 6, 1, 7, 30, tzinfo=VN_TZ)
    assert await restarted.digests.run_due() == [f"digest:{UNIT_A}:2026-05"]


async def test_two_instances_queue_and_send_the_digest_once(
    start: Callable[[], Awaitable[Notify]], clock: FakeClock, mailbox: MailBox
) -> None:
    clock.now = DUE
    one: Notify = await start()
    two: Notify = await start()
    await feed(one.notifier)
    await one.digests.set_head(UNIT_A, name=HEAD_NAME, email=HEAD_EMAIL)
    queued = [*await one.digests.run_due(), *await two.digests.run_due()]
    assert queued == [KEY_A]
    sent = await two.notifier.dispatch_round() + await one.notifier.dispatch_round()
    assert sent == 1
    assert len(mailbox.mails) == 1
    async with one.notifier.runtime.db.sessions() as session:
        keys = (await session.exec(select(store.MessageHtml.key))).all()
    assert keys == [KEY_A]


async def test_no_head_sends_nothing_and_says_so_without_personal_data(
    start: Callable[[], Awaitable[Notify]],
    clock: FakeClock,
    mailbox: MailBox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock.now = DUE
    notify: Notify = await start()
    await feed(notify.notifier)
    with caplog.at_level(logging.INFO, logger="services.notify.digest"):
        assert await notify.digests.run_due() == []
    assert await notify.notifier.dispatch_round() == 0
    assert mailbox.mails == []
    assert "digest 2026-03: no office head configured; no digest queued" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="services.notify.digest"):
        assert await notify.digests.run_due() == []
    assert caplog.text == ""  # said once per process and period, not every round

    await notify.digests.set_head(UNIT_A, name=HEAD_NAME, email=HEAD_EMAIL)
    with caplog.at_level(logging.INFO, logger="services.notify.digest"):
        assert await notify.digests.run_due() == [KEY_A]
        assert await notify.digests.run_due() == []
        assert await notify.digests.queue(parse_period("2026-03"), unit=UNIT_B) == []
    # Unit B counts dossiers in March but has no head: said once, and when asked by hand.
    assert caplog.messages == [
        f"digest 2026-03: no office head for unit(s) {UNIT_B}; their digest is not sent",
        f"digest 2026-03: no office head configured for unit {UNIT_B}; no digest queued "
        "(add one with `motcua notify heads add`)",
    ]
    assert HEAD_EMAIL not in caplog.text
    assert HEAD_NAME not in caplog.text
    assert await notify.notifier.dispatch_round() == 1
    assert mailbox.recipients == [[HEAD_EMAIL]]


async def test_heads_are_managed_over_http(start: Callable[[], Awaitable[Notify]]) -> None:
    notify: Notify = await start()
    db = notify.notifier.runtime.db
    app = FastAPI()
    answer_refusals(app)  # as create_http_app does
    app.include_router(router(notify.digests, Authenticator(key_lookup(db))))
    admin = await grant_key(db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://notify", headers=admin
    ) as http:
        head = {"unit": UNIT_A, "name": HEAD_NAME, "email": HEAD_EMAIL}
        assert (await http.put("/api/v1/notifications/heads", json=head)).status_code == 204
        bad = {**head, "email": "not-an-address"}
        refused = await http.put("/api/v1/notifications/heads", json=bad)
        assert refused.status_code == 422
        assert (await http.get("/api/v1/notifications/heads")).json() == [head]
        queued = await http.post("/api/v1/notifications/digests", json={"period": "2026-03"})
        assert queued.json() == {"queued": [KEY_A]}
        wrong = await http.post("/api/v1/notifications/digests", json={"period": "March"})
        assert wrong.status_code == 422
        gone = await http.delete("/api/v1/notifications/heads", params={"unit": UNIT_A})
        assert gone.status_code == 204
        again = await http.delete("/api/v1/notifications/heads", params={"unit": UNIT_A})
        assert again.status_code == 404
        assert (await http.get("/api/v1/notifications/heads")).json() == []
