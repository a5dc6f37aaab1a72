"""The host every service runs in: its database, broker, outbox relay and HTTP app.

Start-up never waits for Kafka: the database and the HTTP API come up at once, and
the broker connects in the background, retrying with backoff. Until it does, the
outbox keeps every event and ``/health/ready`` says the broker is not connected.
``/health/ready`` also answers 503 while a consumer is blocked by an operational
failure (``shared.retry``), naming the topic and the failure. Every
``retention_sweep_seconds`` the outbox and inbox rows past their retention are deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher import DefaultPublisher
from sqlalchemy import Table
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.apidocs import serve_api_docs
from shared.broker import EndOffsetReader, ensure_topics, make_broker
from shared.clock import utc_now
from shared.db import Database, table
from shared.deadletter import DeadLetters
from shared.errors import Refusal
from shared.events import Envelope
from shared.faults import is_transient
from shared.inbox import Apply, BatchConsumer, InboxRow, purge_inbox
from shared.kafka_security import client_security
from shared.metrics import metrics_endpoint
from shared.migrations import ensure_at_head
from shared.outbox import OutboxRelay, OutboxRow, Placed, purge_outbox
from shared.retry import Stalls
from shared.settings import ServiceName, Settings
from shared.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)

_GAUGE_SECONDS = 5.0

Job = Callable[[], Coroutine[Any, Any, None]]
"""A background coroutine a service runs beside its consumers (e.g. notify's dispatcher)."""


async def every(seconds: float, refresh: Callable[[], Awaitable[None]], what: str) -> None:
    """Run ``refresh`` every ``seconds`` until cancelled; a failed round is logged (its
    exception type only: no data) and the next one runs as planned."""
    while True:
        try:
            await refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s not refreshed: %s", what, type(exc).__name__)
        await asyncio.sleep(seconds)


async def until_done(work: Callable[[], Awaitable[None]], what: str, retry_seconds: float) -> None:
    """Run ``work`` until it returns once, waiting ``retry_seconds`` after each failure (the
    database away at start-up); a failure is logged by its exception type only."""
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed, retrying: %s", what, type(exc).__name__)
            await asyncio.sleep(retry_seconds)
        else:
            return


class ServiceRuntime:
    """Everything one service process holds; built once, started by its HTTP app."""

    def __init__(
        self,
        name: ServiceName,
        settings: Settings,
        *,
        tables: Sequence[Table],
        publishes: Sequence[TopicSpec],
    ) -> None:
        self.name = name
        self.settings = settings
        self.db = Database(settings.database_url_for(name), schema=settings.schema_for(name))
        self.tables = [table(InboxRow), table(OutboxRow), *tables]
        self.dead_letters = DeadLetters(name)
        self.stalls = Stalls(name, stale_after=3 * settings.retry_max_backoff_seconds + 5)
        self.broker: KafkaBroker = make_broker(settings, name, self.dead_letters, self.stalls)
        self.offsets = EndOffsetReader(
            settings.kafka_bootstrap_servers, name, **client_security(settings)
        )
        self.publishers: dict[str, DefaultPublisher] = {
            spec.name: self.broker.publisher(
                spec.name,
                title=f"{spec.name}:{name}:publish",
                description=spec.description,
                schema=Envelope,
            )
            for spec in publishes
        }
        self.relay = OutboxRelay(
            self.db,
            self._send,
            service=name,
            batch_max=settings.relay_batch_max,
            poll_seconds=settings.relay_poll_seconds,
            end_offsets=self.offsets.end_offsets,
        )
        self.broker_connected = False
        self._tasks: list[asyncio.Task[None]] = []

    def consumer(
        self,
        apply: Apply,
        *,
        inbox: bool = True,
        after_commit: Callable[[], None] | None = None,
    ) -> BatchConsumer:
        """A batch consumer (idempotent through the inbox unless ``inbox`` is off) whose
        commits wake the relay, then call ``after_commit`` (work the batch queued, to be
        looked for once it is visible)."""
        relay_wake = self.relay.wake

        def committed() -> None:
            relay_wake()
            if after_commit is not None:
                after_commit()

        return BatchConsumer(
            self.db,
            apply,
            self.dead_letters,
            service=self.name,
            attempts=self.settings.retry_attempts,
            backoff_seconds=self.settings.retry_backoff_seconds,
            inbox=inbox,
            after_commit=committed,
        )

    async def purge(self) -> None:
        """Delete outbox and inbox rows past their retention."""
        now = utc_now()
        await purge_outbox(
            self.db,
            older_than=now - timedelta(days=self.settings.outbox_retention_days),
            service=self.name,
            compacted={t.name for t in ALL_TOPICS if t.compacted},
        )
        await purge_inbox(
            self.db,
            older_than=now - timedelta(days=self.settings.inbox_retention_days),
            service=self.name,
        )

    async def _send(self, topic: str, value: bytes, key: bytes | None) -> Awaitable[Placed]:
        future: Awaitable[Placed] = await self.publishers[topic].publish(
            value, key=key, no_confirm=True, headers={"content-type": "application/json"}
        )
        return future

    async def start(
        self, *, background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    ) -> None:
        """Bring the database to the newest migration (or refuse it, per the settings), start
        the jobs; connect the broker in the background, then start the relay."""
        await ensure_at_head(self.db, self.name, may_upgrade=self.settings.db_upgrade_at_start)
        self._tasks = [
            asyncio.create_task(self._connect_broker(), name=f"{self.name}-connect"),
            asyncio.create_task(
                every(_GAUGE_SECONDS, self.relay.refresh_gauges, f"{self.name} outbox gauges"),
                name=f"{self.name}-gauges",
            ),
            asyncio.create_task(
                every(self.settings.retention_sweep_seconds, self.purge, f"{self.name} retention"),
                name=f"{self.name}-retention",
            ),
            *(asyncio.create_task(job(), name=f"{self.name}-job") for job in background),
        ]

    async def stop(self) -> None:
        """Stop jobs, the relay, the broker (its handlers finish first), the database."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.relay.stop()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        with contextlib.suppress(Exception):
            await self.offsets.stop()
        await self.db.dispose()

    async def _start_broker(self) -> None:
        """``KafkaBroker.start`` with the subscribers started together: each consumer
        group's join waits for the coordinator's rebalance delay, and FastStream starts
        them one after another (about 1.5 s off a service's start on the local broker)."""
        await self.broker.connect()
        await asyncio.gather(*(subscriber.start() for subscriber in self.broker.subscribers))
        for publisher in self.broker.publishers:
            await publisher.start()
        self.broker.running = True

    async def _connect_broker(self) -> None:
        delay = 0.5
        while True:
            try:
                if self.settings.kafka_create_topics:
                    await ensure_topics(
                        self.settings.kafka_bootstrap_servers, **client_security(self.settings)
                    )
                await self._start_broker()
                await self.offsets.start()
            except Exception as exc:
                log.warning(
                    "%s: broker not reachable (%s); retrying in %.1f s",
                    self.name,
                    type(exc).__name__,
                    delay,
                )
                with contextlib.suppress(Exception):
                    await self.broker.stop()
                with contextlib.suppress(Exception):
                    await self.offsets.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self.broker_connected = True
            self.relay.start()
            log.info("%s: broker connected", self.name)
            return

    async def readiness(self) -> dict[str, Any]:
        """What ``/health/ready`` reports: database and broker reachability, consumers
        blocked by an operational failure, outbox backlog."""
        try:
            await self.db.ping()
            database = "ok"
            backlog: int | None = await self.relay.backlog()
        except Exception as exc:
            database, backlog = f"unreachable: {type(exc).__name__}", None
        return {
            "service": self.name,
            "database": database,
            "broker": "connected" if self.broker_connected else "connecting",
            "consumers": self.stalls.report() or "ok",
            "outbox_backlog": backlog,
        }


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413, unread.

    A declared ``Content-Length`` over the limit is refused before the app runs; a body
    without one (chunked) is counted as the app reads it, and the read that passes the
    limit raises ``HTTPException(413)`` in the app. Either way no more than ``max_bytes``
    (and one chunk) of a body is ever held, and nothing past the limit reaches a handler.
    The connection stays open: uvicorn reads the rest of the body and drops it, so that a
    client still sending gets the 413 instead of a reset connection.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request body over {self.max_bytes} bytes"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            refusal = JSONResponse({"detail": detail}, 413)
            await refusal(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)


async def _refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refusal)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)


def answer_refusals(app: FastAPI) -> None:
    """Answer every ``shared.errors.Refusal`` a route (or its dependencies) raises with
    its status, headers and body. ``create_http_app`` does it for every service; an app
    built otherwise (a test's bare ``FastAPI()``) calls it itself."""
    app.add_exception_handler(Refusal, _refused)


_MOMENTARILY_DOWN = "its database or broker is unavailable for a moment; try again"


def _unhandled(service: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """The answer to an exception no route answered: 503 with ``Retry-After`` when the
    database or broker failed for a moment (the client retries), else 500. Neither names
    more than the service: the exception's text may hold data."""

    async def unhandled(_request: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            return JSONResponse(
                {"detail": f"{service}: {_MOMENTARILY_DOWN}"},
                status_code=503,
                headers={"Retry-After": "2"},
            )
        return JSONResponse({"detail": f"{service}: internal error"}, status_code=500)

    return unhandled


def _health_router(runtime: ServiceRuntime) -> APIRouter:
    """``/health/live`` (the process answers) and ``/health/ready`` (database, broker and
    consumers are up: 200, else 503 with the same report)."""
    health = APIRouter(include_in_schema=False)

    @health.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @health.get("/health/ready")
    async def ready() -> JSONResponse:
        report = await runtime.readiness()
        ok = (
            report["database"] == "ok"
            and report["broker"] == "connected"
            and report["consumers"] == "ok"
        )
        return JSONResponse(report, status_code=200 if ok else 503)

    return health


def create_http_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter] = (),
    background: Sequence[Job] = (),
) -> FastAPI:
    """The service's HTTP app: its routers plus ``/metrics`` and ``/health/*``; request
    bodies over ``settings.max_body_bytes`` are refused (413); a ``shared.errors.Refusal``
    is answered with its own status and body (``answer_refusals``), a transient failure
    with 503 and ``Retry-After``, anything else with 500.

    The app's lifespan starts and stops the runtime (FastStream's FastAPI plugin is
    deprecated; this is the supported way to run both in one process).
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start(background=background)
        try:
            yield
        finally:
            await runtime.stop()

    # /docs is served offline below; ReDoc, like FastAPI's own /docs, would need a CDN.
    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    serve_api_docs(app, title=f"{title} API")
    app.state.runtime = runtime

    answer_refusals(app)
    app.add_exception_handler(Exception, _unhandled(runtime.name))
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    app.include_router(_health_router(runtime))
    for router in routers:
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes)
    return app
