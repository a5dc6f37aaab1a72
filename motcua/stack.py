"""The local stack: the broker and the four services as separate processes.

Used by ``motcua up`` and by the integration tests (which kill, freeze and restart
its parts). Every child is started in its own process group and reaped on ``stop``,
so no orphan outlives the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

import httpx

from motcua.keys_cli import ensure_dev_admin_key, ensure_dev_signing_secret
from shared.auth import API_KEY_HEADER
from shared.broker import ensure_topics
from shared.clock import CLOCK_OFFSET_VARIABLE, offset_to
from shared.localbroker import LocalBroker, free_port
from shared.settings import SERVICES, ServiceName, Settings, keep_private

KEY_PROBES: dict[ServiceName, str] = {
    "intake": "/api/v1/calendar",
    "routing": "/api/v1/rules",
    "sla": "/api/v1/sla/KEY-PROBE",
    "notify": "/api/v1/notifications/toggles",
    "portal": "/api/v1/portal/status",
}
"""A read of each service that needs a key: 401 until the service knows the key."""


@dataclass
class ServiceProcess:
    """One service process of the stack."""

    name: ServiceName
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of its HTTP API."""
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    """Broker plus services on loopback, with state under ``var_dir``.

    With ``clock_start``, every service's clock runs from that instant at normal speed:
    the offset from the real clock is computed once, when the stack starts, and every
    process (a restarted one too) gets the same one, so all services agree on "now".
    """

    var_dir: Path
    broker_port: int | None = None
    service_ports: dict[ServiceName, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    clock_start: datetime | None = None
    clock_offset: timedelta = timedelta(0)
    broker: LocalBroker | None = None
    services: dict[ServiceName, ServiceProcess] = field(default_factory=dict)
    admin_key: str | None = None
    signing_secret: str | None = field(default=None, repr=False)
    """What signs the key events (``MOTCUA_KEYS_SIGNING_SECRET``): set by :meth:`start`,
    the configured one or the one generated under ``var_dir``, given to every process."""

    def __post_init__(self) -> None:
        self.var_dir = self.var_dir.resolve()
        keep_private(self.var_dir)  # files 600, folders 700, here and in every child
        (self.var_dir / "logs").mkdir(parents=True, exist_ok=True)
        for name in SERVICES:
            port = self.service_ports.get(name) or free_port()
            self.services[name] = ServiceProcess(name, port)

    @property
    def bootstrap_servers(self) -> str:
        """The local broker's address."""
        assert self.broker is not None, "stack not started"
        return self.broker.bootstrap_servers

    def child_env(self) -> dict[str, str]:
        """Environment of every service process."""
        return {
            **os.environ,
            "MOTCUA_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "MOTCUA_KAFKA_IDEMPOTENCE": "false",
            # the local broker holds a joining consumer for half the session timeout
            "MOTCUA_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "MOTCUA_VAR_DIR": str(self.var_dir),
            **({"MOTCUA_KEYS_SIGNING_SECRET": self.signing_secret} if self.signing_secret else {}),
            **self.env,
        }

    def set_clock(self) -> None:
        """Fix the one clock offset every service process gets (none without
        ``clock_start``); called once by :meth:`start`."""
        if self.clock_start is not None:
            self.clock_offset = offset_to(self.clock_start)
            self.env[CLOCK_OFFSET_VARIABLE] = repr(self.clock_offset.total_seconds())

    def now(self) -> datetime:
        """The services' "now": the real clock plus the stack's offset."""
        return datetime.now(UTC) + self.clock_offset

    def settings(self) -> Settings:
        """The settings the services run with (their database, their state directory)."""
        env = {**os.environ, **self.env}
        secret = self.signing_secret or env.get("MOTCUA_KEYS_SIGNING_SECRET")
        return Settings(
            var_dir=self.var_dir,
            database_url=env.get("MOTCUA_DATABASE_URL") or None,
            db_schema_prefix=env.get("MOTCUA_DB_SCHEMA_PREFIX", ""),
            keys_signing_secret=secret or None,
        )

    def start(self, timeout: float = 60.0) -> Stack:
        """Start the broker, create the topics, create the development admin key
        (``admin_key``, also in ``var_dir/dev-admin.key``), start the services with the
        key signing secret (generated in ``var_dir`` unless configured), wait until all
        are ready."""
        self.set_clock()
        self.signing_secret = ensure_dev_signing_secret(self.settings())
        self.admin_key = ensure_dev_admin_key(self.settings())
        return self._launch(self.broker_port, timeout)

    def restart(self, timeout: float = 60.0) -> Stack:
        """Start everything again after :meth:`kill_all`, as ``motcua up`` run again in
        the same directory: a new broker on the same port (empty: the local broker keeps
        its topics and offsets in memory only), the topics created again, and the
        services on their ports with their databases as the crash left them. The clock
        offset is kept, so the services' "now" goes on from where it was."""
        assert self.admin_key is not None, "stack never started"
        return self._launch(self.broker.port if self.broker else self.broker_port, timeout)

    def _launch(self, broker_port: int | None, timeout: float) -> Stack:
        """Broker, topics, services, readiness; when any of it fails, what it started is
        stopped before the error goes up (no process outlives a failed start)."""
        assert self.admin_key is not None
        self.broker = LocalBroker(broker_port, log_file=self.var_dir / "logs" / "broker.log")
        try:
            self.broker.start()
            asyncio.run(ensure_topics(self.broker.bootstrap_servers))
            for name in SERVICES:
                self.start_service(name)
            self.wait_ready(timeout)
            self.wait_for_key(self.admin_key, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_service(self, name: ServiceName) -> None:
        """Start (or restart) one service process."""
        svc = self.services[name]
        log = open(self.var_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115
        svc.process = subprocess.Popen(
            [sys.executable, "-m", "motcua.serve", name, "--port", str(svc.port)],
            env=self.child_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def kill_service(self, name: ServiceName) -> None:
        """SIGKILL one service: no shutdown hook runs (a crash)."""
        proc = self.services[name].process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def freeze_service(self, name: ServiceName) -> None:
        """Suspend one service (SIGSTOP): it keeps its connections and does nothing, as a
        process starved of CPU would; :meth:`thaw_service` resumes it."""
        proc = self.services[name].process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGSTOP)

    def thaw_service(self, name: ServiceName) -> None:
        """Resume a service suspended by :meth:`freeze_service` (SIGCONT)."""
        proc = self.services[name].process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGCONT)

    def kill_all(self) -> None:
        """SIGKILL the broker and every service at the same instant (a power cut): no
        shutdown hook runs anywhere, and whatever the broker held in memory is gone."""
        processes = [s.process for s in self.services.values() if s.process is not None]
        if self.broker is not None and self.broker.process is not None:
            processes.append(self.broker.process)
        alive = [p for p in processes if p.poll() is None]
        for proc in alive:  # signals first, reaping after: no process outlives another
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in alive:
            proc.wait()

    def wait_ready(self, timeout: float, names: tuple[ServiceName, ...] = SERVICES) -> None:
        """Block until every named service answers ``/health/ready`` with 200."""
        self._wait_until(
            names,
            lambda name: (
                httpx.get(f"{self.services[name].url}/health/ready", timeout=2).status_code == 200
            ),
            "not ready",
            timeout,
        )

    def wait_for_key(self, key: str, timeout: float) -> None:
        """Block until every service accepts ``key``: intake at once, the others once its
        ``api_key.changed`` event has reached them (each answers its probe 200, or 404 for
        sla's unknown dossier, or 403 for a role that may not read it, a kiosk's; 401
        means not yet)."""
        self._wait_until(
            tuple(KEY_PROBES),
            lambda name: (
                httpx.get(
                    f"{self.services[name].url}{KEY_PROBES[name]}",
                    headers={API_KEY_HEADER: key},
                    timeout=2,
                ).status_code
                in {200, 403, 404}
            ),
            "key not accepted",
            timeout,
        )

    def _wait_until(
        self,
        names: tuple[ServiceName, ...],
        answered: Callable[[ServiceName], bool],
        what: str,
        timeout: float,
    ) -> None:
        """Poll each named service with ``answered`` every 0.2 s until all have answered;
        ``RuntimeError`` as soon as one has exited, ``TimeoutError`` naming the ones left
        (``what`` within ``timeout``). A connection error counts as not yet."""
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending:
            for name in list(pending):
                svc = self.services[name]
                if svc.process is not None and svc.process.poll() is not None:
                    msg = f"{name} exited with {svc.process.returncode}; see its log in var/logs"
                    raise RuntimeError(msg)
                with contextlib.suppress(httpx.HTTPError):
                    if answered(name):
                        pending.discard(name)
            if pending and time.monotonic() > deadline:
                msg = f"{what} within {timeout:.0f} s: {', '.join(sorted(pending))}"
                raise TimeoutError(msg)
            if pending:
                time.sleep(0.2)

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the services (SIGTERM, then SIGKILL), then the broker."""
        running = [
            s.process
            for s in self.services.values()
            if s.process is not None and s.process.poll() is None
        ]
        if self.broker is not None and self.broker.process is not None:
            self.broker.thaw()
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
