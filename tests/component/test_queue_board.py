"""The display board's server-sent events, read over a real socket from uvicorn.

Starlette's TestClient collects a whole response before returning it, so an endless
event stream is read from a real server on a free port, in a thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from services.intake.api import create_app
from shared.localbroker import free_port
from shared.settings import Settings
from tests.component.test_intake_api import FakeClock, Keys, _make_keys

STREAM = {"Accept": "text/event-stream"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Keys]]:
    """Intake served by uvicorn on a free port (no broker); its base URL and keys."""
    settings = Settings(var_dir=tmp_path, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    keys = _make_keys(settings)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, clock=FakeClock()), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_the_board_streams_a_called_number(served: tuple[str, Keys]) -> None:
    base, keys = served
    with httpx.Client(base_url=f"{base}/api/v1/queue", timeout=10) as client:
        ticket = client.post("/tickets", json={"field": "Hộ tịch"}, headers=keys.kiosk)
        assert ticket.status_code == 201, ticket.text
        with client.stream("GET", "/board", headers={**keys.kiosk, **STREAM}) as board:
            assert board.status_code == 200
            assert board.headers["content-type"].startswith("text/event-stream")
            lines = board.iter_lines()
            assert next(lines) == ": subscribed"  # the board listens from here on
            called = client.post("/counters/H56-01/call-next", headers=keys.counter)
            assert called.status_code == 200, called.text
            event: list[str] = []
            for line in lines:
                if line and not line.startswith(":"):
                    event.append(line)
                elif not line and event:
                    break
    assert event[0] == "event: called"
    assert event[1].startswith("data: ")
    assert json.loads(event[1].removeprefix("data: ")) == {
        "number": "A-001",
        "counter": "H56-01",
        "unit": "000.00.00.H56",
        "at": "2026-06-02T09:00:00+07:00",
    }


def test_the_board_refuses_keys_of_other_roles(served: tuple[str, Keys]) -> None:
    base, keys = served
    with httpx.Client(base_url=f"{base}/api/v1/queue", timeout=10) as client:
        assert client.get("/board", headers=STREAM).status_code == 401
        assert client.get("/board", headers={**keys.counter, **STREAM}).status_code == 403
        other = client.get(
            "/board", params={"unit": "000.00.01.H22"}, headers={**keys.kiosk, **STREAM}
        )
        assert other.status_code == 403
        assert client.get("/board", headers=keys.kiosk).status_code == 406  # not a stream client
