"""Who is calling: the bootstrap key from the settings, or a stored key looked up (and briefly cached).

The cache holds the stored record by key id for FRAUDAGENT_API_KEY_CACHE_S seconds (misses too, so a
flood of made-up key ids does not become a flood of reads); the secret is compared on every request. A
key revoked through this service is dropped from the cache at once; revoked elsewhere (the CLI, another
replica) it fails within the cache time.

A lookup (a key id not in the cache) is the one step that costs a DynamoDB read, so before it the client's
address must pass `lookup_limiter` (FRAUDAGENT_API_KEY_LOOKUP_LIMIT_PER_MINUTE): a client sending made-up
keys is refused (429) before the store is read, while requests with the bootstrap key or a cached key
never count against it.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable

from pydantic import SecretStr

from fraudagent.keys.ratelimit import KeyRateLimiter, client_key
from fraudagent.store import keys as key_store
from fraudagent.store.keys import Role, StoredKey
from fraudagent.store.tables import Tables

BOOTSTRAP_KEY_ID = "bootstrap"


class Identity:
    """A verified caller: the key id (never the key), its name and roles."""

    __slots__ = ("key_id", "name", "roles")

    def __init__(self, key_id: str, name: str, roles: list[Role]) -> None:
        self.key_id, self.name, self.roles = key_id, name, roles


class LookupThrottled(Exception):
    """The client's address is over its key-lookup limit; `retry_after` in seconds."""

    def __init__(self, retry_after: int, per_minute: int) -> None:
        super().__init__(
            f"more than {per_minute} API-key look-ups a minute from this address; retry after {retry_after} s"
        )
        self.retry_after = retry_after


class KeyAuthenticator:
    def __init__(
        self,
        *,
        history: Tables,
        bootstrap_key: SecretStr | None,
        cache_s: float,
        lookup_limiter: KeyRateLimiter | None = None,
        on_lookup: Callable[[], None] | None = None,
    ) -> None:
        self._history = history
        self._bootstrap = bootstrap_key
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, StoredKey | None]] = {}
        self._lock = threading.Lock()
        self._lookup_limiter = lookup_limiter
        self._on_lookup = on_lookup

    def identify(self, presented: str, *, client: str | None = None) -> Identity | None:
        """The caller a presented key belongs to, or None for a missing, unknown, wrong or revoked key.

        Raises LookupThrottled when the key would have to be read from the store and `client` (the
        caller's address) is over the look-up limit."""
        if self._bootstrap is not None and hmac.compare_digest(
            presented.encode(), self._bootstrap.get_secret_value().encode()
        ):
            return Identity(BOOTSTRAP_KEY_ID, "bootstrap admin key", ["admin"])
        key_id = key_store.parse_key_id(presented)
        if key_id is None:
            return None
        stored = self._lookup(key_id, client)
        if stored is None or not stored.active or not key_store.matches(stored, presented):
            return None
        return Identity(stored.key_id, stored.name, list(stored.roles))

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._cache.pop(key_id, None)

    def _lookup(self, key_id: str, client: str | None) -> StoredKey | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self._cache_s:
            return hit[1]
        if self._lookup_limiter is not None:
            wait = self._lookup_limiter.admit(client_key(client))
            if wait is not None:
                raise LookupThrottled(wait, self._lookup_limiter.per_minute)
        if self._on_lookup is not None:
            self._on_lookup()
        stored = key_store.find_key(self._history, key_id)
        with self._lock:
            if len(self._cache) > 10_000:  # bounded: drop everything rather than track ages
                self._cache.clear()
            self._cache[key_id] = (now, stored)
        return stored
