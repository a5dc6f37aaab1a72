"""The interface every delivery channel implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message handed to a channel; ``key`` is stable across retries."""

    key: str
    channel: str
    recipient: str
    subject: str | None
    body: str


class DeliveryError(Exception):
    """The channel could not deliver; ``temporary`` says whether a retry may succeed."""

    def __init__(self, reason: str, *, temporary: bool) -> None:
        super().__init__(reason)
        self.temporary = temporary


class Sink(Protocol):
    """A delivery channel. ``send`` must be safe to repeat with the same key."""

    async def send(self, message: Outgoing) -> None:
        """Deliver, or raise ``DeliveryError``."""
        ...
