"""Personal data and external model providers: stable tokens out, real values back.

Before a prompt goes to a provider configured as external, card numbers, emails,
IP addresses and the accounts' display names are replaced by stable tokens
(`[email-1]` is the same address everywhere in the prompt, so the model can still
reason about "the same email"); tokens in the model's answer are turned back into
the values afterwards, for callers allowed to see them. The local llama.cpp server
runs on this machine, so by default it sees the text as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from fraudagent.core.logging import PII_PATTERNS

_TOKEN = re.compile(r"\[(card|email|ip|name)-(\d+)\]")
MIN_NAME_CHARS = 3  # shorter names would match inside ordinary words


class Pseudonyms:
    """One report's mapping between personal values and their tokens."""

    def __init__(self, names: list[str] | None = None) -> None:
        self._token_of: dict[str, str] = {}
        self._value_of: dict[str, str] = {}
        self._names = sorted({n for n in names or [] if len(n) >= MIN_NAME_CHARS}, key=len, reverse=True)

    def _token(self, kind: str, value: str) -> str:
        if value not in self._token_of:
            token = f"[{kind}-{sum(t.startswith(f'[{kind}-') for t in self._value_of) + 1}]"
            self._token_of[value] = token
            self._value_of[token] = value
        return self._token_of[value]

    def mask(self, text: str) -> str:
        for kind, pattern in PII_PATTERNS:
            text = pattern.sub(lambda m, k=kind: self._token(k, m.group(0)), text)  # type: ignore[misc]
        for name in self._names:
            text = re.sub(re.escape(name), lambda m: self._token("name", m.group(0)), text)
        return text

    def restore(self, text: str) -> str:
        return _TOKEN.sub(lambda m: self._value_of.get(m.group(0), m.group(0)), text)

    @property
    def count(self) -> int:
        return len(self._value_of)


class KeyedPseudonyms(Pseudonyms):
    """Tokens made by a keyed hash (HMAC-SHA256 with a per-deployment secret) instead of a counter: the same value
    gets the same token in every document and every export made with that key, and without the key a token cannot
    be checked against guessed values (as a bare hash of an email could). For exports of decided cases."""

    def __init__(self, key: bytes, names: list[str] | None = None) -> None:
        super().__init__(names)
        self._key = key

    def digest(self, kind: str, value: str, *, chars: int = 12) -> str:
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()[:chars]

    def _token(self, kind: str, value: str) -> str:
        if value not in self._token_of:
            token = f"[{kind}-{self.digest(kind, value, chars=10)}]"
            self._token_of[value] = token
            self._value_of[token] = value
        return self._token_of[value]

    def token(self, kind: str, value: str) -> str:
        """The token of one value (`[name-…]`), as `mask` writes it in text."""
        return self._token(kind, value)

    def ident(self, kind: str, prefix: str, value: str) -> str:
        """A stable replacement for an identifier such as an account id (`A-` + 12 hex), still a valid bundle id."""
        return f"{prefix}{self.digest(kind, value)}"
