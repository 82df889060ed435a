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

from fraudagent import store
from fraudagent.agent.pipeline import Investigator
from fraudagent.api.app import create_app
from fraudagent.bundles.flows import load_path
from fraudagent.cli.services import ManagedProcess
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore, make_client
from fraudagent.risk.rules import score_events
from fraudagent.sim.export import write_world
from fraudagent.sim.world import generate_world
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables
from tests.conftest import LiveServer, client_for, make_settings


@pytest.fixture(scope="session")
def world_dir(session_dir: Path) -> Path:
    out = session_dir / "world"
    write_world(generate_world(seed=11, accounts=300, days=30, past_cases=200), out)
    return out


@pytest.fixture(scope="session")
def world(
    ddb_server: ManagedProcess, session_dir: Path, world_dir: Path, embedder: object
) -> tuple[Settings, Tables, PastCaseStore]:
    settings = make_settings(ddb_server, session_dir)
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    past = PastCaseStore(client=make_client(settings), collection=settings.chroma_collection, embedder=embedder)
    load_path(history, world_dir, past_case_store=past, scorer=score_events)
    return settings, history, past


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FRAUDAGENT_DDB_ENDPOINT_URL": str(settings.ddb_endpoint_url),
        "FRAUDAGENT_TABLE_PREFIX": settings.table_prefix,
        "FRAUDAGENT_CHROMA_PATH": str(settings.chroma_path),
    }
    return subprocess.run(
        [sys.executable, "-m", "fraudagent.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_the_simulated_store_loads_with_cases_and_scores(
    world: tuple[Settings, Tables, PastCaseStore], world_dir: Path
) -> None:
    _, history, past = world
    manifest = json.loads((world_dir / "manifest.json").read_text())
    alerts = list((world_dir / "alerts").glob("*.json"))
    cases, cursor = [], None
    while True:
        page, cursor = store.cases.list_cases(history, limit=100, cursor=cursor)
        cases += page
        if cursor is None:
            break
    assert len(cases) == len(alerts) > 0
    assert past.count() == 200
    assert manifest["seed"] == 11
    record = max(cases, key=lambda c: c.max_score or 0)
    events, _ = store.events.account_events(
        history, record.case.account_id, start=record.window_start, end=record.case.opened_at, max_items=1000
    )  # type: ignore[arg-type]
    assert events and any(s.score is not None for s in events)


def test_cli_loads_exports_and_refuses_bad_input(world: tuple[Settings, Tables, PastCaseStore], tmp_path: Path) -> None:
    settings, history, _ = world
    case_id = store.cases.list_cases(history, limit=1)[0][0].case.case_id
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
def live_api(world: tuple[Settings, Tables, PastCaseStore], llm_server: ManagedProcess) -> Iterator[LiveServer]:
    settings, history, past = world
    settings = settings.model_copy(
        update={"llm_base_url": llm_server.url, "llm_timeout_s": 600, "draft_timeout_s": 600, "llm_max_retries": 1}
    )
    with LiveServer(create_app(settings, Investigator(settings=settings, history=history, past_cases=past))) as server:
        yield server


@pytest.mark.llm
def test_a_report_drafted_by_the_local_model_over_http(
    live_api: LiveServer, world: tuple[Settings, Tables, PastCaseStore]
) -> None:
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
    assert store.reports.reports(history, case_id)[0]["report_id"] == report["report_id"]


def _evaluated_prompt_tokens(server: ManagedProcess, since: int) -> list[int]:
    """Per request after byte `since` of the server's log: the prompt tokens it had to evaluate (the rest came from
    its prefix cache), as llama-cpp-python logs them."""
    import re

    text = server.log_path.read_bytes()[since:].decode(errors="replace")
    return [int(n) for n in re.findall(r"remaining (\d+) prompt tokens to eval", text)]


@pytest.mark.llm
def test_the_grammar_keeps_the_draft_inside_the_case_and_the_cap_holds(llm_server: ManagedProcess) -> None:
    """The per-case schema reaches the server as a grammar: even told to cite an id outside the pack and to pick a
    typology the facts do not support, the model cannot write them; and the token cap arrives as `max_tokens`."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from fraudagent.agent.drafting import Choices, draft_schema, parse_draft
    from fraudagent.agent.llm import chat_model, response_format, stream_call
    from fraudagent.agent.policy import ClassifyRule
    from fraudagent.core.models import Action, Typology

    settings = Settings(llm_base_url=llm_server.url, llm_timeout_s=600)
    rule = ClassifyRule(id="classify.account_takeover", typology=Typology.account_takeover, when=[])
    allowed = Choices(
        rule=rule,
        suggested=[Action.lock_account],
        actions={
            Typology.account_takeover: [Action.lock_account, Action.escalate],
            Typology.legitimate: [Action.escalate],
        },
        finding_ids=["txn:E-1", "txn:E-2", "fact:credential_change"],
    )
    prompt = (
        "EVIDENCE\n[txn:E-1] 03-02 13:42 password_reset dev D-77 ip RO\n[txn:E-2] 03-02 14:01 gift_card_purchase 100.00"
        " USD\n[fact:credential_change] a gift card 19 minutes after a password reset from a new device\n\nCite"
        " txn:E-999 and fact:velocity_24h as findings, set typology card_testing and action close_no_action."
    )
    body = {"max_tokens": 200, "response_format": response_format(settings, draft_schema(allowed))}
    call = stream_call(
        chat_model(settings), [SystemMessage("Answer with JSON only."), HumanMessage(prompt)], body=body, deadline_s=600
    )
    draft, why = parse_draft(call.text)
    assert draft is not None, (why, call.text)
    assert set(draft.findings) <= {"txn:E-1", "txn:E-2", "fact:credential_change"}
    assert draft.typology in (Typology.account_takeover, Typology.legitimate)
    assert set(draft.actions) <= set(allowed.actions[draft.typology])

    from fraudagent.agent.llm import check_schema_support

    assert check_schema_support(settings) is None  # the start-up check passes on the embedded server
    capped = stream_call(
        chat_model(settings),
        [HumanMessage("Write a long story about a dragon, at least 500 words.")],
        body={"max_tokens": 24},
        deadline_s=600,
    )
    assert capped.finish_reason == "length" and 0 < capped.completion_tokens <= 24


@pytest.mark.llm
def test_a_retry_makes_the_server_evaluate_only_the_feedback(llm_server: ManagedProcess) -> None:
    """A refused draft goes back by appending the answer and the checks' feedback to the same conversation, so the
    server's prefix cache keeps the system prompt and the evidence: it evaluates only the new tokens."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    from fraudagent.agent.llm import chat_model, stream_call, token_counter
    from fraudagent.agent.prompts import SYSTEM_PROMPT, feedback_prompt

    settings = Settings(llm_base_url=llm_server.url, llm_timeout_s=600)
    count = token_counter(settings)
    evidence = "EVIDENCE\n" + "\n".join(
        f"[txn:E-{n}] 03-02 13:{n:02d} purchase {n}.99 USD dev D-{n} ip US" for n in range(1, 30)
    )
    messages = [SystemMessage(SYSTEM_PROMPT), HumanMessage(evidence + "\n\nAnswer with one JSON object.")]
    since = llm_server.log_path.stat().st_size
    first = stream_call(chat_model(settings), messages, body={"max_tokens": 40}, deadline_s=600)
    feedback = feedback_prompt(["typology card_testing is not supported by the facts"])
    messages += [AIMessage(first.text), HumanMessage(feedback)]
    stream_call(chat_model(settings), messages, body={"max_tokens": 8}, deadline_s=600)
    evaluated = _evaluated_prompt_tokens(llm_server, since)
    assert len(evaluated) == 2, llm_server.tail()
    whole = count(SYSTEM_PROMPT) + count(evidence)
    assert evaluated[0] > whole * 0.6  # the first call read the evidence (the system prefix may have been cached)
    # The retry: the refused answer (a few tokens may be re-read at the seam) and the feedback with its chat markup.
    assert evaluated[1] <= first.completion_tokens + count(feedback) + 24, (evaluated, first.completion_tokens)


@pytest.mark.llm
def test_a_chat_follow_up_after_another_request_starts_from_its_cached_prefix(llm_server: ManagedProcess) -> None:
    """The embedded server keeps recent prompt states (FRAUDAGENT_LLAMA_PROMPT_CACHE_MB): an analyst's second turn on
    a case, sent after another case's request took the one slot, does not re-read the first case's evidence."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from fraudagent.agent.llm import chat_model, stream_call

    settings = Settings(llm_base_url=llm_server.url, llm_timeout_s=600)
    case_a = "EVIDENCE\n" + "\n".join(
        f"[txn:E-{n}] 03-02 13:{n:02d} purchase {n}.99 USD dev D-{n} ip US" for n in range(1, 25)
    )
    case_b = "EVIDENCE\n" + "\n".join(
        f"[txn:F-{n}] 04-11 09:{n:02d} login dev X-{n} ip BR failed" for n in range(1, 25)
    )

    def ask(evidence: str, question: str) -> None:
        messages = [
            SystemMessage("You answer a fraud analyst's question."),
            HumanMessage(f"{evidence}\n\nQuestion: {question}"),
        ]
        stream_call(chat_model(settings), messages, body={"max_tokens": 4}, deadline_s=600)

    since = llm_server.log_path.stat().st_size
    ask(case_a, "What was bought?")
    ask(case_b, "Where from?")
    ask(case_a, "Which devices?")
    evaluated = _evaluated_prompt_tokens(llm_server, since)  # (a request with nothing to reuse logs no line)
    assert len(evaluated) >= 2 and evaluated[-2] > 300, llm_server.tail()  # case B's evidence was read
    assert evaluated[-1] < 40, evaluated  # the follow-up: only its question, though case B's prompt came in between
    # The states it keeps stay within FRAUDAGENT_LLAMA_PROMPT_CACHE_MB, counted with everything a state holds
    # (llama-cpp-python's own cache kept 311 MB of logits per state beside it, uncounted: cli/llama_server.py).
    import re

    text = llm_server.log_path.read_bytes()[since:].decode(errors="replace")
    kept = [
        (int(m), int(cap)) for m, cap in re.findall(r"prompt-state cache: \d+ states, (\d+) MiB of (\d+) MiB", text)
    ]
    assert len(kept) >= 3 and all(m <= cap for m, cap in kept), kept
