"""The interface every delivery channel implements.

Error tree: ``DeliveryError`` with ``temporary`` True (retry later: timeouts, 4xx SMTP
replies, gateway 5xx/429 or a temporary result code) or False (give up: a refused
address, a rejected request). Any other exception a sink raises (an ``OSError`` from a
full disk, a bug) is taken as a temporary failure of that message (``failover``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message handed to a channel; ``key`` is stable across retries and restarts.

    ``html``: an HTML alternative of ``body`` for e-mail (sinks without HTML ignore it).
    """

    key: str
    channel: str
    recipient: str
    subject: str | None
    body: str
    html: str | None = None


class DeliveryError(Exception):
    """The channel could not deliver; ``temporary`` says whether a retry may succeed."""

    def __init__(self, reason: str, *, temporary: bool) -> None:
        super().__init__(reason)
        self.temporary = temporary


class Sink(Protocol):
    """A delivery channel.

    ``resend_safe`` is true when sending the same key twice reaches the citizen once
    (the file sink rewrites one file; the SMS gateway de-duplicates on the key): only
    then is a send interrupted by a crash repeated. ``reaches_citizen`` is false for the
    development file sink: SMS quiet hours hold only sinks that ring a real phone.
    """

    name: str
    resend_safe: bool
    reaches_citizen: bool

    async def send(self, message: Outgoing) -> str | None:
        """Deliver, returning the provider's message id if it gives one; or raise
        ``DeliveryError`` (anything else raised counts as a temporary one)."""
        ...
