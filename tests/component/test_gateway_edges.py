"""The edges of the local entry point (``motcua/gateway.py``), served as ``motcua up``
serves it, in front of a stand-in that records every request reaching a "service".

Requests are written on raw sockets (what ``curl --path-as-is`` sends): an HTTP client
would resolve ``..`` itself and hide the attack.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from motcua.gateway import create_gateway, path_refusal, server_config
from shared.localbroker import free_port, wait_for_port
from shared.settings import SERVICES, Settings
from tests.component.test_intake_api import FakeClock, intake_client

LIMIT = 1000
"""The gateway's body limit in these tests."""


@dataclass(frozen=True)
class Seen:
    """A request as a stand-in service received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class StandIn:
    """Every service at once: answers 200 to anything and records what reached it."""

    seen: list[Seen] = field(default_factory=list)

    def serve(self) -> ThreadingHTTPServer:
        recorded = self.seen

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                # header names lower-cased; a repeated header would keep its last value, so
                # the count of X-Forwarded-For lines is kept apart
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["x-forwarded-for-lines"] = str(
                    len(self.headers.get_all("x-forwarded-for") or [])
                )
                recorded.append(Seen(self.command, self.path, headers, body))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@dataclass
class Front:
    """An entry point under test, in front of a stand-in for every service."""

    name: str
    port: int
    stand_in: StandIn
    limit: int
    """Largest body it lets through."""


@contextmanager
def stand_in_serving() -> Iterator[tuple[StandIn, str]]:
    stand_in = StandIn()
    upstream = stand_in.serve()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    try:
        yield stand_in, f"127.0.0.1:{upstream.server_address[1]}"
    finally:
        upstream.shutdown()
        upstream.server_close()


@contextmanager
def gateway_front() -> Iterator[Front]:
    """``motcua up``'s entry point, served as ``motcua up`` serves it."""
    with stand_in_serving() as (stand_in, address):
        gateway = create_gateway(
            dict.fromkeys(SERVICES, f"http://{address}"),
            Settings(max_body_bytes=LIMIT, var_dir=Path("unused")),
        )
        port = free_port()
        server = uvicorn.Server(server_config(gateway, host="127.0.0.1", port=port))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.05)
        try:
            yield Front("gateway", port, stand_in, LIMIT)
        finally:
            server.should_exit = True
            thread.join(10)


NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "proxy" / "nginx.conf"


@contextmanager
def nginx_front(workdir: Path) -> Iterator[Front]:
    """The compose proxy's own ``deploy/proxy/nginx.conf``, its upstreams pointed at the
    stand-in and its port at a free one of loopback (skipped where nginx is not installed:
    ``apt-get install nginx-light``)."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if nginx is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light) to run its config")
    with stand_in_serving() as (stand_in, address):
        port = free_port()
        server = re.sub(
            r"http://(?:intake|routing|sla|notify):8080",
            f"http://{address}",
            NGINX_CONF.read_text(),
        )
        server = server.replace("resolver 127.0.0.11 valid=10s ipv6=off;", "")
        server = server.replace("listen 80;", f"listen 127.0.0.1:{port};")
        (workdir / "server.conf").write_text(server)
        (workdir / "nginx.conf").write_text(
            f"worker_processes 1; pid {workdir}/nginx.pid; daemon off;\n"
            f"error_log {workdir}/error.log;\n"
            "events { worker_connections 64; }\n"
            f"http {{ access_log {workdir}/access.log; client_body_buffer_size 2m;\n"
            f"  client_body_temp_path {workdir}/body; proxy_temp_path {workdir}/proxy;\n"
            f"  include {workdir}/server.conf; }}\n"
        )
        command = [nginx, "-p", str(workdir), "-e", str(workdir / "error.log")]
        command += ["-c", str(workdir / "nginx.conf")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port("127.0.0.1", port, timeout=10)
            yield Front("nginx", port, stand_in, 1024 * 1024)
        finally:
            process.terminate()
            process.wait(10)


@pytest.fixture(scope="module", params=["gateway", "nginx"])
def front(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Front]:
    """Each entry point in turn: ``motcua up``'s gateway, and nginx of docker-compose."""
    if request.param == "gateway":
        with gateway_front() as gateway:
            yield gateway
    else:
        with nginx_front(tmp_path_factory.mktemp("nginx")) as nginx:
            yield nginx


@pytest.fixture(scope="module")
def edge() -> Iterator[Front]:
    """The gateway alone."""
    with gateway_front() as gateway:
        yield gateway


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    """nginx alone."""
    with nginx_front(tmp_path_factory.mktemp("nginx")) as nginx:
        yield nginx


def send(
    port: int,
    request_line: str,
    headers: Sequence[str] = (),
    body: bytes = b"",
    *,
    source: str = "127.0.0.1",
) -> int:
    """Write one request as given on a new connection (from ``source``); the status."""
    head = "\r\n".join([request_line, "Host: motcua", *headers, "Connection: close", "", ""])
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)) as s:
        s.sendall(head.encode("latin-1") + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


# -- paths -------------------------------------------------------------------------------

ESCAPES = [
    "/api/v1/sla/../../../metrics",
    "/api/v1/sla/%2e%2e/%2e%2e/%2e%2e/metrics",
    "/api/v1/sla/%2E%2E/%2e%2E/%2E%2e/health/ready",
    "/api/v1/sla/.%2e/.%2E/.%2e/docs",
    "/api/v1/sla/%252e%252e/%252e%252e/%252e%252e/metrics",
    "/api/v1/sla/%25252e%25252e/%25252E%25252E/%25252e%25252e/metrics",
    "/api/v1/sla/%2525252e%2525252e/metrics",  # deeper than looked through: refused too
    "/api/v1/sla/..%2f..%2f..%2fmetrics",
    "/api/v1/sla/..%2F..%2F..%2Fmetrics",
    "/api/v1/sla/%2e%2e%2f%2e%2e%2f%2e%2e%2fmetrics",
    "/api/v1/sla/..%252f..%252f..%252fmetrics",
    "/api/v1/sla/..\\..\\..\\metrics",
    "/api/v1/sla/..%5c..%5c..%5cmetrics",
    "/api/v1/sla/..%255c..%255cmetrics",
    "/api/v1/sla/..;/..;/..;/metrics",
    "/api/v1/sla/./x",
    "/api/v1/sla/x/..",
    "/api/v1/sla/x/%2e",
    "/api/v1/sla//x",
    "/api/v1/sla/x%00",
    "/docs/../api/v1/sla/x",
    "http://127.0.0.1/api/v1/sla/../../metrics",
    "*",
]

CLEAN = [
    "/api/v1/dossiers/000.00.00.H56-260101-0001/slip?format=pdf",
    "/api/v1/catalogue/2.000635",
    "/api/v1/sla/000.00.00.H56-260101-0001",
    "/api/v1/reports/x%20y?unit=000.00.00.H56&q=a/../b",
    "/api/v1/notifications/",
    "/api/v1/sl%61/x",
    "/dashboard",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_no_way_out_of_a_prefix_reaches_a_service(front: Front, path: str) -> None:
    front.stand_in.seen.clear()
    assert send(front.port, f"GET {path} HTTP/1.1") == 400
    assert send(front.port, f"POST {path} HTTP/1.1", ["Content-Length: 2"], b"{}") == 400
    assert front.stand_in.seen == []


@pytest.mark.parametrize("path", CLEAN)
def test_a_clean_path_is_forwarded_exactly_as_it_came(front: Front, path: str) -> None:
    front.stand_in.seen.clear()
    assert send(front.port, f"GET {path} HTTP/1.1") == 200
    [seen] = front.stand_in.seen
    assert seen.target == path


def test_the_gateway_refuses_a_path_that_is_not_utf8(edge: Front) -> None:
    edge.stand_in.seen.clear()
    assert send(edge.port, "GET /api/v1/sla/x%ff HTTP/1.1") == 400
    assert edge.stand_in.seen == []


def test_path_refusal_names_what_is_wrong() -> None:
    assert path_refusal(b"/api/v1/sla/%252e%252e/x") == "dot segment"
    assert path_refusal(b"/api/v1/sla/a%252fb") == "encoded slash"
    assert path_refusal(b"/api/v1/sla/a%255cb") == "backslash"
    assert path_refusal(b"/a/%252525252e") == "percent-encoded too many times"
    assert path_refusal(b"/api/v1/sla/...") is None  # not a dot segment
    assert path_refusal(b"/api/v1/sla/.hidden/a.b") is None
    assert path_refusal(b"/api/v1/sla/%zz") is None  # not an escape: stays as it is


# -- forwarding headers ------------------------------------------------------------------


def test_forged_forwarding_headers_are_replaced_by_the_edges_own(front: Front) -> None:
    front.stand_in.seen.clear()
    forged = [
        "X-Forwarded-For: 203.0.113.7",
        "X-Forwarded-For: 198.51.100.1, 10.0.0.1",
        "Forwarded: for=203.0.113.7;proto=https",
        "X-Real-IP: 203.0.113.7",
    ]
    assert send(front.port, "GET /api/v1/public/x HTTP/1.1", forged) == 200
    assert send(front.port, "GET /api/v1/public/x HTTP/1.1", forged, source="127.0.0.2") == 200
    first, second = front.stand_in.seen
    # the peer's own address, one line: the edge believed none of the client's headers
    assert first.headers["x-forwarded-for"] == "127.0.0.1"
    assert second.headers["x-forwarded-for"] == "127.0.0.2"
    for seen in (first, second):
        assert seen.headers["x-forwarded-for-lines"] == "1"
        assert seen.headers["x-forwarded-proto"] == "http"
        assert "forwarded" not in seen.headers
        assert seen.headers.get("x-real-ip") in (None, seen.headers["x-forwarded-for"])


def test_nginx_limits_the_look_up_per_address_whatever_it_claims(proxy: Front) -> None:
    proxy.stand_in.seen.clear()
    body = b'{"code": "000.00.00.H56-260101-0001", "phone": "0912345678"}'

    def look_up(source: str, *headers: str) -> int:
        line = "POST /api/v1/public/lookup HTTP/1.1"
        sent = [f"Content-Length: {len(body)}", *headers]
        return send(proxy.port, line, sent, body, source=source)

    answers = [look_up("127.0.0.3", f"X-Forwarded-For: 203.0.113.{n}") for n in range(20)]
    assert answers[:10] == [200] * 10  # its burst
    assert answers.count(429) >= 5  # then one every 2 s, however many addresses it names
    assert look_up("127.0.0.4") == 200  # a client that really is another address


# -- body size ---------------------------------------------------------------------------


def test_a_declared_oversize_body_is_refused_unread(front: Front) -> None:
    front.stand_in.seen.clear()
    # declared and never sent: the answer comes before the body
    assert send(front.port, "POST /api/v1/dossiers HTTP/1.1", [f"Content-Length: {10**9}"]) == 413
    big = b"x" * (front.limit + 1)
    line = "POST /api/v1/dossiers HTTP/1.1"
    assert send(front.port, line, [f"Content-Length: {len(big)}"], big) == 413
    assert front.stand_in.seen == []


def test_an_oversize_chunked_body_is_refused(front: Front) -> None:
    front.stand_in.seen.clear()
    third = b"a" * (front.limit // 3 + 1)
    line = "PUT /api/v1/rules HTTP/1.1"
    assert (
        send(front.port, line, ["Transfer-Encoding: chunked"], chunked(third, third, third)) == 413
    )
    assert front.stand_in.seen == []


def test_a_body_at_the_limit_passes_whole(front: Front) -> None:
    front.stand_in.seen.clear()
    exact = b"y" * front.limit
    line = "POST /api/v1/dossiers HTTP/1.1"
    assert send(front.port, line, [f"Content-Length: {front.limit}"], exact) == 200
    half = front.limit // 2
    body = chunked(exact[:half], exact[half:])
    assert send(front.port, line, ["Transfer-Encoding: chunked"], body) == 200
    assert [seen.body for seen in front.stand_in.seen] == [exact, exact]


def test_every_service_refuses_an_oversize_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTCUA_MAX_BODY_BYTES", str(LIMIT))
    big = {"code": "000.00.00.H56-260101-0001", "phone": "0912345678", "x": "z" * LIMIT}
    with intake_client(tmp_path, FakeClock()) as (client, _keys):
        declared = client.post("/api/v1/public/lookup", json=big)
        assert declared.status_code == 413
        assert str(LIMIT) in declared.json()["detail"]
        streamed = client.post(  # no Content-Length: counted as it is read
            "/api/v1/dossiers",
            content=iter([b"{" + b" " * 600, b" " * 600 + b"}"]),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 413
        small = client.post("/api/v1/public/lookup", json={**big, "x": None})
        assert small.status_code == 422  # read and validated: the extra field is refused
