"""The whole path through the real parts: simulated store -> DynamoDB Local + Chroma -> evidence ->
the llama.cpp server with the real weights -> report -> API over HTTP; and the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudagent.agent.pipeline import Investigator
from fraudagent.api.app import create_app
from fraudagent.core.services import ManagedProcess
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore, make_client
from fraudagent.sim.export import write_world
from fraudagent.sim.risk import score_events
from fraudagent.sim.world import generate_world
from fraudagent.tools import dynamo
from fraudagent.tools import history as store
from fraudagent.tools.flows import load_path
from fraudagent.tools.history import History
from tests.conftest import LiveServer, client_for, make_settings


@pytest.fixture(scope="session")
def world_dir(session_dir: Path) -> Path:
    out = session_dir / "world"
    write_world(generate_world(seed=11, accounts=300, days=30, past_cases=200), out)
    return out


@pytest.fixture(scope="session")
def world(ddb_server: ManagedProcess, session_dir: Path, world_dir: Path, embedder: object) -> tuple[Settings, History, PastCaseStore]:
    settings = make_settings(ddb_server, session_dir)
    history = History.connect(settings)
    dynamo.create_tables(history.client, settings)
    past = PastCaseStore(client=make_client(settings), collection=settings.chroma_collection, embedder=embedder)
    load_path(history, world_dir, past_case_store=past, scorer=score_events)
    return settings, history, past


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FRAUDAGENT_DDB_ENDPOINT_URL": str(settings.ddb_endpoint_url),
           "FRAUDAGENT_TABLE_PREFIX": settings.table_prefix, "FRAUDAGENT_CHROMA_PATH": str(settings.chroma_path)}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "fraudagent.cli", *args], env=env, capture_output=True, text=True, timeout=600)


def test_the_simulated_store_loads_with_cases_and_scores(world: tuple[Settings, History, PastCaseStore], world_dir: Path) -> None:
    _, history, past = world
    manifest = json.loads((world_dir / "manifest.json").read_text())
    alerts = list((world_dir / "alerts").glob("*.json"))
    cases, cursor = [], None
    while True:
        page, cursor = store.list_cases(history, limit=100, cursor=cursor)
        cases += page
        if cursor is None:
            break
    assert len(cases) == len(alerts) > 0
    assert past.count() == 200
    assert manifest["seed"] == 11
    record = max(cases, key=lambda c: c.max_score or 0)
    events, _ = store.account_events(history, record.case.account_id, start=record.window_start, end=record.case.opened_at, max_items=1000)  # type: ignore[arg-type]
    assert events and any(s.score is not None for s in events)


def test_cli_loads_exports_and_refuses_bad_input(world: tuple[Settings, History, PastCaseStore], tmp_path: Path) -> None:
    settings, history, _ = world
    case_id = store.list_cases(history, limit=1)[0][0].case.case_id
    exported = _cli(settings, "export", case_id)
    assert exported.returncode == 0, exported.stderr
    bundle = json.loads(exported.stdout)
    assert bundle["case"]["case_id"] == case_id and bundle["events"]
    # loading the export again is a no-op that succeeds
    (tmp_path / "case.json").write_text(exported.stdout)
    assert _cli(settings, "load", str(tmp_path / "case.json")).returncode == 0
    bundle["events"][0]["ts"] = "yesterday"
    (tmp_path / "bad.json").write_text(json.dumps(bundle))
    refused = _cli(settings, "load", str(tmp_path / "bad.json"))
    assert refused.returncode == 2
    assert "nothing was loaded" in refused.stderr
    assert "$.events[0].ts" in refused.stderr
    missing = _cli(settings, "export", "C-does-not-exist")
    assert missing.returncode == 1 and "not found" in missing.stderr


@pytest.fixture(scope="session")
def live_api(world: tuple[Settings, History, PastCaseStore], llm_server: ManagedProcess) -> Iterator[LiveServer]:
    settings, history, past = world
    settings = settings.model_copy(update={"llm_base_url": llm_server.url, "llm_timeout_s": 600, "llm_max_retries": 1})
    with LiveServer(create_app(settings, Investigator(settings=settings, history=history, past_cases=past))) as server:
        yield server


@pytest.mark.llm
def test_a_report_drafted_by_the_local_model_over_http(live_api: LiveServer, world: tuple[Settings, History, PastCaseStore]) -> None:
    _, history, _ = world
    client = client_for(live_api)
    assert client.get("/healthz").json()["status"] == "ok"
    cases = client.get("/v1/cases", params={"limit": 200}).json()["items"]
    case_id = max(cases, key=lambda c: c["max_score"] or 0)["case"]["case_id"]
    response = client.post(f"/v1/cases/{case_id}/report")
    assert response.status_code == 200, response.text
    report = response.json()
    # the model was really asked, and answered
    assert report["usage"]["llm_calls"] >= 1 and report["usage"]["prompt_tokens"] > 200
    assert not any(p.startswith("model call failed") for p in report["problems"])
    # every citation resolves to evidence the case really has
    evidence = {item["id"] for item in client.get(f"/v1/cases/{case_id}").json()["evidence"]}
    cited = {i for f in report["findings"] for i in f["evidence_ids"]}
    assert cited and cited <= evidence
    assert store.reports(history, case_id)[0]["report_id"] == report["report_id"]


@pytest.mark.llm
def test_the_local_model_answers_with_a_structured_draft(llm_server: ManagedProcess) -> None:
    """Forced function calling against the real server returns a schema-valid Draft (grammar-constrained)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from fraudagent.agent.llm import chat_model, structured, usage_of
    from fraudagent.agent.prompts import SYSTEM_PROMPT
    from fraudagent.agent.report import Draft

    settings = Settings(llm_base_url=llm_server.url, llm_max_tokens=300, llm_timeout_s=600)
    evidence = (
        "EVIDENCE\n[txn:E-1] 03-02 13:42 password_reset dev D-77 ip RO\n"
        "[txn:E-2] 03-02 14:01 gift_card_purchase 100.00 USD dev D-77 ip RO\n"
        "[fact:credential_change] a 100.00 USD gift card 19 minutes after a password reset from a new device"
    )
    result = structured(chat_model(settings), Draft).invoke([SystemMessage(SYSTEM_PROMPT), HumanMessage(evidence)])
    draft = result["parsed"]
    assert isinstance(draft, Draft), result
    assert draft.findings and all(f.evidence_ids for f in draft.findings)
    prompt_tokens, completion_tokens = usage_of(result["raw"])
    assert prompt_tokens > 100 and completion_tokens > 10
