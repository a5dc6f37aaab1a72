"""One vocabulary for refusing a request, shared by every service (no web framework here).

A use case or a domain rule raises a :class:`Refusal` (or a subclass of one); the app
factory (``shared.service.create_http_app``) answers it once, for every route of every
service, with the class's HTTP ``status``, the refusal's ``headers`` and the JSON body
of :meth:`Refusal.body`:

- ``{"detail": "<message>"}`` by default, the message being the exception's text;
- :class:`InvalidFields`: ``{"detail": [{"loc": ["body", "<field>"], "msg": "<message>",
  "type": "value_error"}, ...]}``, the shape of FastAPI's own validation errors, so a
  client reads a refused field the same way whoever refused it;
- a subclass may add members beside ``detail`` (e.g. a dossier's current ``status`` on
  an illegal transition) by overriding :meth:`Refusal.body`.

Contract: the message (and anything :meth:`Refusal.body` adds) is shown to the caller
and may be logged: it names codes, fields and states, never personal data (no names,
phone numbers, e-mail addresses, ID numbers). A refusal is the caller's business, not
an operational failure: it is never retried nor logged as an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

__all__ = [
    "Conflict",
    "FieldError",
    "Forbidden",
    "Invalid",
    "InvalidFields",
    "NotFound",
    "Refusal",
    "TooMany",
    "Unavailable",
]

FieldError = tuple[str, str]
"""(field, what is wrong with it)."""


class Refusal(Exception):
    """A request refused: answered with ``status``, ``headers`` and :meth:`body`."""

    status: ClassVar[int] = 400
    """The HTTP status of every refusal of this class."""

    def __init__(self, message: str = "", *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer: ``{"detail": <the message>}``."""
        return {"detail": str(self)}


class NotFound(Refusal):
    """No such thing, or none the caller may see (404). Where an access rule says so, a
    thing the caller may not reach is refused with the very same message as an unknown
    one (``shared.auth.dossier_not_found``), so that the answer tells nothing."""

    status = 404


class Forbidden(Refusal):
    """The caller is known but may not do this (403)."""

    status = 403


class Conflict(Refusal):
    """Not possible in the current state of the thing (409)."""

    status = 409


class Invalid(Refusal):
    """The request is well-formed but refused as a whole (422, the message says why)."""

    status = 422


class InvalidFields(Invalid):
    """The request is refused field by field (422): ``errors`` holds (field, message)
    pairs; the body is FastAPI's validation shape, each field under ``location``
    (``body`` or ``query``) with the error ``kind`` (``value_error`` unless told)."""

    location: ClassVar[str] = "body"

    def __init__(
        self,
        errors: Sequence[FieldError],
        *,
        location: str | None = None,
        kind: str = "value_error",
    ) -> None:
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))
        self.errors = list(errors)
        self.where = location or self.location
        self.kind = kind

    def loc(self, field: str) -> list[str]:
        """Where ``field`` is, as the body's ``loc`` names it."""
        return [self.where, field]

    def body(self) -> dict[str, Any]:
        """``{"detail": [{"loc": [...], "msg": ..., "type": ...}, ...]}``."""
        return {
            "detail": [
                {"loc": self.loc(field), "msg": message, "type": self.kind}
                for field, message in self.errors
            ]
        }


class TooMany(Refusal):
    """Too many requests for now (429); ``Retry-After`` says in how many seconds (at
    least 1) the caller may try again."""

    status = 429

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, round(retry_after)))})


class Unavailable(Refusal):
    """This service cannot answer this request for now (503); ``headers`` may carry a
    ``Retry-After``."""

    status = 503
