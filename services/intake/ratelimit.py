"""Small in-process token buckets, for the public look-up: one per client address, and
one per dossier code for wrong guesses.

In-process on purpose: each intake instance limits what it serves, so N instances
allow N times the rate. That bounds guessing well enough for a phone-gated look-up;
a shared limit per client belongs in the reverse proxy (nginx's ``limit_req`` in
compose), and one per code would need a shared store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBuckets:
    """One bucket of ``burst`` tokens per client, refilled at ``per_second``.

    Invariants: a client never spends more than ``burst`` tokens at once nor more than
    ``per_second`` tokens per second in the long run; at most ``max_clients`` buckets
    are kept (the least recently seen is forgotten, which only ever gives it a full
    bucket back).
    """

    def __init__(
        self,
        *,
        burst: int,
        per_second: float,
        max_clients: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = float(burst)
        self._rate = per_second
        self._max = max_clients
        self._now = monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> bool:
        """Spend one token of ``client``; ``False`` when its bucket is empty."""
        now = self._now()
        tokens, seen = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - seen) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return allowed

    def give_back(self, client: str) -> None:
        """Return the token ``client`` spent last (never beyond a full bucket): for a
        look-up that turned out not to be a guess."""
        if client in self._buckets:  # a forgotten bucket is full already
            tokens, seen = self._buckets[client]
            self._buckets[client] = (min(self._burst, tokens + 1.0), seen)

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` has a token again (0 when it has one)."""
        now = self._now()
        tokens, seen = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - seen) * self._rate)
        return max(0.0, (1.0 - tokens) / self._rate)
