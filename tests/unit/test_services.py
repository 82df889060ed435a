"""The embedded servers' weights are refused unless their sha256 matches (no server is started here; starting
and stopping them: tests/integration/test_services.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudagent.cli.services import prepare_model, verify_model
from fraudagent.core.errors import DependencyUnavailable
from fraudagent.core.settings import Settings


def test_weights_with_another_sha256_are_refused(tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(DependencyUnavailable, match="sha256"):
        verify_model(Settings(weights_sha256=wrong))
    with pytest.raises(DependencyUnavailable, match="sha256"):
        prepare_model(Settings(cache_dir=tmp_path, weights_sha256=wrong))
    assert not list((tmp_path / "models").glob("*.gguf")), "a refused join leaves no model file behind"


def test_auto_draft_priorities_take_a_comma_list_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    for given, expected in (
        ("critical,high", ["critical", "high"]),
        ('["high", "critical"]', ["high", "critical"]),
        ("", []),
        (" low ", ["low"]),
    ):
        monkeypatch.setenv("FRAUDAGENT_AUTO_DRAFT_PRIORITIES", given)
        assert Settings().auto_draft_priorities == expected
    monkeypatch.setenv("FRAUDAGENT_AUTO_DRAFT_PRIORITIES", "critical,urgent")
    with pytest.raises(ValidationError):
        Settings()
