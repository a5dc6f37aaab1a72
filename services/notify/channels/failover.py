"""Failover: a channel made of several sinks, tried in order."""

from __future__ import annotations

from collections.abc import Sequence

from services.notify.channels.base import DeliveryError, Outgoing, Sink


class FailoverSink:
    """Tries each sink in order until one accepts.

    Any exception from a sink fails over to the next: a ``DeliveryError`` as it says, any
    other (an ``OSError``, a bug) as a temporary error named by its type only (its text may
    carry a recipient). The error raised when all fail is temporary if any sink's was (a
    later round may succeed). ``resend_safe`` only if every sink is; ``reaches_citizen`` if
    any does. ``send_via`` also names the sink that accepted, for the status record.
    """

    def __init__(self, sinks: Sequence[Sink]) -> None:
        if not sinks:
            msg = "a channel needs at least one sink"
            raise ValueError(msg)
        self.sinks = list(sinks)
        self.name = "+".join(s.name for s in self.sinks)
        self.resend_safe = all(s.resend_safe for s in self.sinks)
        self.reaches_citizen = any(s.reaches_citizen for s in self.sinks)

    async def send_via(self, message: Outgoing) -> tuple[str, str | None]:
        """Send; return the accepting sink's name and the provider id."""
        errors: list[DeliveryError] = []
        for sink in self.sinks:
            try:
                return sink.name, await sink.send(message)
            except DeliveryError as exc:
                errors.append(exc)
            except Exception as exc:
                errors.append(DeliveryError(type(exc).__name__, temporary=True))
        reason = "; ".join(f"{s.name}: {e}" for s, e in zip(self.sinks, errors, strict=True))
        raise DeliveryError(reason, temporary=any(e.temporary for e in errors))

    async def send(self, message: Outgoing) -> str | None:
        """``Sink.send``: deliver through the first sink that accepts."""
        return (await self.send_via(message))[1]
