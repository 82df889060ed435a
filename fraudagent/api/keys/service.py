"""Who is calling: the bootstrap key from the settings, or a stored key looked up (and briefly cached).

The cache holds the stored record by key id for FRAUDAGENT_API_KEY_CACHE_S seconds (misses too, so a
flood of made-up key ids does not become a flood of reads); the secret is compared on every request. A
key revoked through this service is dropped from the cache at once; revoked elsewhere (the CLI, another
replica) it fails within the cache time.
"""

from __future__ import annotations

import hmac
import threading
import time

from pydantic import SecretStr

from fraudagent.tools import keys as key_store
from fraudagent.tools.history import History
from fraudagent.tools.keys import Role, StoredKey

BOOTSTRAP_KEY_ID = "bootstrap"


class Identity:
    """A verified caller: the key id (never the key), its name and roles."""

    __slots__ = ("key_id", "name", "roles")

    def __init__(self, key_id: str, name: str, roles: list[Role]) -> None:
        self.key_id, self.name, self.roles = key_id, name, roles


class KeyAuthenticator:
    def __init__(self, *, history: History, bootstrap_key: SecretStr | None, cache_s: float) -> None:
        self._history = history
        self._bootstrap = bootstrap_key
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, StoredKey | None]] = {}
        self._lock = threading.Lock()

    def identify(self, presented: str) -> Identity | None:
        """The caller a presented key belongs to, or None for a missing, unknown, wrong or revoked key."""
        if self._bootstrap is not None and hmac.compare_digest(presented.encode(), self._bootstrap.get_secret_value().encode()):
            return Identity(BOOTSTRAP_KEY_ID, "bootstrap admin key", ["admin"])
        key_id = key_store.parse_key_id(presented)
        if key_id is None:
            return None
        stored = self._lookup(key_id)
        if stored is None or not stored.active or not key_store.matches(stored, presented):
            return None
        return Identity(stored.key_id, stored.name, list(stored.roles))

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._cache.pop(key_id, None)

    def _lookup(self, key_id: str) -> StoredKey | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self._cache_s:
            return hit[1]
        stored = key_store.find_key(self._history, key_id)
        with self._lock:
            if len(self._cache) > 10_000:  # bounded: drop everything rather than track ages
                self._cache.clear()
            self._cache[key_id] = (now, stored)
        return stored
