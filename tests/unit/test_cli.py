"""The CLI as a user runs it, for commands that need no server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fraudagent.cli", *args], capture_output=True, text=True, timeout=300)


def test_sim_writes_a_store_and_alert_bundles(tmp_path: Path) -> None:
    done = _cli(
        "sim", "--out", str(tmp_path / "w"), "--seed", "5", "--accounts", "120", "--days", "14", "--past-cases", "30"
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert manifest["seed"] == 5
    assert (tmp_path / "w" / "store" / "events.jsonl").stat().st_size > 0
    assert len((tmp_path / "w" / "store" / "past_cases.jsonl").read_text().splitlines()) == 30


def test_bad_options_and_paths_give_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    too_short = _cli("sim", "--out", str(tmp_path / "w"), "--days", "3")
    assert too_short.returncode == 2 and "--days" in too_short.stderr
    missing = _cli("load", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_intake_refuses_a_bad_worker_id_in_one_line() -> None:
    from typer.testing import CliRunner

    from fraudagent.cli import app

    result = CliRunner().invoke(app, ["intake", "--worker-id", "not a valid id"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[0] == "error: bad --worker-id"
