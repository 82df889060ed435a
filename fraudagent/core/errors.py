"""Errors the domain raises; the API maps them to problem+json, the CLI to one line."""

from __future__ import annotations

from dataclasses import dataclass


class FraudAgentError(Exception):
    """Base class: the message is safe to show to the caller (no secrets, no PII)."""


class NotFound(FraudAgentError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by a JSON path such as $.events[3].amount."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidInput(FraudAgentError):
    def __init__(self, summary: str, problems: list[Problem]) -> None:
        super().__init__(summary)
        self.problems = problems


class DependencyUnavailable(FraudAgentError):
    """A backing service (DynamoDB, the LLM, Chroma) did not answer."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service} unavailable: {detail}")
        self.service = service


class Conflict(FraudAgentError):
    """The change conflicts with the current state (e.g. a decision on a closed case)."""

    def __init__(self, kind: str, ident: str, detail: str) -> None:
        super().__init__(f"{kind} {ident!r}: {detail}")
        self.kind = kind
        self.ident = ident
