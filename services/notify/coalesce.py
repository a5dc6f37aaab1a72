"""Group commit for the dispatcher: the requests made while one statement runs go
together in the next.

The dispatcher's sends run in parallel; each asks, right before its send, whether its row
is still under its claim, and right after, to record its outcome. ``Coalescer`` turns
those one-row requests into batches: a request made while none runs starts a run at the
next turn of the event loop (so the requests of that turn go together); the requests made
while a run is in flight go together in the run after it. At most one run is in flight,
so the number of statements follows the database's speed, not the number of messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[K, T, R]):
    """Runs ``run`` on batches of requests; each request is an item with its own key, and
    gets ``run``'s answer for its key (``missing`` if the answer has none).

    An exception from ``run`` is the answer of every request of that batch; the next batch
    is tried anyway.
    """

    def __init__(
        self,
        run: Callable[[Sequence[T]], Awaitable[Mapping[K, R]]],
        key: Callable[[T], K],
        missing: R,
    ) -> None:
        self._run = run
        self._key = key
        self._missing = missing
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """Add ``item`` to the next batch and wait for its answer."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await future

    async def close(self) -> None:
        """Wait for the batch in flight (if any); cancelled, it is cancelled too."""
        if self._runner is not None:
            try:
                await asyncio.shield(self._runner)
            except asyncio.CancelledError:
                self._runner.cancel()
                raise

    async def _drain(self) -> None:
        """Run batches until no request waits; cancelled, the waiting requests are too."""
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            await asyncio.sleep(0)  # the requests of this turn of the loop go together
            while self._pending:
                batch, self._pending = self._pending, []
                await self._answer(batch)
        except asyncio.CancelledError:
            for _, future in batch + self._pending:
                future.cancel()
            self._pending = []
            raise

    async def _answer(self, batch: Sequence[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            answers = await self._run([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for item, future in batch:
            if not future.done():
                future.set_result(answers.get(self._key(item), self._missing))
