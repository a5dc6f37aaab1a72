"""Notify's dispatcher works in batches (issue 14): one round claims its messages in one
statement, checks and records them in a few statements however many there are, and still
sends one recipient's messages one after another in due order.

Counted at the database (statements on ``message``) and at the development file sink
(one file per message, written in the order of the sends). No test asserts a duration.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from services.notify import app as notify_app
from services.notify import store
from services.notify.channels import Outgoing
from services.notify.channels.file import FileSink
from services.notify.settings import NotifySettings
from shared.calendar import VN_TZ
from shared.settings import Settings
from tests.component.test_notify_delivery import FakeClock, feed, make_notifier, received

MORNING = datetime(2026, 3, 2, 10, 0, tzinfo=VN_TZ)


def code(n: int) -> str:
    return f"000.00.00.H56-260302-{n:04d}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(var_dir=tmp_path, retry_backoff_seconds=0.0, retry_attempts=3)


@pytest.fixture
def sent_order(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys the file sink wrote, in the order their sends began and ended (a key
    twice: began, then ended)."""
    order: list[str] = []
    write = FileSink.send

    async def send(self: FileSink, message: Outgoing) -> str | None:
        order.append(message.key)
        await asyncio.sleep(0.001)  # let the other queues run meanwhile
        result = await write(self, message)
        order.append(message.key)
        return result

    monkeypatch.setattr(FileSink, "send", send)
    return order


def statements(notifier: notify_app.Notifier) -> Counter[str]:
    """Counts of the statements run on ``message`` from now on, by their first word."""
    seen: Counter[str] = Counter()

    def count(*args: Any) -> None:
        sql = str(args[2])
        if " message " in f" {sql} " or "message." in sql or "message\n" in sql:
            seen[sql.split(maxsplit=1)[0].upper()] += 1

    event.listen(notifier.runtime.db.engine.sync_engine, "before_cursor_execute", count)
    return seen


async def test_a_round_of_many_recipients_runs_a_few_statements(settings: Settings) -> None:
    notify = NotifySettings(sms_sinks="file", email_sinks="file", send_concurrency=16)
    notifier = await make_notifier(settings, notify, FakeClock(MORNING))
    await feed(notifier, *(received(code(n), phone=f"09000001{n:02d}") for n in range(60)))
    seen = statements(notifier)
    assert await notifier.dispatch_round() == 120  # an SMS and an e-mail each
    assert len(list((settings.var_dir / "messages").glob("*.json"))) == 120
    # Claimed in one UPDATE ... RETURNING; checks and records grouped: far fewer
    # statements than the two transactions a message it used to take.
    assert seen["UPDATE"] + seen["SELECT"] < 60, seen
    async with notifier.runtime.db.sessions() as session:
        for n in range(60):
            assert {m.status for m in await store.messages_of(session, code(n))} == {"sent"}
    await notifier.runtime.db.dispose()


async def test_one_recipients_messages_go_one_after_another_in_due_order(
    settings: Settings, sent_order: list[str]
) -> None:
    """Thirty receipts to one phone (and no e-mail): each send ends before the next
    begins, in the order the messages fell due, and the checks before them are shared."""
    notify = NotifySettings(sms_sinks="file", email_sinks="file", send_concurrency=16)
    clock = FakeClock(MORNING)
    notifier = await make_notifier(settings, notify, clock)
    for n in range(30):
        await feed(notifier, received(code(n), phone="0912345678", email=None))
        clock.now += timedelta(seconds=1)
    seen = statements(notifier)
    assert await notifier.dispatch_round() == 30
    keys = [f"{code(n)}:received:sms" for n in range(30)]
    assert sent_order == [key for key in keys for _ in (0, 1)]
    # The checks before the sends are shared (one per _CHECK_AHEAD messages): besides the
    # claim, the UPDATEs are the records (at most one each, often fewer), not a check and
    # a record each.
    assert seen["UPDATE"] <= 30 + 3, seen
    await notifier.runtime.db.dispose()
