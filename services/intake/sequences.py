"""The numbers in dossier codes: each unit's sequence for the day, handed out from blocks
reserved in the database.

Invariants: no two dossiers of a unit and day get one number, in one process or across
instances (each block is reserved by one atomic upsert, committed before its numbers are
used). A block is as large as the receptions waiting for it when it is reserved: one at
a time, each reception reserves its own number (one short transaction, no lock held for
the reception's); under load, one reservation serves every reception queued meanwhile, so
the busy path makes no round trip per dossier and the receptions' transactions never wait
on the sequence row. Numbers follow each other in the order receptions ask for them. A
number whose reception then fails is not reused (a gap in the codes, never a duplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date

from services.intake import store
from shared.db import Database

__all__ = ["Sequences"]

_Key = tuple[str, date]


@dataclass(slots=True)
class _Block:
    """The numbers reserved and not yet handed out for one unit and day, and who waits."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0
    next: int = 1
    last: int = 0


class Sequences:
    """Hands out sequence numbers per unit and day from blocks reserved in ``db``."""

    def __init__(
        self,
        db: Database,
        writing: Callable[[], AbstractAsyncContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        """``writing``: held around each reservation (the SQLite writer's turn); the
        block's size is counted once it is held, so the receptions that queued behind it
        share the block."""
        self._db = db
        self._writing = writing
        self._blocks: dict[_Key, _Block] = {}

    async def take(self, unit: str, day: date) -> int:
        """The next number of ``unit`` on ``day``; reserves a block when none is left (in
        its own transaction, under ``writing``: call it outside a transaction that holds either)."""
        key = (unit, day)
        block = self._blocks.setdefault(key, _Block())
        block.waiting += 1
        try:
            async with block.lock:
                if block.next > block.last:
                    async with self._writing(), self._db.transaction() as session:
                        count = block.waiting
                        block.last = await store.reserve_sequences(session, unit, day, count)
                    block.next = block.last - count + 1
                number = block.next
                block.next += 1
                return number
        finally:
            block.waiting -= 1
            if block.waiting == 0 and block.next > block.last:
                del self._blocks[key]  # nothing kept between bursts, nor for past days
