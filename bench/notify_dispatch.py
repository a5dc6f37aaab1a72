"""Notify's dispatcher alone: N queued SMS in a fresh SQLite notify database, sent through
the development file sink by ``Dispatcher.dispatch_round`` until none is left; prints the
rate, the statements run on ``message``, and the process's CPU.

``--recipients 1``: every message to one phone (as ``bench/pipeline.py`` sends them: one
recipient's messages go one after another); ``--recipients N``: one phone each.

    .venv/bin/python bench/notify_dispatch.py [--messages N] [--recipients R]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from services.notify import process, store
from services.notify.settings import NotifySettings
from shared.settings import Settings

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)  # 10:00 in Vietnam: no quiet hours


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--recipients", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        built = process.build(
            Settings(var_dir=Path(tmp)),
            NotifySettings(sms_sinks="file", email_sinks="file"),
            clock=lambda: NOW,
        )
        db = built.notifier.runtime.db
        await db.create_tables(built.notifier.runtime.tables)
        async with db.transaction() as session:
            await store.queue_messages(
                session, [_row(n, args.recipients) for n in range(args.messages)]
            )
        seen: Counter[str] = Counter()

        def count(*event_args: Any) -> None:
            seen[
                str(event_args[2]).split(maxsplit=1)[0] + (" (many)" if event_args[5] else "")
            ] += 1

        event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        cpu, started, sent = time.process_time(), time.perf_counter(), 0
        while claimed := await built.notifier.dispatcher.dispatch_round():
            sent += claimed
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"{sent:,} sent in {wall:.1f} s ({sent / wall:,.0f}/s), CPU {cpu:.1f} s "
            f"({cpu / sent * 1e6:,.0f} µs a message), load {os.getloadavg()[0]:.1f}"
        )
        print("statements:", dict(seen))
        await db.dispose()


def _row(n: int, recipients: int) -> dict[str, object]:
    code = f"000.00.00.H56-261202-{n:06d}"
    return {
        "key": f"{code}:received:sms",
        "dossier_code": code,
        "trigger": "received",
        "channel": "sms",
        "recipient": f"09{n % recipients:08d}",
        "subject": None,
        "body": f"Ho so {code} da duoc tiep nhan.",
        "status": store.QUEUED,
        "attempts": 0,
        "created_at": NOW,
        "next_attempt_at": NOW,
    }


if __name__ == "__main__":
    asyncio.run(main())
