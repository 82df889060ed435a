"""Eval runs through the API over HTTP: an evaluator starts a run, it runs in the background in its own stores,
and its status, metrics, gate, results and report come back; roles, bad input, a full queue, and a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fraudagent.agent.pipeline import Investigator
from fraudagent.api.app import create_app
from fraudagent.core.models import utc_iso
from fraudagent.core.settings import Settings
from fraudagent.evalruns.models import EvalRunRequest
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.store import audit, dynamo
from fraudagent.store import evalruns as run_store
from fraudagent.store import keys as key_store
from fraudagent.store.tables import Tables
from tests.conftest import LiveServer, client_for
from tests.fakes import ScriptedToolModel, draft
from tests.integration.test_eval_runner import MINI, write_suite


@pytest.fixture
def eval_settings(settings: Settings, tmp_path: Path) -> Settings:
    # A suite of three core cases, offered by name; thresholds the policy solver breaks on purpose.
    write_suite(tmp_path / "suites" / "mini", MINI, thresholds={"min": {"typology_accuracy": 1.01}, "max": {}})
    return settings.model_copy(
        update={
            "eval_suites_dir": tmp_path / "suites",
            "eval_runs_dir": tmp_path / "runs",
            "eval_bootstrap_samples": 100,
        }
    )


def _investigator(settings: Settings, history: Tables, past_cases: PastCaseStore, calls: list[Any]) -> Investigator:
    def factory(_settings: Settings, model: str | None = None) -> ScriptedToolModel:
        calls.append(model)
        return ScriptedToolModel(script=[draft(), draft()])

    return Investigator(settings=settings, history=history, past_cases=past_cases, model_factory=factory)


@pytest.fixture
def keys(history: Tables) -> dict[str, str]:
    return {
        role: key_store.create_key(history, name=f"{role} key", roles=[role], created_by="tests")[1]  # type: ignore[list-item]
        for role in ("evaluator", "analyst")
    }


def _wait(
    client: httpx.Client, run_id: str, until: tuple[str, ...] = ("succeeded", "failed", "interrupted")
) -> dict[str, Any]:
    for _ in range(600):  # bounded: a three-case policy run takes seconds
        run = client.get(f"/v1/evals/runs/{run_id}").json()
        if run["status"] in until:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} stayed {run['status']}")


def test_an_evaluator_runs_a_suite_in_the_background_and_reads_metrics_gate_results_and_report(
    eval_settings: Settings, history: Tables, past_cases: PastCaseStore, keys: dict[str, str]
) -> None:
    calls: list[Any] = []
    with LiveServer(create_app(eval_settings, _investigator(eval_settings, history, past_cases, calls))) as server:
        client = client_for(server, keys["evaluator"])
        started = client.post("/v1/evals/runs", json={"suite": "mini", "solver": "policy"})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert started.headers["location"] == f"/v1/evals/runs/{run_id}"
        run = _wait(client, run_id)
        assert run["status"] == "succeeded", run
        assert run["cases"] == 3 and 0 <= run["cases_passed"] <= 3 and run["requested_by"] == "evaluator key"
        rate = run["metrics"]["action_acceptable_rate"]
        assert 0 <= rate["value"] <= 1 and rate["n"] == 3 and rate["ci_low"] <= rate["value"] <= rate["ci_high"]
        assert run["gate"]["passed"] is False and any(b.startswith("typology_accuracy") for b in run["gate"]["broken"])
        results = client.get(run["results_url"])
        assert results.status_code == 200
        body = results.json()
        assert body["meta"]["run_id"] == run_id and body["meta"]["solver"] == "policy"
        assert {c["case_id"] for c in body["cases"]} == set(MINI)
        assert body["metrics"]["action_acceptable_rate"]["value"] == pytest.approx(rate["value"])
        report = client.get(run["report_url"])
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in report.headers["content-security-policy"] and "data:image/png" in report.text
        listed = client.get("/v1/evals/runs").json()["items"]
        assert listed[0]["run_id"] == run_id and listed[0]["status"] == "succeeded"
        assert (eval_settings.eval_runs_path / run_id / "junit.xml").is_file()
        # A second run, with the agent and a model override: the model asked for is the one used.
        second = client.post(
            "/v1/evals/runs", json={"suite": "mini", "solver": "agent", "model": "other-model", "limit": 1}
        )
        done = _wait(client, second.json()["run_id"])
        assert done["status"] == "succeeded" and done["cases"] == 1 and calls and set(calls) == {"other-model"}
        assert client.get(done["results_url"]).json()["meta"]["model"] == "other-model"
        newest_first = [r["run_id"] for r in client.get("/v1/evals/runs").json()["items"]]
        assert newest_first == [done["run_id"], run_id]
    trail = [e.action for e in audit.events_for(history, subject=f"evalrun#{run_id}").items]
    assert sorted(trail) == ["evalrun.requested", "evalrun.succeeded"]


def test_roles_bad_input_and_unknown_runs_are_problem_details(
    eval_settings: Settings, history: Tables, past_cases: PastCaseStore, keys: dict[str, str]
) -> None:
    with LiveServer(create_app(eval_settings, _investigator(eval_settings, history, past_cases, []))) as server:
        assert client_for(server, None).get("/v1/evals/runs").status_code == 401
        forbidden = client_for(server, keys["analyst"]).post(
            "/v1/evals/runs", json={"suite": "core", "solver": "policy"}
        )
        assert forbidden.status_code == 403 and forbidden.headers["content-type"] == "application/problem+json"
        client = client_for(server, keys["evaluator"])
        for body, pointer in (
            ({"suite": "nope"}, "suite"),
            ({"suite": "../core"}, "body/suite"),
            ({"suite": "/etc"}, "body/suite"),
            ({"suite": "core", "solver": "oracle"}, "body/solver"),
            ({"suite": "core", "limit": 0}, "body/limit"),
            ({"suite": "core", "extra": 1}, "body/extra"),
        ):
            refused = client.post("/v1/evals/runs", json=body)
            assert refused.status_code == 422, (body, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert pointer in [e["pointer"] for e in refused.json()["errors"]], refused.json()
        missing = client.get("/v1/evals/runs/ev-000000000000")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert client.get("/v1/evals/runs/ev-000000000000/results").status_code == 404
        assert client.get("/v1/evals/runs", params={"cursor": "garbage"}).status_code == 422
        assert client.get("/v1/evals/runs").json()["items"] == []  # nothing was queued by the refused requests


def test_a_full_queue_is_429_with_retry_after(
    eval_settings: Settings, history: Tables, past_cases: PastCaseStore, keys: dict[str, str]
) -> None:
    settings = eval_settings.model_copy(update={"eval_api_max_queued": 1})
    with LiveServer(create_app(settings, _investigator(settings, history, past_cases, []))) as server:
        # A run queued by another process (not this one's pool) fills the queue.
        store = history
        run_store.create_run(
            store,
            run_id="ev-elsewhere001",
            request=EvalRunRequest(suite="mini", solver="policy"),
            requested_by="other",
            caller_key_id="k-other",
        )
        full = client_for(server, keys["evaluator"]).post("/v1/evals/runs", json={"suite": "mini", "solver": "policy"})
        assert full.status_code == 429 and full.headers["retry-after"] == "60"
        assert full.headers["content-type"] == "application/problem+json"


def test_after_a_restart_a_dead_process_run_is_interrupted_and_queued_runs_are_run(
    eval_settings: Settings, history: Tables, past_cases: PastCaseStore, keys: dict[str, str]
) -> None:
    settings = eval_settings.model_copy(update={"eval_heartbeat_s": 1.0})
    dynamo.create_tables(history.client, settings)
    store = history
    request = EvalRunRequest(suite="mini", solver="policy")
    run_store.create_run(
        store, run_id="ev-deadprocess1", request=request, requested_by="evaluator key", caller_key_id="k"
    )
    assert run_store.claim(store, "ev-deadprocess1")  # its process then died: the heartbeat stops
    old = utc_iso(run_store._now().replace(year=2025))
    run_store.update(store, "ev-deadprocess1", expect=("running",), values={"heartbeat_at": old})
    run_store.create_run(
        store, run_id="ev-leftqueued1", request=request, requested_by="evaluator key", caller_key_id="k"
    )
    with LiveServer(create_app(settings, _investigator(settings, history, past_cases, []))) as server:
        client = client_for(server, keys["evaluator"])
        dead = client.get("/v1/evals/runs/ev-deadprocess1").json()
        assert dead["status"] == "interrupted" and "stopped during the run" in dead["error"]
        assert _wait(client, "ev-leftqueued1")["status"] == "succeeded"
    trail = [e.action for e in audit.events_for(history, subject="evalrun#ev-deadprocess1").items]
    assert trail == ["evalrun.interrupted"]
