"""POST /v1/cases/{case_id}/report/stream over real HTTP (uvicorn, DynamoDB Local, Chroma), read by a streaming
HTTP client that parses the server-sent events as they arrive: the stages in order, the final report equal to the
one stored, the same roles and problems as POST /report, a client that leaves mid-stream still gets its report
stored, and (marked `llm`) the real llama.cpp model through the route."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import httpx
import pytest

from fraudagent.agent.pipeline import Investigator
from fraudagent.agent.scheduler import ModelScheduler
from fraudagent.api import report_stream
from fraudagent.api.app import create_app
from fraudagent.bundles.service import load_bundle
from fraudagent.cli.services import ManagedProcess
from fraudagent.core.errors import DependencyUnavailable
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.store.tables import Tables
from tests.bundles import example
from tests.conftest import LiveServer, client_for
from tests.fakes import ScriptedStreamModel
from tests.receiver import role_keys
from tests.sse import sse_events

CASE = "C-000001"


STREAM = f"/v1/cases/{CASE}/report/stream"


@pytest.fixture
def stores(settings: Settings, history: Tables, past_cases: PastCaseStore) -> tuple[Settings, Tables, PastCaseStore]:
    doc = example()
    doc["case"] = dict(doc["case"], case_id=CASE)
    load_bundle(history, CaseBundle.model_validate(doc), past_case_store=past_cases, scorer=None)
    return settings.model_copy(update={"api_rate_limit_per_minute": 0}), history, past_cases


def serving(
    settings: Settings, history: Tables, past: PastCaseStore, model: Any | None, scheduler: ModelScheduler | None = None
) -> LiveServer:
    factory = (lambda *_a, **_k: model) if model is not None else None
    investigator = Investigator(
        settings=settings, history=history, past_cases=past, model_factory=factory, scheduler=scheduler
    )
    server = LiveServer(create_app(settings, investigator))
    server.keys = role_keys(history)  # type: ignore[attr-defined]
    return server


def read_stream(
    client: httpx.Client, path: str = STREAM, body: dict[str, Any] | None = None
) -> tuple[httpx.Response, list[tuple[str, dict[str, Any]]]]:
    with client.stream("POST", path, json=body) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, list(sse_events(response))


NARRATIVE = "A password reset from a new device in RO was followed 19 minutes later by a 100.00 USD gift card."


def model_draft(**changes: Any) -> str:
    """A draft as the model writes it (the constrained JSON; the narrative last)."""
    body = {
        "typology": "account_takeover",
        "actions": ["lock_account"],
        "confidence": "high",
        "findings": ["txn:E-99801", "txn:E-99812", "fact:credential_change"],
        "unknowns": ["holder_confirms"],
        "narrative": NARRATIVE,
    }
    return json.dumps(body | changes)


def stages(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The event names with runs of `token` collapsed to one."""
    out: list[str] = []
    for name, _ in events:
        if not (name == "token" and out and out[-1] == "token"):
            out.append(name)
    return out


def metric(client: httpx.Client, name: str) -> float:
    """The sum of a Prometheus counter's samples (admin key)."""
    text = client.get("/metrics").text
    return sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def test_the_stream_shows_each_stage_then_the_report_that_was_stored(stores: Any) -> None:
    # The first draft cites an id the case does not have, so the checks fail and it is sent back; the second passes.
    model = ScriptedStreamModel(answers=[model_draft(findings=["txn:E-00000"]), model_draft()])
    with serving(*stores, model) as server:
        admin = client_for(server)
        reports_before = metric(admin, "fraudagent_reports_total")
        client = client_for(server, key=server.keys["analyst"])  # type: ignore[attr-defined]
        response, events = read_stream(client)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        assert stages(events) == ["evidence", "drafting", "token", "checks", "drafting", "token", "checks", "report"], (
            stages(events)
        )
        evidence = events[0][1]
        assert evidence["items"] > 5 and evidence["events"] == 3 and evidence["seconds"] >= 0
        assert [d["attempt"] for n, d in events if n == "drafting"] == [1, 2]
        first, second = [d for n, d in events if n == "checks"]
        assert first["attempt"] == 1 and not first["ok"] and any("txn:E-00000" in p for p in first["problems"])
        assert second == {"attempt": 2, "ok": True, "problems": []}
        tokens = [d for n, d in events if n == "token"]
        assert all(set(t) == {"attempt", "narrative"} for t in tokens)
        assert tokens[-1]["narrative"] == NARRATIVE  # the whole narrative arrives before the checks
        report = events[-1][1]
        assert report["path"] == "llm_retried" and report["case_id"] == CASE and report["requested_by"] == "analyst ana"
        # the same report POST /report would have answered, stored, audited and counted
        latest = client.get(f"/v1/cases/{CASE}/reports", params={"limit": 1}).json()["items"][0]
        assert latest == report
        trail = client.get(f"/v1/cases/{CASE}/audit").json()["items"]
        assert any(e["action"] == "report.drafted" and e["details"]["report_id"] == report["report_id"] for e in trail)
        assert metric(admin, "fraudagent_reports_total") == reports_before + 1


def test_the_stream_needs_a_reader_key_and_a_known_case_before_it_starts(stores: Any) -> None:
    model = ScriptedStreamModel(answers=[model_draft()])
    with serving(*stores, model) as server:
        keys = server.keys  # type: ignore[attr-defined]
        assert read_stream(client_for(server, key=None))[0].status_code == 401
        refused, events = read_stream(client_for(server, key=keys["ticketing"]))
        assert (
            refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json" and not events
        )
        assert "analyst or evaluator" in refused.json()["detail"]
        client = client_for(server, key=keys["analyst"])
        missing, events = read_stream(client, "/v1/cases/C-unknown/report/stream")
        assert (
            missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json" and not events
        )
        assert missing.json()["title"] == "Case not found"
        assert read_stream(client, body={"model": "x" * 201})[0].status_code == 422
        assert client.get(f"/v1/cases/{CASE}/reports").json()["items"] == []
    assert model.seen == []  # nothing reached the model


def test_a_client_that_leaves_mid_stream_still_gets_its_report_stored(stores: Any) -> None:
    release = threading.Event()

    class Slow(ScriptedStreamModel):
        def _stream(self, *args: Any, **kwargs: Any) -> Any:
            release.wait(30)  # the model has not answered yet
            yield from super()._stream(*args, **kwargs)

    model = Slow(answers=[model_draft()])
    with serving(*stores, model) as server:
        client = client_for(server, key=server.keys["analyst"])  # type: ignore[attr-defined]
        seen = []
        with client.stream("POST", STREAM) as response:
            for name, _ in sse_events(response):
                seen.append(name)
                if name == "drafting":
                    break  # the analyst closes the tab while the model writes
        assert seen == ["evidence", "drafting"]
        release.set()
        deadline = time.monotonic() + 30
        while not (items := client.get(f"/v1/cases/{CASE}/reports").json()["items"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(items) == 1 and items[0]["path"] == "llm" and items[0]["requested_by"] == "analyst ana"
        assert metric(client_for(server), 'fraudagent_reports_total{path="llm"}') == 1


def test_a_busy_model_is_503_before_the_stream_starts_or_an_error_event_once_the_wait_runs_out(stores: Any) -> None:
    model = ScriptedStreamModel(answers=[model_draft()])
    full = ModelScheduler(slots=1, max_waiting=0, typical_call_s=20)
    with full.turn("background"), serving(*stores, model, scheduler=full) as server:  # the one slot is taken, no queue
        response, events = read_stream(client_for(server, key=server.keys["analyst"]))  # type: ignore[attr-defined]
        assert (
            response.status_code == 503
            and response.headers["content-type"] == "application/problem+json"
            and not events
        )
        assert response.json()["title"] == "Model busy" and int(response.headers["retry-after"]) >= 1
    slow = ModelScheduler(slots=1, interactive_wait_s=0.3, typical_call_s=20)
    with slow.turn("background"), serving(*stores, model, scheduler=slow) as server:  # queued, then the wait runs out
        client = client_for(server, key=server.keys["analyst"])  # type: ignore[attr-defined]
        response, events = read_stream(client)
        assert response.status_code == 200 and [n for n, _ in events] == ["evidence", "drafting", "error"]
        problem = events[-1][1]
        assert problem["status"] == 503 and problem["title"] == "Model busy" and problem["retry_after_s"] >= 1
        assert client.get(f"/v1/cases/{CASE}/reports").json()["items"] == []
    assert model.seen == []


def test_a_failure_while_drafting_ends_the_stream_with_a_problem_event(
    stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(investigator: Any, case_id: str, **kwargs: Any) -> Any:
        kwargs["progress"]("evidence", {"items": 1, "events": 1, "seconds": 0.01})
        raise DependencyUnavailable("dynamodb", "connection refused")

    monkeypatch.setattr(report_stream, "draft_and_store", broken)
    with serving(*stores, None) as server:
        response, events = read_stream(client_for(server, key=server.keys["analyst"]))  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert [n for n, _ in events] == ["evidence", "error"]
    assert events[1][1] == {
        "type": "/problems/unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "dynamodb is unavailable; retry later",
    }

    monkeypatch.setattr(report_stream, "draft_and_store", lambda *_a, **_k: 1 / 0)
    with serving(*stores, None) as server:
        _, events = read_stream(client_for(server, key=server.keys["analyst"]))  # type: ignore[attr-defined]
    assert events == [
        (
            "error",
            {
                "type": "about:blank",
                "title": "Internal Server Error",
                "status": 500,
                "detail": "an unexpected error; it was logged",
            },
        )
    ]


@pytest.mark.llm
def test_the_local_model_through_the_stream_route(stores: Any, llm_server: ManagedProcess) -> None:
    settings, history, past = stores
    settings = settings.model_copy(update={"llm_base_url": llm_server.url, "llm_timeout_s": 600, "llm_max_retries": 0})
    with serving(settings, history, past, None) as server:
        client = client_for(server, key=server.keys["analyst"])  # type: ignore[attr-defined]
        started = time.monotonic()
        arrivals: list[tuple[str, float, dict[str, Any]]] = []
        with client.stream("POST", STREAM) as response:
            assert response.status_code == 200
            arrivals = [(name, time.monotonic() - started, data) for name, data in sse_events(response)]
        stored = client.get(f"/v1/cases/{CASE}/reports", params={"limit": 1}).json()["items"][0]
    names = [n for n, _, _ in arrivals]
    assert names[0] == "evidence" and names[-1] == "report" and names.count("report") == 1 and "error" not in names
    assert names.index("drafting") < names.index("token") < names.index("checks")
    report = arrivals[-1][2]
    assert report == stored and report["usage"]["llm_calls"] >= 1
    assert not any(p.startswith("model call failed") for p in report["problems"])
    tokens = [(t, d) for n, t, d in arrivals if n == "token"]
    assert len(tokens) >= 2, "the model's output should arrive in more than one piece"
    gaps = [b - a for (a, _), (b, _) in zip(tokens, tokens[1:], strict=False)]
    assert (
        sum(g < 0.15 for g in gaps) <= 1 + len(names) // 10
    )  # throttled: about 5 a second (a held one may follow its flush)
    shown = [d["narrative"] for _, d in tokens if d["narrative"]]
    first_token_s = tokens[0][0]
    print(
        f"\nstreamed report with the local model: {len(tokens)} token events, first after {first_token_s:.1f}s, "
        f"report after {arrivals[-1][1]:.1f}s, path {report['path']}, narrative shown {len(shown)} times"
    )
