"""Rate limits: a sliding one-minute window per key (pyrate-limiter's in-memory bucket).

Two limiters use it: one per API key (after the key is known), and one per client address in front of the
key store (a presented key that is not in the authenticator's cache costs a DynamoDB read; made-up keys
from one address are refused before that read once the address is over its limit).

The windows live in this process: with several replicas each allows the limit (put a shared limiter or
the gateway's in front when that matters).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from typing import cast

from pyrate_limiter import Decision, Duration, InMemoryBucket, Rate, RateItem

MAX_TRACKED = 10_000  # buckets kept at most; idle ones are dropped first


class KeyRateLimiter:
    def __init__(self, *, per_minute: int, max_tracked: int = MAX_TRACKED) -> None:
        self.per_minute = per_minute
        self.max_tracked = max_tracked
        self._buckets: dict[str, InMemoryBucket] = {}
        self._last_ms: dict[str, int] = {}
        self._lock = threading.Lock()

    def admit(self, key: str) -> int | None:
        """None when the request may go ahead, else the seconds to wait (for Retry-After)."""
        if self.per_minute <= 0:
            return None
        now = int(time.monotonic() * 1000)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_tracked:
                    self._forget_idle(now)
                bucket = self._buckets[key] = InMemoryBucket([Rate(self.per_minute, Duration.MINUTE)])
            bucket.leak(now)  # drop requests older than the window, so memory stays bounded per key
            decision = cast(Decision, bucket.put_decision(RateItem(key, now)))  # an in-memory bucket answers at once
            self._last_ms[key] = now
        if decision.failing_rate is None:
            return None
        return max(1, math.ceil((decision.retry_after_ms or 1000) / 1000))

    def _forget_idle(self, now: int) -> None:
        """Memory stays bounded: buckets idle for a whole window hold nothing; if all are busy, start afresh."""
        idle = [k for k, last in self._last_ms.items() if now - last > int(Duration.MINUTE)]
        for key in idle if idle else list(self._buckets):
            self._buckets.pop(key, None)
            self._last_ms.pop(key, None)


def client_key(host: str | None) -> str:
    """The bucket of a client address: the address itself for IPv4, its /64 for IPv6 (one host usually
    holds a whole /64), the IPv4 address for an IPv4-mapped one."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a unix socket path or a test client's name
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
