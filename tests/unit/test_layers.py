"""What runs without the web layer: `fraudagent worker` (the CLI, the composition root, the summary workers)
imports neither fraudagent.api nor FastAPI. The layer contract itself is checked by `lint-imports` (.ci/run)."""

from __future__ import annotations

import subprocess
import sys

WORKER_IMPORTS = """
import sys
import fraudagent.cli, fraudagent.bootstrap, fraudagent.summaries.flows
print(sorted(m for m in sys.modules if m.startswith("fraudagent.api") or m.split(".")[0] == "fastapi"))
"""


def test_the_worker_command_does_not_import_the_web_package() -> None:
    done = subprocess.run([sys.executable, "-c", WORKER_IMPORTS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
