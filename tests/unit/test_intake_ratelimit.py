"""The public look-up's token buckets, on a hand-moved monotonic clock."""

from __future__ import annotations

from services.intake.ratelimit import TokenBuckets


def test_burst_then_refill_per_client() -> None:
    now = [0.0]
    buckets = TokenBuckets(burst=2, per_second=0.5, monotonic=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]
    assert buckets.take("b")  # another client has its own bucket
    assert buckets.retry_after("a") == 2.0
    now[0] = 2.0
    assert buckets.retry_after("a") == 0.0
    assert buckets.take("a")
    assert not buckets.take("a")


def test_forgets_the_least_recent_client_beyond_the_cap() -> None:
    buckets = TokenBuckets(burst=1, per_second=0.001, max_clients=2, monotonic=lambda: 0.0)
    assert buckets.take("a")
    assert buckets.take("b")
    assert buckets.take("c")  # "a" is forgotten
    assert buckets.take("a")  # and starts full again
    assert not buckets.take("c")
