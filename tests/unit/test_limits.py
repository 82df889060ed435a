"""The per-key rate limiter keeps a bounded number of buckets: past `max_tracked` keys it forgets idle ones (or,
when none is idle, all of them) and goes on admitting, where it used to fail comparing a time with a Duration."""

from __future__ import annotations

import pytest

from fraudagent.keys import ratelimit
from fraudagent.keys.ratelimit import KeyRateLimiter


def test_past_max_tracked_keys_the_limiter_forgets_and_keeps_admitting(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    limiter = KeyRateLimiter(per_minute=2, max_tracked=3)
    assert [limiter.admit(k) for k in ("a", "b", "c")] == [None, None, None]
    assert limiter.admit("d") is None  # none idle: every bucket dropped, "d" starts afresh
    assert len(limiter._buckets) == 1
    clock[0] += 61  # a whole window later "d" is idle
    assert [limiter.admit(k) for k in ("e", "f")] == [None, None]
    assert limiter.admit("g") is None and "d" not in limiter._buckets  # the idle one went first
    assert limiter.admit("g") is None and limiter.admit("g") is not None  # the limit still holds per key
