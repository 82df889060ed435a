"""benchmarks/soak_model.py for a few seconds on the scripted model: the correctness checks pass and the output has
every figure issue 18 asks for (the real-model run is a benchmark, not a test)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

from fraudagent.cli.services import ManagedProcess

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def soak_model() -> ModuleType:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # soak_model imports its neighbours soak and bench_summaries
    return importlib.import_module("soak_model")


def test_a_short_model_soak_passes_its_checks_and_reports_every_figure(
    ddb_server: ManagedProcess, tmp_path: Path
) -> None:
    out = tmp_path / "soak.json"
    status = soak_model().main(
        [
            "--minutes",
            "0.2",
            "--analysts",
            "2",
            "--burst",
            "4",
            "--think-s",
            "0.5",
            "--eval-limit",
            "1",
            "--drain-minutes",
            "1",
            "--token-delay-s",
            "0.005",
            "--ddb-url",
            ddb_server.url,
            "--out",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    assert status == 0, result["failures"]
    assert result["passed"] and result["failures"] == []
    chat = result["chat"]
    assert chat["ttft"]["turns"] >= 2 and chat["ttft"]["with_token"] == chat["ttft"]["turns"]
    assert all(chat["ttft"][k] is not None for k in ("p50_s", "p95_s", "max_s")) and chat["total_p95_s"] is not None
    assert chat["model_unavailable"] == 0 and chat["empty_answers"] == 0 and chat["errors"] == []
    assert {"model_unavailable", "empty_answer", "ttft_s", "total_s", "background"} <= set(result["turns"][0])
    stored = result["stored_answers"]
    assert stored["answers_stored"] == chat["ttft"]["turns"] and stored["errors"] == []
    jobs = result["summaries"]
    assert (
        jobs["statuses"] == {"done": 4}
        and jobs["callbacks_once"] == 4
        and jobs["callbacks_repeated"] == 0
        and jobs["bad_signatures"] == 0
    )
    for job in jobs["per_job"]:  # every case had no report: each job drafted one with the model
        assert (
            job["path"] in ("llm", "llm_retried", "fallback")
            and job["drafting_s"] is not None
            and job["reports_of_case"] == 1
        )
    assert result["eval_run"]["status"] == "succeeded" and result["eval_run"]["cases"] == 1
    assert isinstance(result["scheduler"]["preemptions"], int)
    assert len(result["load_average_start"]) == 3 and len(result["load_average_end"]) == 3 and result["cores"] >= 1
