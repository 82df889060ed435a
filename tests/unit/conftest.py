"""The unit tier starts no server: a test here that asks for one of the session's servers (or a fixture built on
them) is refused at collection, so the tier stays fast and runs anywhere."""

from __future__ import annotations

import pytest

SERVER_FIXTURES = frozenset(
    {"ddb_server", "llm_server", "chroma_server", "settings", "history", "past_cases", "embedder"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unit = [i for i in items if "tests/unit/" in str(i.path).replace("\\", "/")]
    misplaced = [
        f"{i.nodeid} ({', '.join(sorted(SERVER_FIXTURES & set(getattr(i, 'fixturenames', ()))))})"
        for i in unit
        if SERVER_FIXTURES & set(getattr(i, "fixturenames", ()))
    ]
    if misplaced:
        raise pytest.UsageError("unit tests that need a server belong in tests/integration: " + "; ".join(misplaced))
