"""End-to-end pipeline throughput against the raw broker, on the same machine.

Starts the local stack (tansu broker + intake, routing, sla, notify as processes) in a
fresh directory, injects N ``dossier.contact`` events into ``motcua.dossier.contacts``
and N ``dossier.received`` events into ``motcua.dossier.lifecycle`` with aiokafka, and
times how long until every dossier is routed (``routing.db`` ``assignment``), tracked
with its office (``sla.db`` ``tracked_dossier``) and has its SMS receipt sent
(``notify.db`` ``message``, trigger ``received``). The SQLite files are polled
read-only. The stack runs on its settable clock from a working Wednesday morning
(``--clock-start``), so that a run at any hour sees the same: same-day dossiers due
hours later, no warning, one receipt each. Then, on the same broker, it measures raw
aiokafka produce and consume of N ~1 KiB messages on a fresh 6-partition topic with a
fresh consumer group, and prints both rates and
their ratio.

    .venv/bin/python bench/pipeline.py --dossiers 20000

Lost or duplicated dossiers are reported, not hidden: the run exits non-zero and points
at the logs under ``<var-dir>/run-K/logs/``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from motcua.stack import Stack
from shared.calendar import VN_TZ, Duration, DurationUnit, default_calendar
from shared.clock import parse_clock_start
from shared.events import Channel, Contact, DossierContact, DossierReceived, Envelope, TimeLimit
from shared.topics import ALL_TOPICS, DOSSIER_CONTACTS, DOSSIER_LIFECYCLE

VIETNAM = VN_TZ
PROCEDURE = "2.000635"
PHONE = "0912345678"
POLL_SECONDS = 0.5
RAW_PARTITIONS = DOSSIER_LIFECYCLE.partitions
RAW_VALUE_BYTES = 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
RECEIPT = "trigger = 'received'"
WEDNESDAY_MORNING = "2026-12-02T09:00:00+07:00"


# --------------------------------------------------------------------------- events


def dossier_codes(n: int, day: datetime) -> list[str]:
    """N unique codes ``<agency>-YYMMDD-NNNN``: 9,999 per agency, agencies varied."""
    yymmdd = f"{day:%y%m%d}"
    codes: list[str] = []
    for i in range(n):
        unit_no, seq = divmod(i, 9999)
        unit = f"000.{unit_no // 100:02d}.{unit_no % 100:02d}.H56"
        codes.append(f"{unit}-{yymmdd}-{seq + 1:04d}")
    return codes


def received_events(
    n: int, now: datetime
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """(key, value) of N ``dossier.contact`` and N ``dossier.received`` envelopes, as
    intake would publish them at ``now`` (the stack's clock)."""
    # the due time intake would print: the same-day limit on the shared calendar, so the
    # tracker raises no citizen-facing warning that a real dossier would not get
    due_at = default_calendar().due_at(now, Duration(1, DurationUnit.SAME_DAY))
    contacts: list[tuple[bytes, bytes]] = []
    received: list[tuple[bytes, bytes]] = []
    for code in dossier_codes(n, now.astimezone(VIETNAM)):
        unit = code.rsplit("-", 2)[0]
        contact = Envelope.wrap(
            DossierContact(
                applicant=Contact(name="Nguyễn Văn An", phone=PHONE),
                procedure_code=PROCEDURE,
                receiving_unit=unit,
            ),
            occurred_at=now,
            source="bench",
            dossier_code=code,
        )
        envelope = Envelope.wrap(
            DossierReceived(
                procedure_code=PROCEDURE,
                channel=Channel.COUNTER,
                receiving_unit=unit,
                received_at=now,
                due_at=due_at,
                documents=["Tờ khai"],
                field="Hộ tịch",
                time_limit=TimeLimit(value=Decimal(1), unit="same_day"),
                supplement_rule="pause",
                catalogue_version=1,
            ),
            occurred_at=now,
            source="bench",
            dossier_code=code,
        )
        key = envelope.key
        assert key is not None
        contacts.append((key, contact.encode()))
        received.append((key, envelope.encode()))
    return contacts, received


async def inject_all(
    bootstrap: str, contacts: list[tuple[bytes, bytes]], received: list[tuple[bytes, bytes]]
) -> float:
    """Produce the contacts, then the received events; seconds taken."""
    return await produce(bootstrap, DOSSIER_CONTACTS.name, contacts) + await produce(
        bootstrap, DOSSIER_LIFECYCLE.name, received
    )


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Send every record without awaiting each, then await them together; seconds taken."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        start = time.perf_counter()
        futures = [await producer.send(topic, value=v, key=k) for k, v in records]
        await asyncio.gather(*futures)
        return time.perf_counter() - start
    finally:
        await producer.stop()


# --------------------------------------------------------------------------- progress


@dataclass
class Counts:
    """What the three stores hold at one poll."""

    routed: int = 0
    unroutable: int = 0
    tracked: int = 0
    tracked_with_office: int = 0
    messages: int = 0
    sent: int = 0
    sent_dossiers: int = 0
    other_messages: int = 0

    def done(self, n: int) -> bool:
        return self.routed >= n and self.tracked_with_office >= n and self.sent >= n


def _count(path: Path, sql: str) -> int:
    if not path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # table not created yet, or busy
        return 0


def poll(var_dir: Path) -> Counts:
    """Count rows in each service's SQLite file (read-only)."""
    routing, sla, notify = (var_dir / f"{s}.db" for s in ("routing", "sla", "notify"))
    return Counts(
        routed=_count(routing, "SELECT count(*) FROM assignment"),
        unroutable=_count(routing, "SELECT count(*) FROM manual_queue"),
        tracked=_count(sla, "SELECT count(*) FROM tracked_dossier"),
        tracked_with_office=_count(
            sla,
            "SELECT count(*) FROM tracked_dossier "
            "WHERE office IS NOT NULL AND started_at IS NOT NULL",
        ),
        messages=_count(notify, f"SELECT count(*) FROM message WHERE {RECEIPT}"),
        sent=_count(notify, f"SELECT count(*) FROM message WHERE {RECEIPT} AND status = 'sent'"),
        sent_dossiers=_count(
            notify,
            f"SELECT count(DISTINCT dossier_code) FROM message WHERE {RECEIPT} AND status = 'sent'",
        ),
        other_messages=_count(notify, f"SELECT count(*) FROM message WHERE NOT ({RECEIPT})"),
    )


# --------------------------------------------------------------------------- CPU


def _tree(root: int) -> list[int]:
    """``root`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants (only its own for this process,
    whose children are the stack)."""
    total = 0.0
    for p in [pid] if pid == os.getpid() else _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return total


def process_ids(stack: Stack) -> dict[str, int]:
    """The broker's and each service's pid, plus this bench process."""
    pids = {"bench (producer, poller)": os.getpid()}
    if stack.broker is not None and stack.broker.process is not None:
        pids["broker (tansu)"] = stack.broker.process.pid
    for name, svc in stack.services.items():
        if svc.process is not None:
            pids[name] = svc.process.pid
    return pids


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: _cpu_seconds(pid) for name, pid in pids.items()}


# --------------------------------------------------------------------------- runs


@dataclass
class PipelineResult:
    """One pipeline measurement."""

    n: int
    inject_s: float
    routed_s: float | None = None
    tracked_s: float | None = None
    stored_s: float | None = None
    notified_s: float | None = None
    final: Counts = field(default_factory=Counts)
    cpu_percent: dict[str, float] = field(default_factory=dict)
    top: str = ""

    @property
    def end_to_end_s(self) -> float | None:
        stages = (self.routed_s, self.tracked_s, self.notified_s)
        return None if any(s is None for s in stages) else max(s for s in stages if s)


@dataclass
class RawResult:
    """Raw aiokafka rates on the same broker."""

    produce_s: float
    consume_s: float
    join_s: float


def top_snapshot(pids: dict[str, int]) -> str:
    """``top -b -n1`` lines of the stack's processes, for the record."""
    names = {str(pid): name for name, pid in pids.items()}
    for name, pid in pids.items():
        if pid != os.getpid():
            names.update({str(p): name for p in _tree(pid) if str(p) not in names})
    try:
        out = subprocess.run(
            ["top", "-b", "-n1", "-w", "200"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return ""
    lines = out.splitlines()
    header = next((i for i, line in enumerate(lines) if "PID" in line and "COMMAND" in line), 0)
    keep = [
        f"{ln}  <- {names[ln.split()[0]]}"
        for ln in lines[header + 1 :]
        if ln.split() and ln.split()[0] in names
    ]
    return "\n".join([*lines[:3], lines[header], *keep])


async def run_pipeline(stack: Stack, n: int, limit_s: float, stall: float) -> PipelineResult:
    """Inject N received events and wait until all are routed, tracked and notified."""
    contacts, records = received_events(n, stack.now())
    pids = process_ids(stack)
    var_dir = stack.var_dir
    cpu0 = cpu_snapshot(pids)
    start = time.perf_counter()
    inject = asyncio.create_task(inject_all(stack.bootstrap_servers, contacts, records))
    result = PipelineResult(n=n, inject_s=0.0)
    last_change, last_counts = start, Counts()
    top_taken = False
    while True:
        await asyncio.sleep(POLL_SECONDS)
        now = time.perf_counter()
        elapsed = now - start
        counts = await asyncio.to_thread(poll, var_dir)
        if result.routed_s is None and counts.routed >= n:
            result.routed_s = elapsed
        if result.tracked_s is None and counts.tracked_with_office >= n:
            result.tracked_s = elapsed
        if result.stored_s is None and counts.messages >= n:
            result.stored_s = elapsed
        if result.notified_s is None and counts.sent >= n:
            result.notified_s = elapsed
        if not top_taken and counts.sent >= n // 2:
            result.top = await asyncio.to_thread(top_snapshot, pids)
            top_taken = True
        if counts != last_counts:
            last_counts, last_change = counts, now
            print(
                f"  {elapsed:7.1f} s  routed {counts.routed:>7}  tracked+office "
                f"{counts.tracked_with_office:>7}  receipts {counts.messages:>7}  "
                f"sent {counts.sent:>7}",
                flush=True,
            )
        if counts.done(n) and inject.done():
            break
        if elapsed > limit_s or now - last_change > stall:
            print(f"  !! stopped waiting after {elapsed:.0f} s: {counts}", flush=True)
            break
    wall = time.perf_counter() - start
    cpu1 = cpu_snapshot(pids)
    result.cpu_percent = {k: 100 * (cpu1[k] - cpu0[k]) / wall for k in pids}
    result.inject_s = await inject
    await asyncio.sleep(2 * POLL_SECONDS)  # anything arriving late would be a duplicate
    result.final = await asyncio.to_thread(poll, var_dir)
    return result


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.at: float | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned and self.at is None:
            self.at = time.perf_counter()


async def run_raw(bootstrap: str, n: int) -> RawResult:
    """Produce then consume N ~1 KiB keyed messages on a fresh topic and group."""
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=RAW_PARTITIONS, replication_factor=1)]
        )
    finally:
        await admin.close()
    payload = os.urandom(RAW_VALUE_BYTES // 2).hex().encode()
    records = [(f"key-{i:08d}".encode(), payload) for i in range(n)]
    produce_s = await produce(bootstrap, topic, records)

    listener = _Assigned()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=True,
    )
    subscribed = time.perf_counter()
    consumer.subscribe([topic], listener=listener)
    await consumer.start()
    try:
        got = 0
        deadline = time.monotonic() + 300
        while got < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            got += sum(len(msgs) for msgs in batches.values())
        done = time.perf_counter()
    finally:
        await consumer.stop()
    if got != n:
        msg = f"raw consume got {got} of {n} messages"
        raise RuntimeError(msg)
    assigned = listener.at or subscribed
    return RawResult(produce_s=produce_s, consume_s=done - assigned, join_s=assigned - subscribed)


async def dead_letters(bootstrap: str) -> int:
    """Records in every ``.dlq`` topic (should be 0)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(t.dead_letter, 0) for t in ALL_TOPICS]
        known = await consumer.topics()
        parts = [p for p in parts if p.topic in known]
        if not parts:
            return 0
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        return sum(ends[p] - starts[p] for p in parts)
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- report


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )


def rate(n: int, seconds: float | None) -> str:
    return "—" if not seconds else f"{n / seconds:,.0f}/s"


def secs(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:.1f} s"


def report(k: int, p: PipelineResult, raw: RawResult, dlq: int) -> list[str]:
    """Print one run's table; return its problems (lost or duplicated dossiers)."""
    n = p.n
    print(f"\nrun {k}: N = {n:,}")
    rows = [
        ("inject (aiokafka produce of received events)", p.inject_s),
        ("all routed (routing.db assignment)", p.routed_s),
        ("all tracked with office (sla.db tracked_dossier)", p.tracked_s),
        ("all receipts stored (notify.db message, queued)", p.stored_s),
        ("all receipts sent (notify.db message, sent)", p.notified_s),
        ("end to end", p.end_to_end_s),
        ("raw produce, 1 KiB, fresh topic", raw.produce_s),
        ("raw consume, fresh group (after join)", raw.consume_s),
    ]
    width = max(len(r[0]) for r in rows)
    for label, s in rows:
        print(f"  {label:<{width}}  {secs(s):>12}  {rate(n, s):>12}")
    print(f"  raw consumer group join: {raw.join_s:.1f} s (not counted)")
    if p.end_to_end_s:
        e2e = n / p.end_to_end_s
        print(
            f"  ratio end-to-end / raw produce = {e2e / (n / raw.produce_s):.3f}"
            f"   end-to-end / raw consume = {e2e / (n / raw.consume_s):.3f}"
        )
    print("  CPU during the pipeline (% of one core, averaged over its wall time):")
    for name, pct in sorted(p.cpu_percent.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<26} {pct:6.1f} %")
    if p.top:
        print("  top -b -n1 halfway through:\n    " + p.top.replace("\n", "\n    "))
    f = p.final
    print(
        f"  final counts: routed {f.routed}, manual queue {f.unroutable}, tracked {f.tracked} "
        f"({f.tracked_with_office} with office), messages {f.messages} "
        f"({f.sent} sent, {f.sent_dossiers} distinct dossiers), other messages "
        f"{f.other_messages}, dead-lettered {dlq}"
    )
    problems = []
    for label, value in (
        ("routed", f.routed),
        ("tracked", f.tracked),
        ("tracked with office", f.tracked_with_office),
        ("messages", f.messages),
        ("sent", f.sent),
        ("sent distinct dossiers", f.sent_dossiers),
    ):
        if value != n:
            problems.append(f"{label}: {value} (expected {n})")
    if f.unroutable:
        problems.append(f"manual queue: {f.unroutable} (expected 0)")
    if dlq:
        problems.append(f"dead-lettered: {dlq} (expected 0)")
    return problems


async def measure(
    stack: Stack, n: int, limit_s: float, stall: float
) -> tuple[PipelineResult, RawResult, int]:
    pipeline = await run_pipeline(stack, n, limit_s, stall)
    dlq = await dead_letters(stack.bootstrap_servers)
    raw = await run_raw(stack.bootstrap_servers, n)
    return pipeline, raw, dlq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dossiers", type=int, default=20_000, help="N events (default 20000)")
    parser.add_argument("--var-dir", type=Path, default=None, help="state dir (default: temp)")
    parser.add_argument("--runs", type=int, default=1, help="runs, each on a fresh stack")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (s)")
    parser.add_argument("--stall", type=float, default=60.0, help="give up if no progress (s)")
    parser.add_argument(
        "--clock-start",
        default=WEDNESDAY_MORNING,
        help="the stack's clock starts here (ISO 8601 with offset), or 'now' for the real "
        f"clock (default {WEDNESDAY_MORNING}: a working morning, so no dossier is due "
        "during the run)",
    )
    args = parser.parse_args()
    clock_start = None if args.clock_start == "now" else parse_clock_start(args.clock_start)
    n: int = args.dossiers
    base = args.var_dir or Path(tempfile.mkdtemp(prefix="motcua-bench-"))
    print(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}")
    print(f"N = {n:,} dossiers, {args.runs} run(s), state under {base}")
    print(f"the stack's clock starts at {args.clock_start}")

    e2e_rates: list[float] = []
    produce_rates: list[float] = []
    consume_rates: list[float] = []
    failed = False
    for k in range(1, args.runs + 1):
        stack = Stack(base / f"run-{k}", clock_start=clock_start)
        started = time.perf_counter()
        stack.start()
        print(f"\nrun {k}: stack ready in {time.perf_counter() - started:.1f} s", flush=True)
        try:
            pipeline, raw, dlq = asyncio.run(measure(stack, n, args.timeout, args.stall))
        finally:
            stack.stop()
        problems = report(k, pipeline, raw, dlq)
        if problems:
            failed = True
            print(f"  !! LOST OR DUPLICATED: {'; '.join(problems)}")
            print(f"  !! logs: {stack.var_dir / 'logs'}")
        if pipeline.end_to_end_s:
            e2e_rates.append(n / pipeline.end_to_end_s)
        produce_rates.append(n / raw.produce_s)
        consume_rates.append(n / raw.consume_s)

    if args.runs > 1 and e2e_rates:
        e2e, prod, cons = (statistics.median(r) for r in (e2e_rates, produce_rates, consume_rates))
        print(
            f"\nmedian of {args.runs}: end to end {e2e:,.0f}/s, raw produce {prod:,.0f}/s, "
            f"raw consume {cons:,.0f}/s; ratios {e2e / prod:.3f} and {e2e / cons:.3f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
