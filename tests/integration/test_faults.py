"""Nothing lost when the power, the database or the broker fails.

Counters post dossiers over HTTP while something fails: the power (the broker and the
four services SIGKILLed at one instant, then started again on the same state directory
with a new, empty broker), PostgreSQL (every connection of the services cut again and
again), or a SQLite file (held under an exclusive lock past the busy timeout). Then
every dossier answered 201 must reach every end once (``conftest.Ends``): routed, tracked
with its office, and one ``received`` receipt, sent in notify's table and delivered at
the SMS gateway stand-in, which lives in the test process and so outlives the stack.

Each fault is a function returning a ``FaultRun``; ``bench/faults.py`` runs the same
functions with bigger numbers and prints the figures. Timings are logged, never asserted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from motcua.stack import Stack
from shared.deadletter import HEADER_REASON
from shared.settings import ServiceName
from tests.integration.conftest import (
    FAULTS_LOG,
    POSTGRES_URL,
    CatchUp,
    DeadLetter,
    Ends,
    Posted,
    Probe,
    SmsGateway,
    dead_lettered,
    drop_connections,
    exclusive_lock,
    post_at_counters,
    scratch_postgres_database,
    started_stack,
    wait_for_every_end,
)

pytestmark = pytest.mark.integration

log = logging.getLogger(FAULTS_LOG)

CATCH_UP_WITHIN = 150.0
"""Seconds allowed, once a fault is over, for every dossier to reach every end."""

SQLITE_BUSY_TIMEOUT_MS = 1000
"""The services' SQLite busy timeout in the lock test (30 s by default): a lock held
longer than this makes a write fail with "database is locked"."""


@dataclass
class FaultRun:
    """What happened around one fault: the posts, where the dossiers answered 201 got,
    what was dead-lettered, and what the fault itself did (``notes``)."""

    fault: str
    posted: Posted
    catch_up: CatchUp
    dead: list[DeadLetter]
    intake_only: int = 0
    """Dossiers intake stored whose counter got no 201 (cut off mid-answer): reported,
    not asserted, as the counter does not know they exist."""
    gateway_reposts: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return self.posted.codes

    def tally(self) -> dict[str, int]:
        """Counts of the dossiers answered 201 that miss an end, or are doubled, and of
        dead-lettered records."""
        return {**self.catch_up.ends.tally(self.codes), "dead-lettered": len(self.dead)}

    def faults(self, *, dead_letters: bool = True) -> dict[str, int]:
        """Only what went wrong: empty when every dossier reached every end once (and,
        with ``dead_letters``, no record was dead-lettered)."""
        counted = self.tally() if dead_letters else self.catch_up.ends.tally(self.codes)
        return {what: n for what, n in counted.items() if n}

    def summary(self) -> str:
        took = self.catch_up.seconds
        lines = [
            f"{self.fault}: {len(self.codes)} answered 201"
            + (f", other answers {dict(self.posted.refused)}" if self.posted.refused else ""),
            *(f"  {k}: {v}" for k, v in self.notes.items()),
            "  caught up "
            + (
                f"{took:.1f} s after the fault ended"
                if took is not None
                else "NOT within the time allowed"
            ),
            "  " + ", ".join(f"{k} {v}" for k, v in self.tally().items()),
            f"  SMS gateway reposts (same reference, delivered once) {self.gateway_reposts}; "
            f"stored by intake without a 201 {self.intake_only}",
        ]
        reasons = sorted({headers.get(HEADER_REASON, "?")[:120] for *_, headers in self.dead})
        lines += [f"  dead-letter reason: {r}" for r in reasons[:5]]
        return "\n".join(lines)


def describe_ends(ends: Ends, codes: list[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in ends.tally(codes).items())


async def finish(
    fault: str,
    stack: Stack,
    probe: Probe,
    gateway: SmsGateway,
    posted: Posted,
    *,
    within: float,
    fault_ended: float,
    notes: dict[str, str],
) -> FaultRun:
    """Wait for every end (counting from ``fault_ended``, a ``time.monotonic()``
    reading), then read the dead-letter topics and intake's own count."""
    catch_up = await wait_for_every_end(
        probe, gateway, posted.codes, within=within, since=fault_ended
    )
    dead = await dead_lettered(stack.bootstrap_servers)
    stored = {code for (code,) in await probe.rows("intake", "SELECT code FROM dossier")}
    run = FaultRun(
        fault,
        posted,
        catch_up,
        dead,
        intake_only=len(stored - set(posted.codes)),
        gateway_reposts=gateway.reposts,
        notes=notes,
    )
    log.info("%s", run.summary())
    return run


CONSUMERS: tuple[ServiceName, ...] = ("routing", "sla", "notify")


async def power_cut(
    stack: Stack,
    gateway: SmsGateway,
    *,
    dossiers: int,
    counters: int,
    within: float,
    held: int = 0,
) -> FaultRun:
    """``counters`` counters post ``dossiers`` dossiers; right after the last answer the
    broker and every service are SIGKILLed at one instant; then the stack is started
    again on the same directory, with a new, empty broker.

    The consumers are held (SIGSTOP) while the last ``held`` dossiers are posted: intake
    and its relay go on, so at the kill the events of at least ``held`` dossiers are
    published and read by no one, the lag a loaded machine shows by chance, made
    certain. With ``held`` 0 it is whatever lag the machine shows.
    """
    probe = Probe(stack)
    try:
        posted = await post_at_counters(stack, counters, total=dossiers - held)
        if held:
            for name in CONSUMERS:
                stack.freeze_service(name)
            posted += await post_at_counters(stack, counters, total=held)
        stack.kill_all()
        at_kill = await probe.ends(gateway)
        unsent = await probe.scalar("intake", "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        started = time.monotonic()
        await asyncio.to_thread(stack.restart, 90)
        restarted = time.monotonic()
        notes = {
            "consumers held for the last": f"{held} dossiers",
            "in flight at the kill (missing an end)": str(len(at_kill.lost(posted.codes))),
            "at the kill": describe_ends(at_kill, posted.codes),
            "intake's outbox rows not yet published at the kill": str(unsent),
            "restart took (the fault ends when the stack is ready)": f"{restarted - started:.1f} s",
        }
        return await finish(
            "power cut",
            stack,
            probe,
            gateway,
            posted,
            within=within,
            fault_ended=restarted,
            notes=notes,
        )
    finally:
        await probe.close()


async def connections_dropped(
    stack: Stack,
    gateway: SmsGateway,
    *,
    seconds: float,
    counters: int,
    every: float,
    within: float,
) -> FaultRun:
    """While ``counters`` counters post for ``seconds``, every connection to the stack's
    PostgreSQL database is terminated every ``every`` seconds."""
    probe = Probe(stack)
    try:
        posting = asyncio.create_task(post_at_counters(stack, counters, seconds=seconds))
        dropped = await drop_connections(
            stack.env["MOTCUA_DATABASE_URL"], seconds=seconds, every=every
        )
        fault_ended = time.monotonic()
        posted = await posting
        notes = {"connections terminated": str(dropped)}
        return await finish(
            "PostgreSQL connections cut",
            stack,
            probe,
            gateway,
            posted,
            within=within,
            fault_ended=fault_ended,
            notes=notes,
        )
    finally:
        await probe.close()


async def file_locked(
    stack: Stack,
    gateway: SmsGateway,
    *,
    service: ServiceName,
    hold: float,
    counters: int,
    within: float,
    lead_in: float = 2.0,
    tail: float = 2.0,
) -> FaultRun:
    """While ``counters`` counters post, ``service``'s SQLite file is held under an
    exclusive lock for ``hold`` seconds (from ``lead_in`` seconds in; posting goes on
    ``tail`` seconds after the release)."""
    probe = Probe(stack)
    try:
        posting = asyncio.create_task(
            post_at_counters(stack, counters, seconds=lead_in + hold + tail)
        )
        await asyncio.sleep(lead_in)
        asked = time.monotonic()
        async with exclusive_lock(stack.var_dir / f"{service}.db"):
            taken = time.monotonic()
            await asyncio.sleep(hold)
        fault_ended = time.monotonic()
        posted = await posting
        notes = {"lock": f"{service}.db, taken after {taken - asked:.1f} s, held {hold:.0f} s"}
        return await finish(
            f"SQLite {service}.db locked",
            stack,
            probe,
            gateway,
            posted,
            within=within,
            fault_ended=fault_ended,
            notes=notes,
        )
    finally:
        await probe.close()


# --------------------------------------------------------------------------- tests


@pytest.fixture(autouse=True)
def _log_figures(caplog: pytest.LogCaptureFixture) -> None:
    """The figures of each fault (in flight, catch-up time, counts) in the test's log."""
    caplog.set_level(logging.INFO, logger=FAULTS_LOG)


@pytest.fixture
def cut_stack(
    tmp_path: Path, backend_env: dict[str, str], sms_gateway: SmsGateway
) -> Iterator[Stack]:
    with started_stack(tmp_path / "var", {**backend_env, **sms_gateway.env()}) as running:
        yield running


@pytest.fixture
def postgres_stack(tmp_path: Path, sms_gateway: SmsGateway) -> Iterator[Stack]:
    """A stack on a PostgreSQL database of its own, so that cutting every connection
    to it touches nobody else's."""
    if not POSTGRES_URL:
        pytest.skip(
            "cutting PostgreSQL's connections needs a server: set MOTCUA_TEST_POSTGRES_URL "
            "(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
    with (
        scratch_postgres_database(POSTGRES_URL) as url,
        started_stack(
            tmp_path / "var", {"MOTCUA_DATABASE_URL": url, **sms_gateway.env()}
        ) as running,
    ):
        yield running


@pytest.fixture
def sqlite_stack(tmp_path: Path, sms_gateway: SmsGateway) -> Iterator[Stack]:
    """A stack on SQLite files whose busy timeout is short, so a lock outlasts it soon."""
    env = {"MOTCUA_SQLITE_BUSY_TIMEOUT_MS": str(SQLITE_BUSY_TIMEOUT_MS), **sms_gateway.env()}
    with started_stack(tmp_path / "var", env) as running:
        yield running


async def test_a_power_cut_of_the_whole_stack_loses_and_doubles_nothing(
    cut_stack: Stack, sms_gateway: SmsGateway
) -> None:
    run = await power_cut(
        cut_stack, sms_gateway, dossiers=400, counters=8, held=300, within=CATCH_UP_WITHIN
    )
    assert len(run.codes) == 400, run.posted.refused
    # the broker that held the dead letters of before the cut is gone: not counted
    assert run.faults(dead_letters=False) == {}


async def test_postgresql_connections_cut_again_and_again_lose_and_double_nothing(
    postgres_stack: Stack, sms_gateway: SmsGateway
) -> None:
    run = await connections_dropped(
        postgres_stack, sms_gateway, seconds=20, counters=4, every=0.5, within=CATCH_UP_WITHIN
    )
    assert run.codes, "no dossier was answered 201 while the connections were cut"
    assert int(run.notes["connections terminated"]) > 0
    assert run.faults() == {}


@pytest.mark.parametrize("service", ["routing", "sla", "notify"])
async def test_a_sqlite_file_locked_past_the_busy_timeout_loses_and_doubles_nothing(
    sqlite_stack: Stack, sms_gateway: SmsGateway, service: ServiceName
) -> None:
    run = await file_locked(
        sqlite_stack,
        sms_gateway,
        service=service,
        hold=8 * SQLITE_BUSY_TIMEOUT_MS / 1000,
        counters=4,
        within=CATCH_UP_WITHIN,
    )
    assert run.codes, "no dossier was answered 201 around the lock"
    assert run.faults() == {}
