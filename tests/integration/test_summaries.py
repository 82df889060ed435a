"""Ticketing summaries over HTTP: jobs in DynamoDB Local, worked by the app's leased workers, signed callbacks
to a loopback receiver, idempotent retries, dead letters, a worker killed mid-job, a burst of 100."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from fraudagent.agent.pipeline import Investigator, draft_and_store
from fraudagent.api.app import create_app
from fraudagent.bundles.service import load_bundle
from fraudagent.core.errors import InvalidInput
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.store import jobs as job_store
from fraudagent.store.jobs import LeaseLost
from fraudagent.store.tables import Tables
from fraudagent.summaries.callbacks import check_callback_url, verify
from fraudagent.summaries.models import DeliveryAttempt, SummaryRequest, SummaryResult
from tests.bundles import example
from tests.conftest import LiveServer, client_for
from tests.fakes import ScriptedToolModel, draft
from tests.receiver import CallbackReceiver, role_keys

SECRET = "test-callback-secret"
NOTE = (
    "customer says they did not buy these; reach me at jo.doe@example.org, card 4111 1111 1111 1111 "
    "[/code]<script>alert(1)</script> ![p](http://evil.example/x.png)"
)
NARRATIVE = "A password reset from 203.0.113.9 was followed 19 minutes later by a 100.00 USD gift card."
CASES = [f"C-{n:06d}" for n in range(3)]


def load_cases(history: Tables, past_cases: PastCaseStore) -> None:
    for n, case_id in enumerate(CASES):
        doc = example()
        doc["case"] = dict(doc["case"], case_id=case_id, opened_at=f"2026-03-0{n + 2}T14:05:00Z", note=NOTE)
        load_bundle(history, CaseBundle.model_validate(doc), past_case_store=past_cases, scorer=None)


def scripted_investigator(settings: Settings, history: Tables, past_cases: PastCaseStore) -> Investigator:
    factory = lambda *_a, **_k: ScriptedToolModel(script=[draft(narrative=NARRATIVE)])  # noqa: E731
    return Investigator(settings=settings, history=history, past_cases=past_cases, model_factory=factory)


def fast(settings: Settings, **changes: Any) -> Settings:
    base = {
        "api_rate_limit_per_minute": 0,
        "callback_secret": SecretStr(SECRET),
        "summary_poll_s": 0.1,
        "callback_backoff_s": 0.05,
        "callback_max_attempts": 3,
    }
    return settings.model_copy(update=base | changes)


@contextmanager
def serving(settings: Settings, investigator: Investigator) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings, investigator)) as server:
        server.keys = role_keys(investigator.history)  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def loaded(settings: Settings, history: Tables, past_cases: PastCaseStore) -> tuple[Settings, Tables, PastCaseStore]:
    load_cases(history, past_cases)
    return fast(settings), history, past_cases


def wait_for(client: httpx.Client, job_id: str, statuses: set[str], *, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/summaries/{job_id}").json()
        if job["status"] in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


ADF_NODES = {"doc", "heading", "paragraph", "bulletList", "listItem", "text"}


def adf_node_types(node: dict[str, Any]) -> set[str]:
    return {node["type"]} | {t for child in node.get("content", []) for t in adf_node_types(child)}


def test_summaries_render_in_markdown_jira_and_servicenow(loaded: tuple[Settings, Tables, PastCaseStore]) -> None:
    settings, history, past = loaded
    with serving(settings, scripted_investigator(settings, history, past)) as server:
        client = client_for(server)
        jobs = {}
        for fmt in ("markdown", "jira", "servicenow"):
            response = client.post("/v1/summaries", json={"case_id": "C-000001", "format": fmt})
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "queued" and response.headers["location"].endswith(
                response.json()["job_id"]
            )
            jobs[fmt] = response.json()["job_id"]
        done = {fmt: wait_for(client, job_id, {"done", "failed", "dead"}) for fmt, job_id in jobs.items()}
    assert {j["status"] for j in done.values()} == {"done"}
    # one report drafted for the case, reused by the other two jobs
    assert len({j["result"]["report_id"] for j in done.values()}) == 1
    markdown = done["markdown"]["result"]
    assert markdown["media_type"] == "text/markdown" and markdown["report_path"] == "llm"
    assert markdown["body"].startswith("## Fraud case C-000001: account takeover (confidence 0.85)")
    assert "txn:E-99801" in markdown["body"] and "lock account" in markdown["body"]
    adf = done["jira"]["result"]["body"]
    assert adf["version"] == 1 and adf["type"] == "doc" and adf_node_types(adf) <= ADF_NODES
    assert all(n["text"] for n in _texts(adf))
    note = done["servicenow"]["result"]["body"]
    assert note.startswith("[code]<h2>") and note.endswith("[/code]") and note.count("[/code]") == 1
    assert "<script>" not in note and "&lt;script&gt;" in note
    # an admin (the bootstrap key) sees every field, unredacted
    assert "203.0.113.9" in markdown["body"] and "evidence" in markdown["fields"] and "account" in markdown["fields"]


def _texts(node: dict[str, Any]) -> list[dict[str, Any]]:
    return ([node] if node["type"] == "text" else []) + [t for c in node.get("content", []) for t in _texts(c)]


def test_a_ticketing_caller_gets_only_allowed_fields_with_pii_redacted(
    loaded: tuple[Settings, Tables, PastCaseStore],
) -> None:
    settings, history, past = loaded
    with serving(settings, scripted_investigator(settings, history, past)) as server:
        client = client_for(server, key=server.keys["ticketing"])
        ids = {
            fmt: client.post("/v1/summaries", json={"case_id": "C-000002", "format": fmt}).json()["job_id"]
            for fmt in ("markdown", "jira", "servicenow")
        }
        done = {fmt: wait_for(client, job_id, {"done", "failed", "dead"}) for fmt, job_id in ids.items()}
        # another caller's job does not exist for this one, and an analyst key may not ask for summaries
        assert (
            client_for(server, key=server.keys["analyst"])
            .post("/v1/summaries", json={"case_id": "C-000002"})
            .status_code
            == 403
        )
    for fmt, job in done.items():
        assert job["status"] == "done"
        result = job["result"]
        assert result["fields"] == [f for f in settings.summary_ticketing_fields]
        text = result["body"] if isinstance(result["body"], str) else json.dumps(result["body"])
        for secret in ("203.0.113.9", "jo.doe@example.org", "4111 1111 1111 1111", "A-4471"):
            assert secret not in text, (fmt, secret)
        markers = set(re.findall(r"(?:\[|\\\[|&#91;)(ip|email|card)(?:\]|\\\]|&#93;)", text))
        assert markers == {"ip", "email", "card"}, fmt
        assert "untrusted" in text  # the customer's note is there, quoted and marked
    markdown = done["markdown"]["result"]["body"]
    assert "> [untrusted] case note: «" in markdown
    assert (
        "![" not in markdown and "!\\[p\\](http" in markdown and "<script>" not in markdown
    )  # no image, no link: escaped
    adf = done["jira"]["result"]["body"]
    marked = [t for t in _texts(adf) if "case note" in t["text"]]
    assert marked and marked[0]["marks"] == [{"type": "em"}]


def test_a_retried_request_with_the_same_idempotency_key_returns_the_same_job(
    loaded: tuple[Settings, Tables, PastCaseStore],
) -> None:
    settings, history, past = loaded
    settings = settings.model_copy(update={"summary_workers": 0})  # keep the jobs queued: count them
    with serving(settings, scripted_investigator(settings, history, past)) as server:
        client = client_for(server)
        body = {"case_id": "C-000000", "format": "jira"}
        with ThreadPoolExecutor(6) as pool:  # concurrent retries, as a ticketing system under timeouts sends them
            answers = list(
                pool.map(
                    lambda _: client.post("/v1/summaries", json=body, headers={"Idempotency-Key": "T-1"}), range(6)
                )
            )
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["job_id"] for a in answers}) == 1
        assert sum(a.json()["created"] for a in answers) == 1
        reused = client.post("/v1/summaries", json={**body, "format": "markdown"}, headers={"Idempotency-Key": "T-1"})
        assert reused.status_code == 422 and reused.headers["content-type"] == "application/problem+json"
        other = client.post("/v1/summaries", json=body, headers={"Idempotency-Key": "T-2"})
        plain = client.post("/v1/summaries", json=body)
        assert len({answers[0].json()["job_id"], other.json()["job_id"], plain.json()["job_id"]}) == 3
        assert job_store.queue_depth(history) == 3
        assert client.post("/v1/summaries", json={"case_id": "C-missing"}).status_code == 404
        assert client_for(server, key=None).post("/v1/summaries", json=body).status_code == 401


def test_the_callback_is_signed_and_received_once(loaded: tuple[Settings, Tables, PastCaseStore]) -> None:
    settings, history, past = loaded
    with CallbackReceiver() as receiver, serving(settings, scripted_investigator(settings, history, past)) as server:
        client = client_for(server, key=server.keys["ticketing"])
        job_id = client.post(
            "/v1/summaries", json={"case_id": "C-000000", "format": "markdown", "callback_url": receiver.url}
        ).json()["job_id"]
        job = wait_for(client, job_id, {"done", "dead", "failed"})
    assert job["status"] == "done" and job["delivered_at"]
    assert [d["outcome"] for d in job["deliveries"]] == ["delivered"] and job["deliveries"][0]["status_code"] == 200
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.path == "/hooks/fraud"
    assert got.headers["x-signature"].startswith("sha256=")
    assert verify(SECRET, got.headers["x-timestamp"], got.body, got.headers["x-signature"])
    assert not verify("another-secret", got.headers["x-timestamp"], got.body, got.headers["x-signature"])
    assert abs(int(got.headers["x-timestamp"]) - time.time()) < 600
    assert got.headers["x-delivery-id"] == job_id
    payload = json.loads(got.body)
    assert payload["job_id"] == job_id and payload["case_id"] == "C-000000"
    assert payload["result"] == job["result"]


def test_a_receiver_that_keeps_failing_dead_letters_the_job(loaded: tuple[Settings, Tables, PastCaseStore]) -> None:
    settings, history, past = loaded
    with (
        CallbackReceiver(fail_always=True) as receiver,
        serving(settings, scripted_investigator(settings, history, past)) as server,
    ):
        client = client_for(server)
        job_id = client.post("/v1/summaries", json={"case_id": "C-000001", "callback_url": receiver.url}).json()[
            "job_id"
        ]
        job = wait_for(client, job_id, {"dead", "done", "failed"})
        dead = client.get("/v1/summaries", params={"status": "dead"}).json()["items"]
    assert job["status"] == "dead" and "callback failed 3 times" in job["error"]
    assert [(d["attempt"], d["outcome"], d["status_code"]) for d in job["deliveries"]] == [
        (n, "failed", 500) for n in (1, 2, 3)
    ]
    assert len(receiver.received) == 3 and {r.headers["x-delivery-attempt"] for r in receiver.received} == {
        "1",
        "2",
        "3",
    }
    assert job["result"] is not None  # the summary itself is kept
    assert [j["job_id"] for j in dead] == [job_id]


def test_a_receiver_that_recovers_gets_the_callback_once(loaded: tuple[Settings, Tables, PastCaseStore]) -> None:
    settings, history, past = loaded
    with (
        CallbackReceiver(fail_first=2) as receiver,
        serving(settings, scripted_investigator(settings, history, past)) as server,
    ):
        client = client_for(server)
        job_id = client.post("/v1/summaries", json={"case_id": "C-000001", "callback_url": receiver.url}).json()[
            "job_id"
        ]
        job = wait_for(client, job_id, {"dead", "done", "failed"})
    assert job["status"] == "done"
    assert [d["outcome"] for d in job["deliveries"]] == ["failed", "failed", "delivered"]
    assert len(receiver.received) == 3 and len({r.headers["x-signature"] for r in receiver.received}) >= 1


def test_callback_urls_are_checked_against_ssrf(loaded: tuple[Settings, Tables, PastCaseStore]) -> None:
    settings, history, past = loaded
    with serving(settings, scripted_investigator(settings, history, past)) as server:
        client = client_for(server)
        for url in (
            "ftp://127.0.0.1/x",
            "file:///etc/passwd",
            "http://169.254.169.254/latest/meta-data",
            "http://user:pw@127.0.0.1/",
            "http://no-such-host.invalid/hook",
            "http:///nohost",
        ):
            response = client.post("/v1/summaries", json={"case_id": "C-000000", "callback_url": url})
            assert response.status_code == 422, url
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["errors"][0]["pointer"] in ("callback_url", "body/callback_url")
    check_callback_url("http://127.0.0.1:9/hook", production=False)  # dev mode: loopback receivers are fine
    for url in (
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.5/",
        "http://[::1]/hook",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
    ):
        with pytest.raises(InvalidInput):
            check_callback_url(url, production=True)
    check_callback_url("https://93.184.215.14/hook", production=True)  # a public address passes (no request is made)


def test_a_malformed_callback_url_is_a_422_problem_not_a_500(loaded: tuple[Settings, Tables, PastCaseStore]) -> None:
    """URLs that `urlsplit` itself refuses (an unclosed or invalid IPv6 literal, a bad port) are refused by the
    guard like any other bad callback URL, in both modes; no job is queued."""
    settings, history, past = loaded
    malformed = (
        "http://[::1/",
        "http://[::1",
        "https://[not-an-address]/hook",
        "http://example.com:99999/",
        "http://example.com:port/",
    )
    for environment in ("dev", "production"):
        mode = settings.model_copy(update={"environment": environment, "summary_workers": 0})
        with serving(mode, scripted_investigator(mode, history, past)) as server:
            client = client_for(server)
            for url in malformed:
                response = client.post("/v1/summaries", json={"case_id": "C-000000", "callback_url": url})
                assert response.status_code == 422, (environment, url, response.text[:300])
                assert response.headers["content-type"] == "application/problem+json"
                body = response.json()
                assert "callback_url refused" in body["detail"] and body["errors"][0]["pointer"] == "callback_url", body
            assert client.get("/v1/summaries", params={"status": "queued"}).json()["items"] == []


def test_a_worker_that_lost_its_lease_cannot_touch_the_job(settings: Settings, history: Tables) -> None:
    jobs = history
    job, _ = job_store.create_job(
        jobs,
        job_id="J-lease",
        request=SummaryRequest(case_id="C-1", callback_url="http://127.0.0.1:9/"),
        fields=["case"],
        redact_pii=True,
        requested_by="t",
        caller_key_id="k",
    )
    first = job_store.claim(jobs, job_id=job.job_id, worker="stalled", lease_s=0.5)
    assert first is not None and first.attempts == 1
    assert job_store.claim(jobs, job_id=job.job_id, worker="other", lease_s=30) is None  # lease still held
    time.sleep(0.7)
    second = job_store.claim(jobs, job_id=job.job_id, worker="other", lease_s=30)
    assert second is not None and second.attempts == 2 and second.lease_owner == "other"
    result = SummaryResult(
        format="markdown", media_type="text/markdown", body="x", report_id="R-1", report_path="fallback", fields=[]
    )
    with pytest.raises(LeaseLost):
        job_store.save_result(jobs, job_id=job.job_id, worker="stalled", result=result, done=False)
    with pytest.raises(LeaseLost):
        job_store.extend_lease(jobs, job_id=job.job_id, worker="stalled", lease_s=30)
    attempt = DeliveryAttempt(attempt=1, started_at=first.created_at, worker="stalled", outcome="sending")
    with pytest.raises(LeaseLost):
        job_store.begin_delivery(jobs, job_id=job.job_id, worker="stalled", attempt=attempt, lease_s=30)
    job_store.save_result(jobs, job_id=job.job_id, worker="other", result=result, done=False)
    job_store.begin_delivery(
        jobs, job_id=job.job_id, worker="other", attempt=attempt.model_copy(update={"worker": "other"}), lease_s=30
    )
    # a second "attempt 1" (another worker racing on the same count) is fenced off by the size check
    with pytest.raises(LeaseLost):
        job_store.begin_delivery(jobs, job_id=job.job_id, worker="other", attempt=attempt, lease_s=30)
    done = job_store.end_delivery(
        jobs, job_id=job.job_id, worker="other", attempt=1, outcome="delivered", status_code=200, error=None
    )
    assert done.status == "done" and done.lease_owner is None
    with pytest.raises(LeaseLost):  # nothing can be sent after the delivery was recorded
        job_store.begin_delivery(
            jobs, job_id=job.job_id, worker="other", attempt=attempt.model_copy(update={"attempt": 2}), lease_s=30
        )


def _worker_process(settings: Settings, llm_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "FRAUDAGENT_DDB_ENDPOINT_URL": str(settings.ddb_endpoint_url),
        "FRAUDAGENT_TABLE_PREFIX": settings.table_prefix,
        "FRAUDAGENT_CHROMA_PATH": str(settings.chroma_path),
        "FRAUDAGENT_LLM_BASE_URL": llm_url,
        "FRAUDAGENT_LLM_TIMEOUT_S": "300",
        "FRAUDAGENT_LLM_MAX_RETRIES": "0",
        "FRAUDAGENT_SUMMARY_WORKERS": "1",
        "FRAUDAGENT_SUMMARY_LEASE_S": str(settings.summary_lease_s),
        "FRAUDAGENT_SUMMARY_POLL_S": "0.2",
        "FRAUDAGENT_CALLBACK_SECRET": SECRET,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "fraudagent.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_a_worker_killed_mid_job_leaves_a_job_that_completes_exactly_once(
    loaded: tuple[Settings, Tables, PastCaseStore],
) -> None:
    settings, history, past = loaded
    settings = settings.model_copy(update={"summary_lease_s": 4.0})
    jobs = history
    # A model endpoint that accepts connections and never answers: the worker hangs mid-draft.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    with CallbackReceiver() as receiver:
        with serving(
            settings.model_copy(update={"summary_workers": 0}), Investigator(settings=settings, history=history)
        ) as server:
            job_id = (
                client_for(server)
                .post("/v1/summaries", json={"case_id": "C-000002", "callback_url": receiver.url})
                .json()["job_id"]
            )
        worker = _worker_process(settings, f"http://127.0.0.1:{silent.getsockname()[1]}/v1")
        try:
            deadline = time.monotonic() + 180
            while job_store.get_job(jobs, job_id).status != "running":
                assert time.monotonic() < deadline and worker.poll() is None, "the worker process never claimed the job"
                time.sleep(0.2)
            claimed = job_store.get_job(jobs, job_id)
            assert f":{worker.pid}:" in (claimed.lease_owner or "")
            time.sleep(1.5)  # mid-draft, heartbeating
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
            silent.close()
        assert job_store.get_job(jobs, job_id).status == "running"  # the dead worker's lease is still on it
        # The app's workers (model unreachable: the deterministic path) take it over once the lease expires.
        with serving(settings, Investigator(settings=settings, history=history, past_cases=past)) as server:
            job = wait_for(client_for(server), job_id, {"done", "dead", "failed"}, timeout=120)
    assert job["status"] == "done" and job["attempts"] == 2
    owners = [e["worker"] for e in job["events"] if e["what"] == "claimed"]
    assert len(owners) == 2 and f":{worker.pid}:" in owners[0] and owners[0] != owners[1]
    assert [d["outcome"] for d in job["deliveries"]] == ["delivered"]
    assert len(receiver.received) == 1 and receiver.received[0].headers["x-delivery-id"] == job_id
    assert job["result"]["report_path"] == "fallback"


def test_a_burst_of_100_summaries_all_complete_once(loaded: tuple[Settings, Tables, PastCaseStore]) -> None:
    settings, history, past = loaded
    investigator = scripted_investigator(settings, history, past)
    for case_id in CASES:  # reports drafted beforehand: the burst measures the job machinery
        draft_and_store(investigator, case_id)
    with CallbackReceiver() as receiver, serving(settings, investigator) as server:
        client = client_for(server, key=server.keys["ticketing"])
        requests = [
            {"case_id": CASES[n % 3], "format": ("markdown", "jira", "servicenow")[n % 3], "callback_url": receiver.url}
            for n in range(100)
        ]
        with ThreadPoolExecutor(8) as pool:
            accepted = list(
                pool.map(
                    lambda r: client.post("/v1/summaries", json=r[1], headers={"Idempotency-Key": f"burst-{r[0]}"}),
                    enumerate(requests),
                )
            )
        assert {a.status_code for a in accepted} == {202}
        ids = [a.json()["job_id"] for a in accepted]
        finished = [wait_for(client, job_id, {"done", "dead", "failed"}, timeout=300) for job_id in ids]
    assert len(set(ids)) == 100
    assert Counter(j["status"] for j in finished) == {"done": 100}
    assert all([d["outcome"] for d in j["deliveries"]] == ["delivered"] for j in finished)
    delivered = Counter(r.headers["x-delivery-id"] for r in receiver.received)
    assert set(delivered) == set(ids) and set(delivered.values()) == {1}
    assert job_store.queue_depth(history) == 0


def test_workers_can_be_switched_off(loaded: tuple[Settings, Tables, PastCaseStore]) -> None:
    settings, history, past = loaded
    settings = settings.model_copy(update={"summary_workers": 0})
    with serving(settings, scripted_investigator(settings, history, past)) as server:
        client = client_for(server)
        job_id = client.post("/v1/summaries", json={"case_id": "C-000000"}).json()["job_id"]
        time.sleep(0.5)
        assert client.get(f"/v1/summaries/{job_id}").json()["status"] == "queued"
        assert client.get("/v1/summaries/J-unknown").status_code == 404
        assert client.get("/v1/summaries", params={"status": "queued"}).json()["items"][0]["job_id"] == job_id
