"""Operations over real HTTP: readiness both ways, Prometheus metrics, request ids in JSON logs without
PII, the body size limit, tracing when configured, and schemathesis over the OpenAPI spec."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fraudagent.agent.pipeline import Investigator
from fraudagent.api.app import create_app
from fraudagent.bundles.service import load_bundle
from fraudagent.cli.services import ManagedProcess, free_port
from fraudagent.core.logging import configure_logging
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore, make_client
from fraudagent.store import dynamo
from fraudagent.store import keys as key_store
from fraudagent.store.tables import Tables
from tests.bundles import example
from tests.conftest import API_KEY, ARTIFACTS, LiveServer, client_for, make_settings

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def stores(
    ddb_server: ManagedProcess, tmp_path_factory: pytest.TempPathFactory, embedder: object
) -> tuple[Settings, Investigator]:
    """Two cases; the LLM setting points at a dead port, so reports take the deterministic fallback quickly."""
    settings = make_settings(ddb_server, tmp_path_factory.mktemp("ops"))
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    past = PastCaseStore(client=make_client(settings), collection=settings.chroma_collection, embedder=embedder)
    for n in range(2):
        doc = example()
        doc["case"] = dict(doc["case"], case_id=f"C-{n:06d}", opened_at=f"2026-03-0{n + 2}T14:05:00Z")
        load_bundle(history, CaseBundle.model_validate(doc), past_case_store=past, scorer=None)
    return settings, Investigator(settings=settings, history=history, past_cases=past)


@pytest.fixture(scope="module")
def api(stores: tuple[Settings, Investigator]) -> Iterator[LiveServer]:
    settings, investigator = stores
    with LiveServer(create_app(settings.model_copy(update={"api_max_body_bytes": 4096}), investigator)) as server:
        yield server


def test_readyz_names_what_is_not_reachable(api: LiveServer) -> None:
    response = client_for(api, key=None).get("/readyz")
    assert response.status_code == 503 and response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["components"]["dynamodb"] == "ok" and body["components"]["chroma"] == "ok"
    assert body["components"]["llm"].startswith("unavailable") and "llm" in body["detail"]
    assert response.headers["retry-after"]


def test_readyz_without_dynamodb_tables_is_not_ready(stores: tuple[Settings, Investigator]) -> None:
    settings, investigator = stores
    other = settings.model_copy(update={"table_prefix": "missing"})
    history = Tables.connect(other)
    with LiveServer(
        create_app(other, Investigator(settings=other, history=history, past_cases=investigator.past_cases))
    ) as server:
        body = client_for(server, key=None).get("/readyz").json()
    assert body["status"] == 503 and body["components"]["dynamodb"].startswith("unavailable")


class _CountingModels(ThreadingHTTPServer):
    """A loopback OpenAI-compatible stub that answers GET /v1/models and counts the calls (the model probe)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.calls += 1
                body = b'{"object": "list", "data": []}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def test_healthz_probes_nothing_and_readyz_probes_at_most_once_per_cache_period(
    stores: tuple[Settings, Investigator],
) -> None:
    settings, investigator = stores
    model = _CountingModels()
    try:
        ready = settings.model_copy(update={"llm_base_url": model.url, "readiness_cache_s": 1.0})
        with LiveServer(create_app(ready, investigator)) as server:
            anyone = client_for(server, key=None)
            for _ in range(5):
                health = anyone.get("/healthz")
                assert health.status_code == 200 and health.json() == {
                    "status": "ok",
                    "version": health.json()["version"],
                }
            assert model.calls == 0  # liveness never touches a dependency
            first, second = anyone.get("/readyz"), anyone.get("/readyz")
            assert first.status_code == second.status_code == 200, first.text
            assert first.json() == {"status": "ready", "components": {"dynamodb": "ok", "chroma": "ok", "llm": "ok"}}
            assert model.calls == 1  # the second answer came from the cache
            time.sleep(1.1)
            assert anyone.get("/readyz").status_code == 200 and model.calls == 2  # probed again once it expired
    finally:
        model.shutdown()
        model.server_close()


def test_healthz_stays_up_while_dynamodb_is_unreachable_and_readyz_says_so(
    ddb_server: ManagedProcess, tmp_path: Path
) -> None:
    """The app pointed at a DynamoDB endpoint where nothing listens (no JVM to stop): liveness answers from the
    process alone, readiness names DynamoDB, and a keyed request gets 503, not a hang."""
    dead = make_settings(
        ddb_server, tmp_path, ddb_endpoint_url=f"http://127.0.0.1:{free_port()}", ddb_max_attempts=1, summary_workers=0
    )
    investigator = Investigator(settings=dead, history=Tables.connect(dead), past_cases=None)
    with LiveServer(create_app(dead, investigator)) as server:
        anyone = client_for(server, key=None)
        started = time.monotonic()
        health = anyone.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok" and "components" not in health.json()
        assert time.monotonic() - started < 1
        ready = anyone.get("/readyz")
        assert ready.status_code == 503 and ready.headers["content-type"] == PROBLEM
        assert ready.json()["components"]["dynamodb"].startswith("unavailable") and "dynamodb" in ready.json()["detail"]
        assert client_for(server).get("/v1/cases/C-000000").status_code == 503


def test_made_up_keys_from_one_address_are_throttled_before_the_key_store_is_read(
    stores: tuple[Settings, Investigator], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each made-up key of our shape (`fa_<id>_<secret>`) is a cache miss, so a read of the keys table; past
    FRAUDAGENT_API_KEY_LOOKUP_LIMIT_PER_MINUTE such reads from one address the answer is 429 with Retry-After,
    given before the read. A known key (here the bootstrap key, which needs no read) still gets in."""
    settings, investigator = stores
    reads: list[str] = []
    real_find_key = key_store.find_key

    def counting_find_key(history: Tables, key_id: str) -> object:
        reads.append(key_id)
        return real_find_key(history, key_id)

    monkeypatch.setattr(key_store, "find_key", counting_find_key)
    limited = settings.model_copy(update={"api_key_lookup_limit_per_minute": 5, "api_rate_limit_per_minute": 0})
    with LiveServer(create_app(limited, investigator)) as server:
        statuses = []
        for n in range(30):
            response = client_for(server, key=f"fa_k{n:010d}_{'s' * 43}").get("/v1/cases")
            statuses.append(response.status_code)
            assert response.headers["content-type"] == PROBLEM
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1 and "look-ups" in response.json()["detail"]
        assert statuses == [401] * 5 + [429] * 25
        assert len(reads) == 5  # the refused 25 cost no read
        assert client_for(server).get("/v1/cases").status_code == 200  # the bootstrap key: no look-up, not throttled
        metrics = client_for(server).get("/metrics").text
        assert "fraudagent_key_lookups_total 5.0" in metrics and "fraudagent_rate_limited_total 25.0" in metrics


@pytest.mark.llm
def test_readyz_is_ready_when_everything_answers(
    stores: tuple[Settings, Investigator], llm_server: ManagedProcess
) -> None:
    settings, investigator = stores
    ready = settings.model_copy(update={"llm_base_url": llm_server.url})
    with LiveServer(create_app(ready, investigator)) as server:
        response = client_for(server, key=None).get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "components": {"dynamodb": "ok", "chroma": "ok", "llm": "ok"}}


def test_metrics_expose_latency_by_route_report_paths_tokens_and_queue_depth(api: LiveServer) -> None:
    client = client_for(api)
    report = client.post("/v1/cases/C-000001/report").json()
    assert report["path"] == "fallback"
    client.get("/v1/cases/C-000000")
    api.server.config.app.state.metrics.watch_queue("summaries", lambda: 7)  # the hook job workers use
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'fraudagent_http_request_duration_seconds_count{method="GET",route="/v1/cases/{case_id}",status="200"} 1.0'
        in text
    )
    assert 'route="/v1/cases/C-000000"' not in text  # templates, never raw ids
    assert 'fraudagent_reports_total{path="fallback"} 1.0' in text
    assert 'fraudagent_llm_tokens_total{kind="prompt"}' in text
    assert 'fraudagent_job_queue_depth{queue="summaries"} 7.0' in text
    # the model scheduler (agent/scheduler.py): nothing holds or waits for the model now, nothing was preempted
    assert (
        'fraudagent_model_calls{state="running"} 0.0' in text
        and 'fraudagent_model_calls{state="waiting_background"} 0.0' in text
    )
    assert "fraudagent_model_preemptions_total 0.0" in text


def test_request_ids_go_out_and_into_json_logs_without_pii(api: LiveServer) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO", "json")
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        response = client_for(api).get("/v1/cases/C-000000", headers={"X-Request-ID": "req-123"})
        logging.getLogger("fraudagent.test").warning(
            "contact jane.doe@example.com from 203.0.113.9 card 4111 1111 1111 1111"
        )
        generated = client_for(api).get("/v1/cases/C-unknown")
        for _ in range(100):  # the access line is written after the response went out: wait for it (bounded)
            if generated.headers["x-request-id"] in stream.getvalue():
                break
            time.sleep(0.05)
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert response.headers["x-request-id"] == "req-123"
    assert len(generated.headers["x-request-id"]) == 32 and generated.status_code == 404
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [r for r in lines if r["logger"] == "fraudagent.access"]
    mine = next(r for r in access if r["request_id"] == "req-123")
    assert mine["route"] == "/v1/cases/{case_id}" and mine["status"] == 200 and mine["key_id"] == "bootstrap"
    assert any(r["request_id"] == generated.headers["x-request-id"] and r["status"] == 404 for r in access)
    text = stream.getvalue()
    assert "jane.doe@example.com" not in text and "203.0.113.9" not in text and "4111" not in text
    assert "[email]" in text and "[ip]" in text and "[card]" in text
    # a made-up request id that is not a sane token is replaced, not echoed
    odd = client_for(api).get("/healthz", headers={"X-Request-ID": "<script>"})
    assert odd.headers["x-request-id"] != "<script>"


def test_bodies_over_the_limit_get_413(api: LiveServer) -> None:
    client = client_for(api)
    big = {"disposition": "inconclusive", "typology": "legitimate", "actions": ["escalate"], "notes": "x" * 5000}
    response = client.post("/v1/cases/C-000000/decision", json=big)
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM
    # without Content-Length (chunked): refused once the stream passes the limit
    chunks = iter([b'{"notes": "', b"y" * 3000, b"y" * 3000, b'"}'])
    streamed = client.post("/v1/cases/C-000000/decision", content=chunks, headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and streamed.headers["content-type"] == PROBLEM
    # one problem body for every 413, whichever way the size was found
    assert "content-length" in response.request.headers and "content-length" not in streamed.request.headers
    assert (
        streamed.json()
        == response.json()
        == {
            "type": "/problems/too-large",
            "title": "Content Too Large",
            "status": 413,
            "detail": "the request body is larger than 4096 bytes",
        }
    )
    assert client.get("/v1/cases/C-000000").json()["record"]["status"] == "open"


def test_api_responses_are_not_stored_by_caches(api: LiveServer) -> None:
    """`Cache-Control: no-store` on every JSON answer (data, problems, health, the spec, metrics, SSE sets its
    own); static files keep their own caching."""
    client, anyone = client_for(api), client_for(api, key=None)
    answers = {
        "data": client.get("/v1/cases"),
        "detail": client.get("/v1/cases/C-000000"),
        "404 problem": client.get("/v1/cases/C-unknown"),
        "401 problem": anyone.get("/v1/cases"),
        "422 problem": client.get("/v1/cases", params={"limit": 0}),
        "413 problem": client.post(
            "/v1/cases/C-000000/decision", content=b"x" * 5000, headers={"content-type": "application/json"}
        ),
        "healthz": anyone.get("/healthz"),
        "readyz": anyone.get("/readyz"),
        "openapi": anyone.get("/openapi.json"),
        "metrics": client.get("/metrics"),
        "unknown route": anyone.get("/nowhere"),
    }
    assert {name: r.headers.get("cache-control") for name, r in answers.items()} == dict.fromkeys(answers, "no-store")
    assert anyone.get("/console/static/console.css").headers.get("cache-control") != "no-store"


def test_docs_load_swagger_ui_from_the_package_under_a_csp(
    stores: tuple[Settings, Investigator], api: LiveServer
) -> None:
    """/docs names no other origin: its script and style come from this server (the pinned package's files),
    the start-up code is a file (no inline script), the CSP allows this origin only; no ReDoc page."""
    anyone = client_for(api, key=None)
    page = anyone.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert (
        "default-src 'none'" in csp
        and "script-src 'self';" in csp
        and "connect-src 'self'" in csp
        and "unsafe-inline" not in csp
    )
    assert "//" not in page.text  # no URL with a host, no protocol-relative one
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sorted(loaded) == [
        "/docs/assets/swagger-init.js",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "data:,",
    ]
    assert "<script>" not in page.text  # no inline script: CSP script-src 'self' would block it
    for url in (u for u in loaded if u != "data:,"):
        asset = anyone.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith("text/css" if url.endswith(".css") else "text/javascript"), url
    bundle = anyone.get("/docs/assets/swagger-ui-bundle.js").text
    assert len(bundle) > 500_000 and "SwaggerUIBundle" in bundle
    assert "validatorUrl: null" in anyone.get("/docs/assets/swagger-init.js").text
    assert anyone.get("/docs/assets/redoc.standalone.js").status_code == 404
    assert anyone.get("/redoc").status_code == 404
    # and off when FRAUDAGENT_API_DOCS=false (the spec stays)
    settings, investigator = stores
    with LiveServer(create_app(settings.model_copy(update={"api_docs": False}), investigator)) as server:
        off = client_for(server, key=None)
        assert off.get("/docs").status_code == 404 and off.get("/openapi.json").status_code == 200


def test_tracing_when_configured_makes_a_span_per_request(stores: tuple[Settings, Investigator]) -> None:
    settings, investigator = stores
    exporter = InMemorySpanExporter()
    app = create_app(settings, investigator, span_exporter=exporter)
    with LiveServer(app) as server:
        client_for(server).get("/v1/cases/C-000000")
        client_for(server, key=None).get("/healthz")  # excluded
    app.state.tracer_provider.force_flush()
    names = {span.name for span in exporter.get_finished_spans()}
    assert "GET /v1/cases/{case_id}" in names and not any("healthz" in n for n in names)
    # and none without an endpoint
    assert not hasattr(create_app(settings, investigator).state, "tracer_provider")


# --- schemathesis over the live app's OpenAPI spec -------------------------------------------------

SCHEMATHESIS_EXAMPLES = 25  # per operation and phase: bounded; the suite's time matters more than depth here
SCHEMATHESIS_TIMEOUT_S = 600  # a hard bound on the whole run
SCHEMATHESIS_CONFIG = """
# Identifiers that exist, drawn some of the time (the rest is generated), so requests reach past the 404s.
[dictionaries.cases]
values = ["C-000000", "C-000001"]
[dictionaries.sessions]
values = ["{session}"]
[dictionaries.jobs]
values = ["{job}"]
[dictionaries.runs]
values = ["{run}"]
[dictionaries.keys]
values = ["{key}"]
[dictionaries.suites]
values = ["mini"]
[dictionaries.callbacks]
values = ["{callback}", "http://127.0.0.1:9/hooks", "http://[::1/", "http://[2002:7f00:1::]/", "https://192.0.2.1/x"]

[parameters]
"path.case_id" = {{ dictionary = "cases", probability = 0.7 }}
"body.case_id" = {{ dictionary = "cases", probability = 0.7 }}
"path.session_id" = {{ dictionary = "sessions", probability = 0.7 }}
"body.session_id" = {{ dictionary = "sessions", probability = 0.5 }}
"path.job_id" = {{ dictionary = "jobs", probability = 0.7 }}
"path.run_id" = {{ dictionary = "runs", probability = 0.7 }}
"path.key_id" = {{ dictionary = "keys", probability = 0.7 }}
"body.suite" = {{ dictionary = "suites", probability = 0.8 }}
"body.callback_url" = {{ dictionary = "callbacks", probability = 0.7 }}
"""


def _loopback_only_getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list[Any]:
    """The callback guard's resolver for the schemathesis run: loopback resolves, nothing else does (no DNS look-up,
    no public or private address), so a generated callback URL can be refused or delivered on this machine only."""
    import ipaddress
    import socket

    name = "127.0.0.1" if str(host).lower() in ("localhost", "localhost.") else host
    try:
        infos = socket.getaddrinfo(name, port, *args, flags=socket.AI_NUMERICHOST, **kwargs)  # type: ignore[arg-type]
    except (OSError, UnicodeError):
        raise socket.gaierror(socket.EAI_NONAME, "not resolved in this test") from None
    if not all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos):
        raise socket.gaierror(socket.EAI_NONAME, "not resolved in this test")
    return infos


def test_the_openapi_spec_holds_no_5xx_and_no_schema_breaking_response(
    ddb_server: ManagedProcess,
    tmp_path: Path,
    embedder: object,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """schemathesis (its CLI: the pytest plugin needs a pytest older than ours) generates requests for every route and
    method (GET, POST, DELETE) from the live spec with the admin key (every role). The model is a scripted loopback
    endpoint (tests/fakes.py), so reports, report streams, chat, summary jobs and eval runs draft with it at once;
    identifiers that exist (cases, a chat session, a summary job, an eval run, a key to revoke) are drawn some of the
    time. Background work stays on the machine and bounded: callbacks resolve on loopback only, one delivery attempt
    each; eval runs use a three-case suite and a short queue."""
    import socket
    import types

    from fraudagent.summaries import callbacks
    from tests.fakes import ScriptedEndpoint
    from tests.integration.test_eval_runner import MINI, write_suite
    from tests.receiver import CallbackReceiver
    from tests.sse import sse_events

    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(
        callbacks,
        "socket",
        types.SimpleNamespace(getaddrinfo=_loopback_only_getaddrinfo, SOCK_STREAM=socket.SOCK_STREAM),
    )
    write_suite(tmp_path / "suites" / "mini", MINI)
    with ScriptedEndpoint() as model, CallbackReceiver() as receiver:
        settings = make_settings(
            ddb_server,
            tmp_path,
            llm_base_url=model.url,
            api_rate_limit_per_minute=0,
            callback_secret="schemathesis-secret",
            callback_max_attempts=1,
            callback_timeout_s=2,
            summary_workers=1,
            summary_poll_s=0.2,
            eval_suites_dir=tmp_path / "suites",
            eval_runs_dir=tmp_path / "runs",
            eval_bootstrap_samples=100,
            eval_api_max_queued=2,
        )
        history = Tables.connect(settings)
        dynamo.create_tables(history.client, settings)
        past = PastCaseStore(client=make_client(settings), collection=settings.chroma_collection, embedder=embedder)
        for n in range(2):
            doc = example()
            doc["case"] = dict(doc["case"], case_id=f"C-{n:06d}", opened_at=f"2026-03-0{n + 2}T14:05:00Z")
            load_bundle(history, CaseBundle.model_validate(doc), past_case_store=past, scorer=None)
        investigator = Investigator(settings=settings, history=history, past_cases=past)
        with LiveServer(create_app(settings, investigator)) as server:
            client = client_for(server)
            # What the dictionaries name: a session, a job, a finished eval run, a key to revoke; a drafted report.
            assert client.post("/v1/cases/C-000000/report", json={}).json()["path"] == "llm"
            with client.stream(
                "POST", "/v1/cases/C-000000/chat", json={"message": "Why was this case flagged?"}
            ) as chat:
                session = chat.headers["x-session-id"]
                assert [e for e, _ in sse_events(chat)][-1] == "final"
            job = client.post("/v1/summaries", json={"case_id": "C-000001", "callback_url": receiver.url}).json()[
                "job_id"
            ]
            run = client.post("/v1/evals/runs", json={"suite": "mini", "solver": "policy"}).json()["run_id"]
            for _ in range(240):  # bounded: a three-case policy run takes seconds
                if client.get(f"/v1/evals/runs/{run}").json()["status"] not in ("queued", "running"):
                    break
                time.sleep(0.5)
            key = client.post("/v1/keys", json={"name": "to revoke", "roles": ["analyst"]}).json()["key"]["key_id"]
            config = tmp_path / "schemathesis.toml"
            config.write_text(
                SCHEMATHESIS_CONFIG.format(session=session, job=job, run=run, key=key, callback=receiver.url)
            )
            started = time.monotonic()
            run_ = subprocess.run(
                [
                    str(Path(sys.executable).parent / "schemathesis"),
                    "--config-file",
                    str(config),
                    "run",
                    f"{server.url}/openapi.json",
                    # every check but two that misread this API: a schema-valid value may still be refused (an opaque
                    # cursor, a suite name, a callback URL: 422); an eval run's results exist once it succeeded (404
                    # while it is queued)
                    "--checks",
                    "all",
                    "--exclude-checks",
                    "positive_data_acceptance,ensure_resource_availability",
                    "--phases",
                    "examples,coverage,fuzzing,stateful",
                    "--max-examples",
                    str(SCHEMATHESIS_EXAMPLES),
                    "--workers",
                    "1",
                    "--seed",
                    "7",
                    "--request-timeout",
                    "30",
                    "--no-color",
                    "--header",
                    f"Authorization: Bearer {API_KEY}",
                    "--report",
                    "junit",
                    "--report-dir",
                    str(tmp_path),
                ],
                capture_output=True,
                text=True,
                timeout=SCHEMATHESIS_TIMEOUT_S,
                cwd=tmp_path,  # its cache lands there
                env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
            )
            took = time.monotonic() - started
            for _ in range(240):  # bounded: the summary jobs and eval runs it started end before the app stops
                pending = [
                    client.get(route, params={"status": st}).json()["items"]
                    for route in ("/v1/summaries", "/v1/evals/runs")
                    for st in ("queued", "running")
                ]
                if not any(pending):
                    break
                time.sleep(0.5)
    (ARTIFACTS / "schemathesis.txt").parent.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "schemathesis.txt").write_text(
        run_.stdout + run_.stderr + f"\n(run took {took:.0f} s; scripted model calls: {model.completions})\n"
    )
    assert run_.returncode == 0, run_.stdout[-6000:] + run_.stderr[-2000:]
    assert "No issues found" in run_.stdout or "passed" in run_.stdout
    assert (
        model.completions > 0 and receiver.received
    )  # drafting reached the (scripted) model; a callback was delivered
    # Nothing went wrong out of sight either: no error logged by a route, a summary worker or an eval run.
    errors = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


def test_the_spec_documents_problem_responses(api: LiveServer) -> None:
    spec = httpx.get(f"{api.url}/openapi.json").json()
    decision = spec["paths"]["/v1/cases/{case_id}/decision"]["post"]["responses"]
    assert set(decision) >= {"201", "401", "403", "404", "409", "413", "422", "429"}
    assert list(decision["409"]["content"]) == [PROBLEM]


def test_a_body_that_cannot_be_decoded_is_a_documented_400_problem(api: LiveServer) -> None:
    # found by schemathesis: a POST body of bytes that are not UTF-8 got a 400 that no operation documented
    response = client_for(api).post(
        "/v1/keys", content=b'\xff\xfe{"name"', headers={"content-type": "application/json"}
    )
    assert (
        response.status_code == 400 and response.headers["content-type"] == PROBLEM and response.json()["status"] == 400
    )
    spec = httpx.get(f"{api.url}/openapi.json").json()
    with_body = [
        (path, method) for path, ops in spec["paths"].items() for method, op in ops.items() if "requestBody" in op
    ]
    assert len(with_body) >= 8
    for path, method in with_body:
        assert list(spec["paths"][path][method]["responses"]["400"]["content"]) == [PROBLEM], (method, path)


def test_a_405_names_every_method_the_path_serves(api: LiveServer) -> None:
    # found by schemathesis: OPTIONS /v1/keys answered `Allow: POST`, though GET /v1/keys is served too (two routes)
    for path, served in (
        ("/v1/keys", {"GET", "POST"}),
        ("/v1/evals/runs", {"GET", "POST"}),
        ("/v1/cases/C-000000", {"GET"}),
    ):
        response = client_for(api).request("OPTIONS", path)
        assert response.status_code == 405 and response.headers["content-type"] == PROBLEM, path
        assert {m.strip() for m in response.headers["allow"].split(",")} - {"HEAD"} == served, (
            path,
            response.headers["allow"],
        )
    assert client_for(api).put("/v1/keys/k0").headers["allow"] == "DELETE"
