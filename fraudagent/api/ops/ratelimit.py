"""Per-key rate limits: a sliding one-minute window per API key (pyrate-limiter's in-memory bucket).

The window lives in this process: with several replicas each allows the limit (put a shared limiter or
the gateway's in front when that matters).
"""

from __future__ import annotations

import math
import threading
import time

from pyrate_limiter import Duration, InMemoryBucket, Rate, RateItem


class KeyRateLimiter:
    def __init__(self, *, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, InMemoryBucket] = {}
        self._lock = threading.Lock()

    def admit(self, key_id: str) -> int | None:
        """None when the request may go ahead, else the seconds to wait (for Retry-After)."""
        if self.per_minute <= 0:
            return None
        now = int(time.monotonic() * 1000)
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = InMemoryBucket([Rate(self.per_minute, Duration.MINUTE)])
            bucket.leak(now)  # drop requests older than the window, so memory stays bounded per key
            decision = bucket.put_decision(RateItem(key_id, now))
        if decision.failing_rate is None:
            return None
        return max(1, math.ceil((decision.retry_after_ms or 1000) / 1000))
