"""The README is the front door: every setting it must list, and the commands it promises, exist."""

from __future__ import annotations

from pathlib import Path

from fraudagent.cli import app
from fraudagent.core.settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [
        f"FRAUDAGENT_{name.upper()}" for name in Settings.model_fields if f"`FRAUDAGENT_{name.upper()}`" not in README
    ]
    assert missing == []


def test_every_cli_command_is_documented() -> None:
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    assert names and all(f"fraudagent {n}" in README for n in names)
    assert "make demo" in README and "make test" in README


def test_every_benchmark_script_is_documented() -> None:
    scripts = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py"))
    assert scripts and [s for s in scripts if f"benchmarks/{s}" not in README] == []
