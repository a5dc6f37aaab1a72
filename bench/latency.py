"""Latency from the counter to the citizen's phone: ``POST /api/v1/dossiers`` → the
``received`` SMS handed to the gateway, at a steady rate, on the real local stack.

Starts the broker and the four services (SQLite files, or PostgreSQL schemas with
``--postgres URL``) with notify sending SMS over HTTP to a stand-in gateway served here
on loopback, whose clock stamps each receipt when it arrives. Posts ``--rate`` dossiers a
second for ``--seconds`` (each applicant with a phone of their own; each on its own
schedule, not waiting for the previous one: a slow answer does not lower the rate), then
waits for every receipt and prints the percentiles of (receipt at the gateway − the
POST's start). The stack's clock starts on a working Wednesday morning, so the receipts
are not held for the night whatever the hour the bench runs at.

    .venv/bin/python bench/latency.py [--rate 100] [--seconds 30] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sqlite3
import tempfile
import threading
import time
import uuid
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from benchkit import dossier, machine, percentile

from motcua.stack import Stack
from shared.auth import API_KEY_HEADER
from shared.calendar import VN_TZ

WEDNESDAY_MORNING = datetime(2026, 12, 2, 9, 0, tzinfo=VN_TZ)
GATEWAY_KEY = "bench-sms-key"


class Gateway:
    """A stand-in SMS gateway: answers ``{"code": "00"}`` and keeps, per dossier, the
    ``time.perf_counter()`` at which its first ``received`` SMS arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        lock = threading.Lock()
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                now = time.perf_counter()
                body: dict[str, Any] = json.loads(
                    self.rfile.read(int(self.headers.get("content-length", "0")))
                )
                code, trigger, *_ = str(body["request_id"]).split(":")
                if trigger == "received":
                    with lock:
                        arrived.setdefault(code, now)
                raw = b'{"code": "00", "message_id": "bench"}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.2,), daemon=True).start()

    def env(self) -> dict[str, str]:
        """Notify's settings to send SMS here only."""
        port = self._server.server_address[1]
        return {
            "MOTCUA_NOTIFY_SMS_SINKS": "http",
            "MOTCUA_NOTIFY_SMS_URL": f"http://127.0.0.1:{port}/api/sms/send",
            "MOTCUA_NOTIFY_SMS_API_KEY": GATEWAY_KEY,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


async def post_steadily(
    base: str, key: str, rate: float, seconds: float
) -> tuple[dict[str, float], int, list[float]]:
    """Post ``rate`` dossiers a second for ``seconds``; return (code → the POST's start,
    errors, answer latencies)."""
    started: dict[str, float] = {}
    answers: list[float] = []
    errors = 0
    async with httpx.AsyncClient(
        base_url=base, headers={API_KEY_HEADER: key}, timeout=60
    ) as client:

        async def one(n: int) -> None:
            nonlocal errors
            begun = time.perf_counter()
            response = await client.post("/api/v1/dossiers", json=dossier(n))
            answers.append(time.perf_counter() - begun)
            if response.status_code != 201:
                errors += 1
                return
            started[str(response.json()["code"])] = begun

        tasks: list[asyncio.Task[None]] = []
        origin = time.perf_counter()
        for n in range(round(rate * seconds)):
            await asyncio.sleep(max(0.0, origin + n / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return started, errors, answers


async def wait_for(gateway: Gateway, codes: set[str], within: float) -> None:
    """Until every one of ``codes`` has its receipt, or ``within`` seconds."""
    for _ in range(round(within / 0.2)):
        if codes <= gateway.arrived.keys():
            return
        await asyncio.sleep(0.2)


STAGES = (
    "reception to relay (intake's outbox row committed -> published)",
    "broker to notify (published -> notify's batch applied)",
    "queued to claimed (notify's dispatcher picks the SMS up)",
    "claimed to sent (the gateway's HTTP answer)",
)


def stages(var_dir: Path, codes: set[str]) -> list[list[float]]:
    """Each dossier's time in each of ``STAGES`` (seconds), from the timestamps the
    services wrote on the stack's one clock (SQLite files only): intake's outbox rows of
    the dossier (its contact and its reception: notify needs both), and notify's
    ``received`` SMS."""
    with sqlite3.connect(f"file:{var_dir / 'intake.db'}?mode=ro", uri=True) as intake:
        relayed = {
            key: (datetime.fromisoformat(first), datetime.fromisoformat(last))
            for key, first, last in intake.execute(
                "SELECT key, min(created_at), max(sent_at) FROM outbox "
                "WHERE sent_at IS NOT NULL GROUP BY key"
            )
        }
    with sqlite3.connect(f"file:{var_dir / 'notify.db'}?mode=ro", uri=True) as notify:
        sms = {
            code: tuple(datetime.fromisoformat(t) for t in times)
            for code, *times in notify.execute(
                "SELECT dossier_code, created_at, claimed_at, sent_at FROM message "
                "WHERE trigger = 'received' AND channel = 'sms' AND sent_at IS NOT NULL"
            )
        }
    out: list[list[float]] = [[] for _ in STAGES]
    for code in codes & relayed.keys() & sms.keys():
        marks = [*relayed[code], *sms[code]]
        for i, (a, b) in enumerate(itertools.pairwise(marks)):
            out[i].append(max(0.0, (b - a).total_seconds()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--postgres", help="SQLAlchemy URL; default: SQLite files")
    args = parser.parse_args()
    gateway = Gateway()
    env = gateway.env()
    if args.postgres:
        env |= {
            "MOTCUA_DATABASE_URL": args.postgres,
            "MOTCUA_DB_SCHEMA_PREFIX": f"bench{uuid.uuid4().hex[:6]}_",
        }
    with tempfile.TemporaryDirectory(prefix="motcua-latency-") as tmp:
        stack = Stack(Path(tmp) / "var", env=env, clock_start=WEDNESDAY_MORNING)
        try:
            stack.start(timeout=120)
            assert stack.admin_key is not None
            started, errors, answers = asyncio.run(
                post_steadily(
                    stack.services["intake"].url, stack.admin_key, args.rate, args.seconds
                )
            )
            asyncio.run(wait_for(gateway, set(started), within=120))
        finally:
            stack.stop()
            gateway.close()
        parts = [] if args.postgres else stages(stack.var_dir, set(started))
    delays = sorted(gateway.arrived[c] - t for c, t in started.items() if c in gateway.arrived)
    answers.sort()
    print(
        f"date {date.today()}  machine: {machine()}, "  # noqa: DTZ011
        f"database {'PostgreSQL' if args.postgres else 'SQLite'}"
    )
    print(
        f"posted {len(answers)} at {args.rate:.0f}/s for {args.seconds:.0f} s: errors {errors}, "
        f"receipts {len(delays)} of {len(started)}"
    )
    for name, values in (("POST answered", answers), ("POST -> SMS at the gateway", delays)):
        if values:
            print(
                f"  {name}: p50 {percentile(values, 0.50) * 1000:.0f} ms, "
                f"p90 {percentile(values, 0.90) * 1000:.0f} ms, "
                f"p99 {percentile(values, 0.99) * 1000:.0f} ms, "
                f"max {values[-1] * 1000:.0f} ms"
            )
    if parts:
        print("  where the time went (p50 / p99 of each stage, on the stack's clock):")
    for name, values in zip(STAGES, parts, strict=True):
        values.sort()
        if values:
            print(
                f"    {name}: {percentile(values, 0.50) * 1000:.0f} / "
                f"{percentile(values, 0.99) * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
