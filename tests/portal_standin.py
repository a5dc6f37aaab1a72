"""A stand-in for the national public-service portal (Cổng DVCQG), served for real on
loopback from a thread of the test process.

It keeps the protocol the portal service speaks (``services/portal``): ``POST /auth``
with the ``dstcode`` header and ``{username, password}`` gives a session; ``POST /sync``
with the header and ``{session, madonvi, service, isUpdating, data}`` answers
``{"error_code": 0}`` when the session is live. Every call is recorded with its answer.
On demand it is down (503), lets the sessions expire (401 or ``SESSION_EXPIRED``), or
refuses one dossier with a 4xx.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from tests.standins import JsonPostServer

USERNAME = "motcua-test"
PASSWORD = "mat-khau-thu"
DSTCODE = "000.00.00.H56"


@dataclass(frozen=True)
class Call:
    """One request the stand-in got, and what it answered."""

    path: str
    dstcode: str | None
    body: dict[str, Any]
    status: int
    answer: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.answer.get("error_code") == 0


class PortalStandIn:
    """The national portal on a free loopback port (``url``)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.down = False
        self.expired_answer: Literal["401", "SESSION_EXPIRED"] = "SESSION_EXPIRED"
        self.rejected: set[str] = set()
        """Dossier codes answered 400 (a record the portal refuses)."""
        self._sessions: set[str] = set()
        self._made = 0
        self._lock = threading.Lock()
        self._server = JsonPostServer(
            lambda body, headers, path: self.answer(path, headers.get("dstcode"), body),
            poll_interval=0.2,
        )

    @property
    def url(self) -> str:
        return self._server.base_url

    def env(self) -> dict[str, str]:
        """The settings that make the portal service send here, quickly retried."""
        return {
            "MOTCUA_PORTAL_URL": self.url,
            "MOTCUA_PORTAL_USERNAME": USERNAME,
            "MOTCUA_PORTAL_PASSWORD": PASSWORD,
            "MOTCUA_PORTAL_DSTCODE": DSTCODE,
            "MOTCUA_PORTAL_IDLE_SECONDS": "0.2",
            "MOTCUA_PORTAL_RETRY_FIRST_SECONDS": "0.3",
            "MOTCUA_PORTAL_RETRY_MAX_SECONDS": "1",
        }

    def answer(
        self, path: str, dstcode: str | None, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            status, answer = self._answer(path, dstcode, body)
            self.calls.append(Call(path, dstcode, body, status, answer))
        return status, answer

    def _answer(
        self, path: str, dstcode: str | None, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        if self.down:
            return 503, {"error_code": "UNAVAILABLE"}
        if dstcode != DSTCODE:
            return 403, {"error_code": "WRONG_DSTCODE"}
        if path == "/auth":
            return self._login(body)
        if path == "/sync":
            return self._sync(body)
        return 404, {"error_code": "NOT_FOUND"}

    def _login(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body != {"username": USERNAME, "password": PASSWORD}:
            return 403, {"error_code": "BAD_CREDENTIALS"}
        self._made += 1
        session = f"phien-{self._made}"
        self._sessions.add(session)
        return 200, {"error_code": 0, "session": session}

    def _sync(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("session") not in self._sessions:
            if self.expired_answer == "401":
                return 401, {"error_code": "UNAUTHORIZED"}
            return 200, {"error_code": "SESSION_EXPIRED"}
        if body.get("madonvi") != DSTCODE or body.get("isUpdating") not in ("True", "False"):
            return 400, {"error_code": "BAD_REQUEST"}
        if any(entry.get("MaHoSo") in self.rejected for entry in body.get("data", [])):
            return 400, {"error_code": "INVALID_MATTHC"}
        return 200, {"error_code": 0}

    def expire_sessions(self, answer: Literal["401", "SESSION_EXPIRED"]) -> None:
        """Every session given so far ends; a call with one is answered ``answer``."""
        with self._lock:
            self._sessions.clear()
            self.expired_answer = answer

    def logins(self) -> int:
        """Successful log-ins so far."""
        with self._lock:
            return sum(1 for c in self.calls if c.path == "/auth" and c.ok)

    def accepted(self, service: str, code: str) -> list[Call]:
        """The calls of ``service`` for dossier ``code`` the stand-in accepted, in order."""
        with self._lock:
            return [
                c
                for c in self.calls
                if c.ok
                and c.path == "/sync"
                and c.body["service"] == service
                and any(entry.get("MaHoSo") == code for entry in c.body["data"])
            ]

    def states(self, code: str) -> list[str]:
        """The national states of ``code`` the portal took, in order (DongBoHoSoMC)."""
        return [c.body["data"][0]["TrangThaiHoSo"] for c in self.accepted("DongBoHoSoMC", code)]

    def count(self, status: int) -> int:
        """Calls answered with HTTP ``status``."""
        with self._lock:
            return sum(1 for c in self.calls if c.status == status)

    def close(self) -> None:
        self._server.close()

    def __enter__(self) -> PortalStandIn:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
