"""``motcua up`` as a user runs it: one entry point, a dossier reaches notify, Ctrl-C
stops everything and leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.localbroker import free_port
from tests.factories import api_key_header, dossier_body

pytestmark = pytest.mark.integration


def processes_started_for(marker: str) -> list[int]:
    """PIDs whose environment names our private state directory."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ:
            pids.append(int(entry.name))
    return pids


CLOCK_START = "2026-12-02T14:30:00+07:00"
"""The stack runs from a Wednesday afternoon, whatever the hour of the test."""


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], str]]:
    var_dir = str(tmp_path / "state")
    port = free_port()
    env = {**os.environ, "MOTCUA_VAR_DIR": var_dir, "MOTCUA_CLOCK_START": CLOCK_START}
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "motcua.cli", "up", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "up.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "motcua up did not serve within 90 s"
            time.sleep(0.3)
        yield base, proc, var_dir
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def test_up_serves_every_service_through_one_entry_point_and_stops_cleanly(
    up: tuple[str, subprocess.Popen[bytes], str],
) -> None:
    base, proc, var_dir = up
    key_file = Path(var_dir) / "dev-admin.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    headers = api_key_header(key_file.read_text().strip())
    created = httpx.post(
        f"{base}/api/v1/dossiers", json=dossier_body(), headers=headers, timeout=10
    )
    assert created.status_code == 201, created.text
    code = created.json()["code"]
    # every service runs on the set clock: intake numbers the dossier on that day, and
    # the same-day procedure is due at its end
    assert code.split("-")[1] == "261202"
    assert created.json()["due_at"] == "2026-12-02T17:00:00+07:00"
    deadline = time.monotonic() + 60
    while True:
        sent = httpx.get(
            f"{base}/api/v1/notifications", params={"dossier": code}, headers=headers
        ).json()
        if sent and sent[0]["status"] == "sent":
            break
        assert time.monotonic() < deadline, f"no receipt sent for {code}"
        time.sleep(0.3)
    assert httpx.get(f"{base}/api/v1/sla/{code}").status_code == 401  # keys everywhere
    while True:  # the office reaches sla through routing, on its own time
        clock = httpx.get(f"{base}/api/v1/sla/{code}", headers=headers)
        assert clock.status_code == 200
        if clock.json()["office"] is not None:
            break
        assert time.monotonic() < deadline, f"sla never learnt the office of {code}"
        time.sleep(0.3)
    assert clock.json()["office"] == "000.00.00.H56"
    assert clock.json()["state"] == "in_time"  # the sla service's "now" is the set clock too
    assert httpx.get(f"{base}/api/v1/catalogue/2.000635").json()["field"] == "Hộ tịch"
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    for path in (
        "/api/v1/dossiers",
        "/api/v1/catalogue",
        "/api/v1/sla/{code}",
        "/api/v1/notifications",
    ):
        assert path in paths
    assert "swagger" in httpx.get(f"{base}/docs").text.lower()
    assert httpx.get(f"{base}/nowhere").status_code == 404
    assert len(processes_started_for(var_dir)) >= 6  # up, broker, four services

    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(30) == 0
    assert processes_started_for(var_dir) == []
    printed = (Path(var_dir).parent / "up.log").read_text()
    assert "WARNING: MOTCUA_CLOCK_START is set" in printed


def test_up_refuses_an_unparsable_clock_start_naming_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "motcua.cli", "up", "--port", str(free_port())],
        env={**os.environ, "MOTCUA_VAR_DIR": str(tmp_path), "MOTCUA_CLOCK_START": "tomorrow"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines == ["MOTCUA_CLOCK_START='tomorrow' is not an ISO 8601 date and time"]
    assert not (tmp_path / "logs").exists()  # nothing was started
