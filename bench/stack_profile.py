"""Where the stack's CPU goes: py-spy on every service process at once, under load.

Starts the broker and the five services as ``bench/intake_load.py`` does (SQLite files,
or PostgreSQL schemas with ``--postgres URL``) and either keeps ``--concurrency``
``POST /api/v1/dossiers`` in flight for ``--seconds`` (after ``--warmup`` seconds, every
service is sampled for the steady part: the rest of the load but its last second), or,
with ``--pipeline N``, injects N dossiers straight into the broker as
``bench/pipeline.py`` does and samples from the injection until every dossier is routed,
tracked and notified (SQLite only: the progress is read from the files).

Sampling is ``py-spy record --format raw --nonblocking``: the processes are not paused
(now and then a stack is read torn, the leaf rarely) and idle threads are left out. py-spy
calls a thread idle when the kernel does not have it runnable, so a thread woken but
waiting for a core counts: on a loaded machine the samples exceed the CPU seconds /proc
counts (both are printed), and the excess lands on the lines where threads wait
(``Runner.run``, aiosqlite's ``tx.get()``). py-spy also falls behind its rate when the
cores are busy (its log says by how much; ``--rate`` lower helps). A sample's leaf is the
innermost *Python* frame: time in a C extension counts for the Python line that called
it (orjson under its caller, the SQLite engine under aiosqlite's ``result =
function()``, uvloop's own loop and httptools' parser under ``asyncio/runners.py``
``Runner.run``). ``--native`` unwinds into the C code instead, but py-spy then pauses
each process at every sample (it cannot unwind without), which slows the stack.
(``--gil``, which would leave the waiting threads out, cannot read this Python build.)

Per process it prints the samples (and the CPU seconds /proc counted in the same
window), the top leaf functions by own samples, and the own samples grouped by package
as a share of that process's samples. The raw files are kept with ``--out DIR``.

    .venv/bin/python bench/stack_profile.py [--seconds 20] [--concurrency 16] [--postgres URL]
    .venv/bin/python bench/stack_profile.py --pipeline 20000 [--out DIR]

Every process it starts (py-spy, the stack) is stopped when it ends, on error too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from benchkit import machine
from intake_load import cpu_seconds, database_env, load
from pipeline import WEDNESDAY_MORNING, PipelineResult, process_ids, run_pipeline

from motcua.stack import Stack
from shared.clock import parse_clock_start

PY_SPY = Path(sys.executable).with_name("py-spy")
REPO = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"])
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
GROUPS = {
    "asyncio": "asyncio/uvloop",
    "uvloop": "asyncio/uvloop",
    "fastapi": "fastapi/starlette",
    "starlette": "fastapi/starlette",
    "pydantic_core": "pydantic",
}
"""Packages reported together (a top-level package not named here is its own group)."""
TOP_LEAVES = 15
STOP_GRACE_SECONDS = 30.0


class Leaf(NamedTuple):
    """The innermost frame of a sample: the function that was on the CPU."""

    function: str
    file: str
    line: int | None


def read_raw(path: Path) -> Counter[Leaf]:
    """Own samples per leaf frame of one py-spy raw file (``frame;frame;... count`` a
    line, outermost frame first)."""
    leaves: Counter[Leaf] = Counter()
    if not path.exists():
        return leaves
    for row in path.read_text(errors="replace").splitlines():
        stack, _, count = row.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        match = FRAME.match(stack.rsplit(";", 1)[-1])
        if match is None:
            leaves[Leaf(stack.rsplit(";", 1)[-1], "", None)] += int(count)
            continue
        line = match["line"]
        leaves[Leaf(match["function"], match["file"], int(line) if line else None)] += int(count)
    return leaves


def by_function(leaves: Counter[Leaf]) -> list[tuple[Leaf, int, int]]:
    """Own samples per function, most first: (its hottest line, the function's samples,
    that line's samples)."""
    functions: dict[tuple[str, str], list[tuple[int, Leaf]]] = {}
    for leaf, count in leaves.items():
        functions.setdefault((leaf.function, leaf.file), []).append((count, leaf))
    rows = []
    for lines in functions.values():
        on_line, hot = max(lines, key=lambda line: line[0])
        rows.append((hot, sum(count for count, _ in lines), on_line))
    return sorted(rows, key=lambda row: -row[1])


def where(file: str) -> tuple[str, str]:
    """(origin, path inside it) of a sampled file: ``site`` (a site-packages
    distribution), ``repo`` (this repository), ``stdlib``, ``generated`` (code compiled at
    run time, as dataclasses' ``__init__``), ``native`` (a C library, with ``--native``)
    or ``unknown`` (a frame read torn while the process ran on)."""
    if file.startswith("<frozen "):
        return "stdlib", file.removeprefix("<frozen ").removesuffix(">")
    if file.startswith("<sqlalchemy "):
        return "site", f"sqlalchemy/{file}"
    if file.startswith("<"):
        return "generated", file
    if "/site-packages/" in file:
        return "site", file.split("/site-packages/", 1)[1]
    path = Path(file)
    for origin, root in (("repo", REPO), ("stdlib", STDLIB)):
        if path.is_relative_to(root):
            return origin, str(path.relative_to(root))
    return ("native" if path.is_absolute() else "unknown"), path.name


def short(leaf: Leaf) -> str:
    """``package/module.py:line`` of a leaf (the library's or this repository's)."""
    inside = where(leaf.file)[1]
    return f"{inside}:{leaf.line}" if leaf.line is not None else inside


def group(leaf: Leaf) -> str:
    """The package a leaf's own samples count for: ``services.<name>``, ``shared``,
    ``motcua``, a distribution's top-level package (some reported together, see
    ``GROUPS``), ``asyncio/uvloop`` or ``stdlib`` for the standard library, ``generated``,
    ``native:<lib>`` for C code outside any package (with ``--native``), ``unknown``."""
    if not leaf.file:
        return "unknown"
    origin, inside = where(leaf.file)
    top = inside.split("/", 1)[0].split(".", 1)[0]
    if origin == "repo":
        parts = inside.split("/")
        return f"services.{parts[1]}" if parts[0] == "services" and len(parts) > 2 else top
    if origin in {"stdlib", "site"}:
        return GROUPS.get(top, "stdlib" if origin == "stdlib" else top)
    return f"native:{top}" if origin == "native" else origin


# --------------------------------------------------------------------------- py-spy


@dataclass
class Spy:
    """One ``py-spy record`` attached to one service process."""

    name: str
    pid: int
    raw: Path
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.raw.with_suffix(".log")

    def summary(self) -> str:
        """py-spy's own last word (``Samples: N Errors: M``), or its error."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        found = re.search(r"Samples: \d+ Errors: \d+", text)
        behind = [float(s) for s in re.findall(r"([\d.]+)s behind in sampling", text)]
        if found:
            return found[0] + (f", up to {max(behind):.1f} s behind" if behind else "")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit {self.process.returncode}"


@dataclass
class Spies:
    """py-spy on several processes at once; :meth:`stop` reaps every one (SIGINT, which
    makes py-spy write its file, then SIGKILL after a grace period)."""

    out: Path
    rate: int
    native: bool
    started: list[Spy] = field(default_factory=list)
    children_cpu: float = 0.0
    """CPU seconds the py-spy processes used (reaped children's rusage delta: the
    stack's processes are reaped after the spies)."""
    _children_before: float | None = None

    def start(self, pids: Mapping[str, int], duration: float | None) -> None:
        """Attach to every process in ``pids``; ``duration`` None samples until
        :meth:`stop`."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._children_before = before.ru_utime + before.ru_stime
        for name, pid in pids.items():
            raw = self.out / f"{name}.raw"
            command = [
                str(PY_SPY),
                "record",
                "--format",
                "raw",
                "--full-filenames",
                "--rate",
                str(self.rate),
                "--pid",
                str(pid),
                "-o",
                str(raw),
            ]
            command += ["--native"] if self.native else ["--nonblocking"]
            if duration is not None:
                command += ["--duration", str(max(1, round(duration)))]
            with raw.with_suffix(".log").open("wb") as log:
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            self.started.append(Spy(name, pid, raw, process))

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` for every spy to end by itself (its ``--duration``),
        then stop the ones still sampling and reap them all."""
        deadline = time.monotonic() + timeout
        for spy in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.process.wait(max(0.1, deadline - time.monotonic()))
        self.stop()

    def stop(self) -> None:
        """Stop every spy still running (its file is written), reap all of them."""
        for spy in self.started:
            if spy.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    spy.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for spy in self.started:
            try:
                spy.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                spy.process.kill()
                spy.process.wait()
        if self._children_before is not None:
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.children_cpu = after.ru_utime + after.ru_stime - self._children_before
            self._children_before = None


@contextlib.contextmanager
def running(stack: Stack, spies: Spies, timeout: float) -> Iterator[None]:
    """Start the stack; on the way out stop the spies, then the stack, error or not."""
    try:
        stack.start(timeout=timeout)
        yield
    finally:
        try:
            spies.stop()
        finally:
            stack.stop()


def service_pids(stack: Stack) -> dict[str, int]:
    """The pid of each service process (the ones py-spy samples)."""
    return {name: svc.process.pid for name, svc in stack.services.items() if svc.process}


def cpu_window(pids: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds each process has used so far (/proc)."""
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


# --------------------------------------------------------------------------- runs


@dataclass
class Window:
    """What the processes spent while the spies sampled."""

    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


async def profile_load(
    stack: Stack, spies: Spies, args: argparse.Namespace, window: Window
) -> tuple[int, list[float]]:
    """The intake load for ``args.seconds``; the spies sample from ``args.warmup`` on to
    a second before the end. Returns the load's (errors, latencies)."""
    assert stack.admin_key is not None
    duration = max(1.0, args.seconds - args.warmup - 1.0)
    posting = asyncio.create_task(
        load(stack.services["intake"].url, stack.admin_key, args.seconds, args.concurrency)
    )
    await asyncio.sleep(min(args.warmup, args.seconds - 2.0))
    pids = process_ids(stack)
    before = cpu_window(pids)
    started = time.perf_counter()
    spies.start(service_pids(stack), duration)
    # stopped at the planned end even when py-spy falls behind its --duration
    await asyncio.to_thread(spies.wait, duration)
    window.seconds = time.perf_counter() - started
    window.cpu = {k: v - before[k] for k, v in cpu_window(pids).items()}
    return await posting


async def profile_pipeline(
    stack: Stack, spies: Spies, args: argparse.Namespace, window: Window
) -> PipelineResult:
    """Inject ``args.pipeline`` dossiers and sample until all are through (or the
    pipeline gives up after ``args.timeout`` or ``args.stall`` seconds)."""
    pids = process_ids(stack)
    before = cpu_window(pids)
    started = time.perf_counter()
    spies.start(service_pids(stack), None)
    result = await run_pipeline(stack, args.pipeline, args.timeout, args.stall)
    await asyncio.to_thread(spies.stop)
    window.seconds = time.perf_counter() - started
    window.cpu = {k: v - before[k] for k, v in cpu_window(pids).items()}
    return result


# --------------------------------------------------------------------------- report


def report(spies: Spies, window: Window) -> None:
    """Per sampled process: samples, top leaves, packages."""
    print(
        f"\nsampled {window.seconds:.1f} s at {spies.rate}/s; CPU seconds in that window "
        "(/proc): " + ", ".join(f"{name} {cpu:.1f}" for name, cpu in window.cpu.items())
    )
    print(f"py-spy itself used {spies.children_cpu:.1f} CPU s")
    for spy in spies.started:
        leaves = read_raw(spy.raw)
        total = sum(leaves.values())
        cpu = window.cpu.get(spy.name, 0.0)
        print(
            f"\n== {spy.name} (pid {spy.pid}): {total} samples "
            f"≈ {total / spies.rate:.1f} CPU s sampled, {cpu:.1f} CPU s by /proc "
            f"[py-spy: {spy.summary()}]"
        )
        if not total:
            continue
        print(f"  top {TOP_LEAVES} leaf functions by own samples (and their hottest line):")
        for hot, count, on_line in by_function(leaves)[:TOP_LEAVES]:
            print(
                f"    {count:6d} {100 * count / total:5.1f} %  {hot.function}  {short(hot)}"
                + (f" ({100 * on_line / count:.0f} %)" if on_line != count else "")
            )
        groups: Counter[str] = Counter()
        for leaf, count in leaves.items():
            groups[group(leaf)] += count
        print("  own samples by package:")
        print(
            "    "
            + ", ".join(
                f"{name} {100 * count / total:.1f} %" for name, count in groups.most_common()
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="intake load (s)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before sampling (s)")
    parser.add_argument("--postgres", help="SQLAlchemy URL; default: SQLite files")
    parser.add_argument("--out", type=Path, help="keep the raw py-spy files here")
    parser.add_argument("--rate", type=int, default=100, help="samples a second")
    parser.add_argument("--native", action="store_true", help="unwind C too (pauses)")
    parser.add_argument(
        "--pipeline", type=int, metavar="N", help="inject N dossiers instead of posting"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="pipeline: give up (s)")
    parser.add_argument("--stall", type=float, default=60.0, help="pipeline: no progress (s)")
    args = parser.parse_args()
    if args.pipeline and args.postgres:
        parser.error("--pipeline reads its progress from the SQLite files: no --postgres")
    if not PY_SPY.exists():
        parser.error(f"no py-spy at {PY_SPY} (a dev dependency)")

    with tempfile.TemporaryDirectory(prefix="motcua-spy-") as tmp_dir:
        tmp = Path(tmp_dir)
        out = args.out or tmp / "profiles"
        out.mkdir(parents=True, exist_ok=True)
        clock = parse_clock_start(WEDNESDAY_MORNING) if args.pipeline else None
        stack = Stack(tmp / "var", env=database_env(args.postgres), clock_start=clock)
        spies = Spies(out, args.rate, args.native)
        window = Window()
        print(f"date {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}")
        print(f"load average at the start {os.getloadavg()[0]:.1f}")
        with running(stack, spies, timeout=120):
            if args.pipeline:
                print(f"pipeline: {args.pipeline:,} dossiers injected, SQLite", flush=True)
                result = asyncio.run(profile_pipeline(stack, spies, args, window))
                done = result.end_to_end_s
                print(
                    f"  end to end {done:.1f} s, {args.pipeline / done:,.0f} dossiers/s"
                    if done
                    else f"  !! not all through: {result.final}"
                )
            else:
                database = "PostgreSQL" if args.postgres else "SQLite"
                print(
                    f"intake load: {args.concurrency} in flight for {args.seconds:.0f} s, "
                    f"{database}",
                    flush=True,
                )
                errors, latencies = asyncio.run(profile_load(stack, spies, args, window))
                print(
                    f"  requests {len(latencies)}, errors {errors}, "
                    f"rate {len(latencies) / args.seconds:,.0f}/s"
                )
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
        report(spies, window)
        if args.out:
            print(f"\nraw files (flamegraph.pl input) and py-spy logs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
