"""The eval runner end to end with the real local model (slow: marked llm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudagent.cli.services import ManagedProcess
from fraudagent.evals.flows import read_run, run_suite
from fraudagent.evals.suites import load_suite
from tests.conftest import make_settings
from tests.integration.test_eval_runner import write_suite


@pytest.mark.llm
def test_agent_and_naive_runs_with_the_local_model(
    ddb_server: ManagedProcess, llm_server: ManagedProcess, embedder: object, tmp_path: Path
) -> None:
    settings = make_settings(ddb_server, tmp_path, llm_base_url=llm_server.url, llm_timeout_s=900, llm_max_retries=1)
    suite = load_suite(str(write_suite(tmp_path / "suite", ["C-200001", "C-200015"])))
    agent = run_suite(
        suite=suite, settings=settings, out_dir=tmp_path / "agent", solver="agent", samples=200, embedder=embedder
    )
    saved = read_run(tmp_path / "agent")
    assert saved.meta.solver == "agent" and saved.meta.prompt_version and len(saved.cases) == 2
    for case in agent.cases:
        assert case.report is not None  # the pipeline always returns a report (model draft or fallback)
        assert case.path in ("llm", "llm_retried", "fallback")
        if case.path != "fallback":
            assert case.tokens > 0
        assert case.scores["citation_validity"].value == 1.0  # the pipeline only keeps citations that resolve
    assert agent.metrics["latency_p50_s"].value and agent.metrics["latency_p50_s"].value > 0
    print(
        "agent:",
        {k: v.value for k, v in agent.metrics.items()},
        [(c.case_id, c.path, c.scores["action_acceptable"].explanation) for c in agent.cases],
    )

    naive = run_suite(
        suite=suite,
        settings=settings,
        out_dir=tmp_path / "naive",
        solver="naive",
        limit=1,
        samples=200,
        embedder=embedder,
    )
    case = naive.cases[0]
    # Whatever the plain agent does is recorded honestly: a report with its scores, or the failure.
    assert (case.report is not None) != (case.error is not None)
    if case.error:
        assert not case.passed and case.scores["action_acceptable"].value == 0.0
    assert (tmp_path / "naive" / "junit.xml").exists()
    print(
        "naive:",
        {k: v.value for k, v in naive.metrics.items()},
        case.error or case.scores["action_acceptable"].explanation,
    )
