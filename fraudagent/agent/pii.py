"""Personal data and external model providers: stable tokens out, real values back.

Before a prompt goes to a provider configured as external, card numbers, emails,
IP addresses and the accounts' display names are replaced by stable tokens
(`[email-1]` is the same address everywhere in the prompt, so the model can still
reason about "the same email"); tokens in the model's answer are turned back into
the values afterwards, for callers allowed to see them. The local llama.cpp server
runs on this machine, so by default it sees the text as it is.
"""

from __future__ import annotations

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
