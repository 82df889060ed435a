"""Hostile input: arbitrary JSON and text never crash the parsers; the API answers junk with 4xx
problem+json; huge histories stay bounded; callback URLs cannot reach internal addresses; no card
number, email or IP reaches a log.

Covered elsewhere (not repeated here): bodies over FRAUDAGENT_API_MAX_BODY_BYTES, with and without
Content-Length (tests/integration/test_ops.py::test_bodies_over_the_limit_get_413); redaction by the JSON log
formatter (tests/integration/test_ops.py::test_request_ids_go_out_and_into_json_logs_without_pii); schemathesis
over every route (tests/integration/test_ops.py); SSRF basics through `callback_url` (scheme, credentials,
link-local metadata address refused through the API in dev mode; loopback, private, CGNAT, IPv6
loopback and IPv4-mapped forms refused by the guard in production mode:
tests/integration/test_summaries.py::test_callback_urls_are_checked_against_ssrf; malformed URLs:
tests/integration/test_summaries.py::test_a_malformed_callback_url_is_a_422_problem_not_a_500). Here: the guard's
rule as a property over any address (IPv6 forms that embed IPv4 judged as that IPv4), every such form
of loopback, private and metadata addresses, obfuscated loopback forms through the API in production
mode, and redirects not followed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr

from fraudagent.agent.drafting import MAX_FINDINGS, OPEN_QUESTIONS, ModelDraft, choices
from fraudagent.agent.evidence import EvidencePack
from fraudagent.agent.pipeline import Investigator
from fraudagent.agent.policy import cached_policy, facts_of
from fraudagent.agent.report import MAX_NARRATIVE_CHARS
from fraudagent.agent.verifier import claim_problems, verify, vocabulary
from fraudagent.api.app import create_app
from fraudagent.bundles.service import load_bundle
from fraudagent.core.bundle import parse_bundle
from fraudagent.core.models import Action, CaseBundle, Typology
from fraudagent.core.settings import Settings
from fraudagent.store.tables import Tables
from tests.bundles import example
from tests.conftest import ARTIFACTS, PII_IN_CAPTURED_LOGS, LiveServer, client_for
from tests.pii import pii_found
from tests.receiver import CallbackReceiver

PROBLEM = "application/problem+json"


FEW = hsettings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture
def pack(settings: Settings, history: Tables) -> EvidencePack:
    load_bundle(history, CaseBundle.model_validate(example()), past_case_store=None, scorer=None)
    return Investigator(settings=settings, history=history, past_cases=None).evidence("C-000123")


claim_text = st.text(max_size=200) | st.from_regex(
    r"(On|At|By) (19|20)\d\d-[01]\d-[0-3]\d(T[0-2]\d:[0-5]\d)? (E-\d{1,6}|txn:E-\d+|\d+(\.\d+)? (USD|EUR)|\d{1,3}%)",
    fullmatch=True,
)


@FEW
@given(data=st.data())
def test_the_verifier_never_raises_on_arbitrary_claims(pack: EvidencePack, data: st.DataObject) -> None:
    vocab = vocabulary(pack, "rendered evidence")
    ids = [*pack.items, "txn:E-00000", "", "fact:nope"]
    text = data.draw(claim_text)
    assert all(isinstance(p, str) for p in claim_problems(text, vocab))
    draft = ModelDraft(
        narrative=data.draw(claim_text),
        findings=data.draw(st.lists(st.sampled_from(ids) | st.text(max_size=12), min_size=1, max_size=MAX_FINDINGS)),
        typology=data.draw(st.sampled_from(list(Typology))),
        actions=data.draw(st.lists(st.sampled_from(list(Action)), min_size=1, max_size=2)),
        confidence=data.draw(st.sampled_from(["low", "medium", "high"])),
        unknowns=data.draw(st.lists(st.sampled_from(list(OPEN_QUESTIONS)), max_size=2)),
    )
    policy = cached_policy(Settings().policy_path)
    allowed = choices(pack, policy, facts_of(pack.items), shown=list(pack.items))
    verdict = verify(draft, pack, policy, vocab, choices=allowed, max_narrative=MAX_NARRATIVE_CHARS)
    assert verdict.ok or verdict.problems


def test_a_huge_history_loads_and_the_evidence_stays_bounded(settings: Settings, history: Tables) -> None:
    doc = example()
    extra = [
        {
            "event_id": f"E-{n}",
            "account_id": "A-4471",
            "ts": f"2026-02-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
            "type": "login",
            "device_id": "D-12",
            "ip": "198.51.100.20",
            "ip_country": "US",
        }
        for n in range(1500)
    ]
    doc["events"] = doc["events"] + extra
    bundle, problems = parse_bundle(doc)
    assert bundle is not None and not problems
    load_bundle(history, bundle, past_case_store=None, scorer=None)
    bounded = settings.model_copy(update={"evidence_max_events": 100})
    pack = Investigator(settings=bounded, history=history, past_cases=None).evidence("C-000123")
    events = [i for i in pack.items.values() if i.kind == "txn"]
    assert 0 < len(events) <= 100
    assert any(c.startswith("events: only the newest 100") for c in pack.cuts)
    assert "txn:E-99812" in pack.items  # the trigger is among the newest


@pytest.fixture
def api(settings: Settings, history: Tables) -> Iterator[LiveServer]:
    load_bundle(history, CaseBundle.model_validate(pii_example()), past_case_store=None, scorer=None)
    investigator = Investigator(settings=settings, history=history, past_cases=None)
    with LiveServer(create_app(settings, investigator)) as server:
        yield server


HOSTILE_BODIES = {
    "deep arrays": b"[" * 100_000 + b"]" * 100_000,
    "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "invalid utf-8": (
        b'{"disposition": "inconclusive", "typology": "legitimate", "actions": ["escalate"], "notes": "\xff\xfe\xc3"}'
    ),
    "lone surrogate": (
        b'{"disposition": "inconclusive", "typology": "legitimate", "actions": ["escalate"], "notes": "\\ud800"}'
    ),
    "not json": b"\x00\x01 definitely not json",
    "huge number": (
        b'{"disposition": "inconclusive", "typology": "legitimate", "actions": ["escalate"], "notes": '
        + b"9" * 5000
        + b"}"
    ),
    "wrong types": b'{"disposition": [], "typology": {}, "actions": "escalate", "notes": null}',
}


UNPARSEABLE = {"deep arrays", "deep objects", "invalid utf-8", "not json"}


def test_hostile_bodies_get_4xx_problems_and_change_nothing(api: LiveServer) -> None:
    client = client_for(api)
    for name, body in HOSTILE_BODIES.items():
        # assign takes an optional body and ignores unknown fields: only unparseable bodies are hostile there
        paths = ["/v1/cases/C-000123/decision", "/v1/keys"] + (
            ["/v1/cases/C-000123/assign"] if name in UNPARSEABLE else []
        )
        for path in paths:
            response = client.post(path, content=body, headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (name, path, response.status_code, response.text[:200])
            assert response.headers["content-type"] == PROBLEM, (name, path)
            assert response.json()["status"] == response.status_code
    assert client.get("/v1/cases/C-000123").json()["record"]["status"] == "open"
    assert client.get("/v1/cases/C-000123/audit").json()["items"] == []  # nothing was written


@pytest.mark.parametrize(
    "case_id",
    ["%00", "..%2F..%2Fetc%2Fpasswd", "C-" + "9" * 500, "%E2%80%AE%F0%9F%92%A3", "%FF%FE", "C-1'%20OR%20'1'='1"],
)
def test_odd_case_ids_are_404_or_422_problems(api: LiveServer, case_id: str) -> None:
    response = client_for(api).get(f"/v1/cases/{case_id}")
    assert response.status_code in (404, 422), response.text[:200]
    assert response.headers["content-type"] == PROBLEM


# loopback / private / metadata written in forms a naive string check misses; each resolves (no DNS) to
# an address the production guard refuses
OBFUSCATED = [
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://LOCALHOST/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[fd00::1]/hook",
    "http://0/hook",
    "http://[2002:7f00:1::]/hook",
    "http://[2002:a9fe:a9fe::1]/latest/meta-data",
    "http://[::10.0.0.1]/hook",
    "http://[2001:0:5db8:d70e:0:f5fe:f5fe:fffe]/hook",
    "http://[64:ff9b:1::a00:1]/hook",
    "http://10.0.0.1:443/hook",
    "https://0xa9.0xfe.0xa9.0xfe/latest/meta-data",
]


def test_obfuscated_internal_callback_urls_are_refused_through_the_api_in_production(
    settings: Settings, history: Tables
) -> None:
    load_bundle(history, CaseBundle.model_validate(example()), past_case_store=None, scorer=None)
    production = settings.model_copy(
        update={
            "environment": "production",
            "callback_secret": SecretStr("s"),
            "summary_workers": 0,
            "api_rate_limit_per_minute": 0,
        }
    )
    with LiveServer(
        create_app(production, Investigator(settings=production, history=history, past_cases=None))
    ) as server:
        client = client_for(server)
        for url in OBFUSCATED:
            response = client.post("/v1/summaries", json={"case_id": "C-000123", "callback_url": url})
            assert response.status_code == 422, (url, response.text[:200])
            assert response.headers["content-type"] == PROBLEM
            assert "callback_url refused" in response.json()["detail"], url
        # a public address literal is accepted (workers are off: nothing is sent anywhere)
        accepted = client.post(
            "/v1/summaries", json={"case_id": "C-000123", "callback_url": "https://93.184.215.14/hook"}
        )
        assert accepted.status_code == 202, accepted.text
        assert (
            client.get("/v1/summaries", params={"status": "queued"}).json()["items"][0]["job_id"]
            == accepted.json()["job_id"]
        )


def test_a_callback_redirect_is_not_followed(settings: Settings, history: Tables) -> None:
    """A receiver that answers 307 to another address (here another loopback server: dev mode, where the
    guard allows loopback) never gets that address called: the attempt fails and is retried, the job ends dead."""
    load_bundle(history, CaseBundle.model_validate(example()), past_case_store=None, scorer=None)
    fast = settings.model_copy(
        update={
            "callback_secret": SecretStr("s"),
            "summary_poll_s": 0.1,
            "callback_backoff_s": 0.05,
            "callback_max_attempts": 2,
            "api_rate_limit_per_minute": 0,
        }
    )
    with CallbackReceiver() as target, CallbackReceiver(redirect_to="") as redirector:
        redirector.redirect_to = target.url
        with LiveServer(create_app(fast, Investigator(settings=fast, history=history, past_cases=None))) as server:
            client = client_for(server)
            job_id = client.post("/v1/summaries", json={"case_id": "C-000123", "callback_url": redirector.url}).json()[
                "job_id"
            ]
            deadline = time.monotonic() + 120
            while (job := client.get(f"/v1/summaries/{job_id}").json())["status"] not in ("done", "dead", "failed"):
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
    assert job["status"] == "dead" and [d["outcome"] for d in job["deliveries"]] == ["failed", "failed"]
    assert len(redirector.received) == 2 and target.received == []


CARD, EMAIL = "4111 1111 1111 1111", "jane.doe@example.org"


PLANTED_IPS = ("198.51.100.20", "203.0.113.9")  # the example's event IPs


def pii_example() -> dict[str, Any]:
    """The example bundle with a card number and an email written by the customer into free text."""
    doc = example()
    doc["accounts"][0] = dict(doc["accounts"][0], display_name=f"mail me at {EMAIL}")
    doc["events"] = [
        dict(e, text=f"my card {CARD}, write to {EMAIL}") if e["event_id"] == "E-99812" else e for e in doc["events"]
    ]
    doc["case"] = dict(doc["case"], note=f"customer {EMAIL} called from 203.0.113.9")
    return doc


def test_an_api_session_over_customer_pii_logs_none_of_it(api: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    """Every record any logger emits during a session over a case full of customer PII (raw records,
    before the redacting filter: redaction is the backstop, not the reason the logs are clean)."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "botocore", "urllib3", "openai"):  # transport chatter, not ours
        caplog.set_level(logging.WARNING, logger=name)
    client = client_for(api)
    assert client.get("/v1/cases/C-000123").status_code == 200
    report = client.post("/v1/cases/C-000123/report").json()  # the model is unreachable: fallback, logged warning
    assert report["path"] == "fallback"
    client.get("/v1/cases/C-unknown")
    client.post(
        "/v1/cases/C-000123/decision", content=b"\xff" + EMAIL.encode(), headers={"content-type": "application/json"}
    )
    decision = {
        "disposition": "inconclusive",
        "typology": "legitimate",
        "actions": ["escalate"],
        "notes": f"called {EMAIL}, card {CARD}",
    }
    assert client.post("/v1/cases/C-000123/decision", json=decision).status_code == 201
    assert client.get("/v1/cases/C-000123/audit").status_code == 200
    assert caplog.records  # the session logged something (warnings at least)
    leaks = [(r.name, hit) for r in caplog.records for hit in pii_found(r.getMessage() + (r.exc_text or ""))]
    assert leaks == []


@pytest.mark.session_end
def test_no_log_written_during_the_session_holds_pii() -> None:
    """Runs after every other test of the session (conftest orders `session_end` tests last): the log
    records pytest captured for every test (collected by conftest.pytest_runtest_logreport; raw records,
    before any redaction) and the server logs under test-artifacts/logs (DynamoDB Local, llama.cpp,
    Chroma, the fault tests' own servers). What counts as personal data: tests/pii.py."""
    assert PII_IN_CAPTURED_LOGS == {}, {k: sorted(set(v))[:5] for k, v in PII_IN_CAPTURED_LOGS.items()}
    files = sorted(p for p in (ARTIFACTS / "logs").rglob("*.log") if p.is_file())
    assert files, "the session's DynamoDB Local writes a log there"
    leaks = {}
    for path in files:
        text = path.read_text(errors="replace")
        hits = pii_found(text) + [f"planted: {v}" for v in (CARD, EMAIL, *PLANTED_IPS) if v in text]
        if hits:
            leaks[str(path.relative_to(ARTIFACTS))] = sorted(set(hits))[:5]
    assert leaks == {}
