"""A small in-process token bucket per client, for the public look-up.

In-process on purpose: each intake instance limits what it serves, so N instances
allow N times the rate. That bounds guessing well enough for a phone-gated look-up;
a shared limit would belong in the reverse proxy.
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

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` has a token again (0 when it has one)."""
        now = self._now()
        tokens, seen = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - seen) * self._rate)
        return max(0.0, (1.0 - tokens) / self._rate)
