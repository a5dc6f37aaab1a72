"""Event handlers registered per payload type.

A consumer says which payload types it takes and what it does with each; ``Handlers``
gives every event of a batch, in the batch's order, to the handler of its type, with the
payload as its model (validated once, by ``shared.events.decode``) and the envelope (for
its dossier code, ids and time). An event of a type no handler takes is skipped.

Handlers return what the consumer wants back: ``None`` for a plain effect, a value to
collect, or an awaitable that the caller awaits before the next event is handled::

    handlers: Handlers[Awaitable[None]] = Handlers()
    handlers.add(DossierRouted, on_routed)
    for done in handlers.each(events):
        await done

A consumer that applies a batch with batch-level queries selects per type first
(``shared.events.of_type``, ``Handlers.taken``) and keeps its queries whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from shared.events import Envelope, Payload

P = TypeVar("P", bound=Payload)
R = TypeVar("R")

Handler = Callable[[P, Envelope], R]
"""What a handler is called with: the event's payload (as its model) and its envelope."""


class Handlers(Generic[R]):
    """Handlers by payload type, each returning ``R``; one handler per type."""

    def __init__(self) -> None:
        self._by_type: dict[str, tuple[type[Payload], Callable[[Any, Envelope], R]]] = {}

    def add(self, model: type[P], handler: Handler[P, R]) -> None:
        """Give the events of ``model``'s type to ``handler``; ``ValueError`` if the type
        has a handler already."""
        if model.event_type in self._by_type:
            msg = f"{model.event_type!r} has a handler already"
            raise ValueError(msg)
        self._by_type[model.event_type] = (model, handler)

    def on(self, model: type[P]) -> Callable[[Handler[P, R]], Handler[P, R]]:
        """``add`` as a decorator: ``@handlers.on(DossierReceived)``."""

        def register(handler: Handler[P, R]) -> Handler[P, R]:
            self.add(model, handler)
            return handler

        return register

    @property
    def event_types(self) -> frozenset[str]:
        """The event types taken."""
        return frozenset(self._by_type)

    def takes(self, envelope: Envelope) -> bool:
        """Whether an event is of a type taken."""
        return envelope.type in self._by_type

    def taken(self, events: Iterable[Envelope]) -> list[Envelope]:
        """The events of types taken, in order."""
        return [envelope for envelope in events if envelope.type in self._by_type]

    def handle(self, envelope: Envelope) -> R | None:
        """What the handler of the event's type returns; ``None`` if no handler takes it."""
        found = self._by_type.get(envelope.type)
        if found is None:
            return None
        model, handler = found
        return handler(envelope.body(model), envelope)

    def run(self, events: Iterable[Envelope]) -> list[R]:
        """Handle the events taken, in order; what each handler returned. (For handlers
        that return awaitables, ``each``: one event at a time.)"""
        return list(self.each(events))

    def each(self, events: Iterable[Envelope]) -> Iterator[R]:
        """Handle the events taken, in order, one at a time as the iterator is advanced
        (so an awaitable a handler returns is awaited before the next event is handled);
        yields what each handler returns."""
        for envelope in events:
            found = self._by_type.get(envelope.type)
            if found is not None:
                model, handler = found
                yield handler(envelope.body(model), envelope)
