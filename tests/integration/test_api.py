"""The API over real HTTP (uvicorn on loopback), with DynamoDB Local and Chroma on disk behind it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fraudagent.agent.pipeline import Investigator
from fraudagent.api.app import create_app
from fraudagent.bundles.service import load_bundle
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.store.tables import Tables
from tests.bundles import example
from tests.conftest import LiveServer, client_for
from tests.fakes import ScriptedToolModel, draft


@pytest.fixture
def api(settings: Settings, history: Tables, past_cases: PastCaseStore) -> Iterator[LiveServer]:
    for n in range(5):
        doc = example()
        doc["case"] = dict(doc["case"], case_id=f"C-{n:06d}", opened_at=f"2026-03-0{n + 2}T14:05:00Z")
        load_bundle(history, CaseBundle.model_validate(doc), past_case_store=past_cases, scorer=None)
    model = ScriptedToolModel(script=[draft()])
    investigator = Investigator(
        settings=settings, history=history, past_cases=past_cases, model_factory=lambda *_a, **_k: model
    )
    with LiveServer(create_app(settings, investigator)) as server:
        yield server


def test_health_needs_no_key_and_reports_the_process_alone(api: LiveServer) -> None:
    response = client_for(api, key=None).get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "status": "ok",
        "version": body["version"],
    }  # no model server in this test: still alive (/readyz says the rest)


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_every_other_route_needs_the_key(api: LiveServer, key: str | None) -> None:
    for method, path in (("GET", "/v1/cases"), ("GET", "/v1/cases/C-000000"), ("POST", "/v1/cases/C-000000/report")):
        response = client_for(api, key=key).request(method, path)
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401


def test_cases_are_paged_newest_first(api: LiveServer) -> None:
    client = client_for(api)
    seen, cursor = [], None
    while True:
        body = client.get("/v1/cases", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [c["case"]["case_id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["C-000004", "C-000003", "C-000002", "C-000001", "C-000000"]


def test_cases_filter_by_age_as_a_key_range(api: LiveServer) -> None:
    client = client_for(api)
    window = {"opened_after": "2026-03-04T00:00:00Z", "opened_before": "2026-03-06T00:00:00+00:00"}
    assert [c["case"]["case_id"] for c in client.get("/v1/cases", params=window).json()["items"]] == [
        "C-000003",
        "C-000002",
    ]
    older = client.get("/v1/cases", params={"opened_before": "2026-03-03T14:05:00Z"}).json()["items"]
    assert [c["case"]["case_id"] for c in older] == ["C-000000"]  # strictly before: C-000001 opened at that instant
    younger = client.get("/v1/cases", params={"opened_after": "2026-03-06T14:05:00Z"}).json()["items"]
    assert [c["case"]["case_id"] for c in younger] == ["C-000004"]  # at or after


def test_bad_query_and_bad_cursor_are_problem_details(api: LiveServer) -> None:
    client = client_for(api)
    bad_ages = (
        {"opened_after": "2026-03-05T00:00:00Z", "opened_before": "2026-03-04T00:00:00Z"},
        {"opened_after": "2026-03-05T00:00:00"},
        {"opened_before": "0001-01-01T00:00:00+05:00"},
    )
    for params in ({"limit": 0}, {"status": "deleted"}, {"cursor": "garbage"}, *bad_ages):
        response = client.get("/v1/cases", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"


def test_a_number_is_not_an_age_filter(api: LiveServer) -> None:
    # found by schemathesis: opened_before=0.5 was read as half a second after 1970 (200), though the spec says
    # date-time
    for params in ({"opened_before": "0.5"}, {"opened_after": "1700000000"}, {"opened_after": "-1e3"}):
        response = client_for(api).get("/v1/cases", params=params)
        assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json", params
        assert response.json()["errors"][0]["pointer"].endswith(next(iter(params))), response.json()


def test_case_detail_carries_evidence_with_ids(api: LiveServer) -> None:
    body = client_for(api).get("/v1/cases/C-000002").json()
    assert body["record"]["case"]["account_id"] == "A-4471"
    ids = {item["id"] for item in body["evidence"]}
    assert {"txn:E-99812", "score:E-99812", "fact:credential_change"} <= ids
    assert body["latest_report"] is None


def test_unknown_case_is_404_problem(api: LiveServer) -> None:
    for method, path in (("GET", "/v1/cases/C-unknown"), ("POST", "/v1/cases/C-unknown/report")):
        response = client_for(api).request(method, path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Case not found"


def test_report_is_drafted_stored_and_shown_on_the_case(api: LiveServer) -> None:
    client = client_for(api)
    report = client.post("/v1/cases/C-000001/report").json()
    assert report["path"] == "llm" and report["case_id"] == "C-000001"
    assert report["requested_by"] == "bootstrap admin key"
    detail = client.get("/v1/cases/C-000001").json()
    assert detail["latest_report"]["report_id"] == report["report_id"]


def test_a_busy_model_gets_503_with_retry_after_and_loses_nothing(
    settings: Settings, history: Tables, past_cases: PastCaseStore
) -> None:
    """One slot, held by a background draft, and no room to wait: an analyst's report and chat are refused at once
    with problem+json 503 and Retry-After (not left hanging), and nothing half-drafted is stored."""
    import threading

    from fraudagent import store
    from fraudagent.agent.scheduler import ModelScheduler

    load_bundle(history, CaseBundle.model_validate(example()), past_case_store=past_cases, scorer=None)
    scheduler = ModelScheduler(slots=1, max_waiting=0, typical_call_s=15)
    investigator = Investigator(
        settings=settings,
        history=history,
        past_cases=past_cases,
        scheduler=scheduler,
        model_factory=lambda *_a, **_k: ScriptedToolModel(script=[draft()]),
    )
    release, held = threading.Event(), threading.Event()

    def background() -> None:
        with scheduler.turn("background"):
            held.set()
            release.wait(30)

    worker = threading.Thread(target=background, daemon=True)
    worker.start()
    assert held.wait(5)
    try:
        with LiveServer(create_app(settings, investigator)) as server:
            client = client_for(server)
            for path, body in (
                (f"/v1/cases/{example()['case']['case_id']}/report", None),
                (f"/v1/cases/{example()['case']['case_id']}/chat", {"message": "What happened?"}),
            ):
                response = client.post(path, json=body)
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["retry-after"] == "15" and response.json()["type"] == "/problems/model-busy"
            assert store.reports.reports(history, example()["case"]["case_id"]) == []
    finally:
        release.set()
        worker.join(5)
