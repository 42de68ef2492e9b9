"""The rate and log limiters on their own, with a fake clock."""

from __future__ import annotations

from cidbridge.server.security import LogLimiter, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_the_rate():
    clock = Clock()
    limiter = RateLimiter(3, 1.0, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # other keys are not affected
    clock.now = 1.0
    assert limiter.allow("a")
    assert not limiter.allow("a")


def test_log_limiter_reports_once_per_interval_with_the_count_it_kept_quiet():
    clock = Clock()
    limiter = LogLimiter(60.0, clock=clock)
    assert limiter.check("peer") == 0
    assert [limiter.check("peer") for _ in range(4)] == [None] * 4
    assert limiter.check("other") == 0
    clock.now = 59.9
    assert limiter.check("peer") is None
    clock.now = 60.0
    assert limiter.check("peer") == 5
    assert limiter.check("peer") is None


def test_log_limiter_memory_is_bounded():
    clock = Clock()
    limiter = LogLimiter(60.0, max_keys=10, clock=clock)
    assert all(limiter.check(n) == 0 for n in range(10))
    assert limiter.check("eleventh") is None  # full of recent peers: quiet, not growing
    assert len(limiter._seen) == 10
    clock.now = 61.0
    assert limiter.check("eleventh") == 0  # the old ones expired and were dropped
    assert len(limiter._seen) == 1
