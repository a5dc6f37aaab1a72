"""A poller that can be woken early: the loop shape of the outbox relay and the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib


class Wakeup:
    """Sleep up to a timeout, or less if someone calls ``set`` (a commit added work)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Wake the sleeper now (or make its next sleep return at once)."""
        self._event.set()

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` or as soon as ``set`` was called, then re-arm."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()
