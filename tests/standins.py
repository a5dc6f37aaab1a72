"""Stand-ins for the services motcua talks to over HTTP (the SMS gateway), served for
real on loopback from a thread of the test process."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Answer = Callable[[dict[str, Any], HTTPMessage, str], tuple[int, dict[str, Any]]]
"""The status and JSON answer to one posted JSON body (with the request's headers and
path)."""


class JsonPostServer:
    """A real HTTP server on a free loopback port: each POST's JSON body goes to
    ``answer``, whose status and JSON are sent back. ``poll_interval`` is how often the
    serving thread looks for ``close``."""

    def __init__(self, answer: Answer, *, poll_interval: float = 0.5) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                status, body = answer(json.loads(self.rfile.read(length)), self.headers, self.path)
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self._server.serve_forever, args=(poll_interval,), daemon=True
        ).start()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> JsonPostServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
