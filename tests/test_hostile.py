"""Hostile input: arbitrary JSON and text never crash the parsers; the API answers junk with 4xx
problem+json; huge histories stay bounded; no card number, email or IP reaches a log.

Covered elsewhere (not repeated here): bodies over FRAUDAGENT_API_MAX_BODY_BYTES, with and without
Content-Length (tests/test_ops.py::test_bodies_over_the_limit_get_413); redaction by the JSON log
formatter (tests/test_ops.py::test_request_ids_go_out_and_into_json_logs_without_pii). SSRF through
`callback_url` belongs to the summaries jobs, which are not on main yet.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from pydantic import ValidationError

from fraudagent.agent.evidence import EvidencePack
from fraudagent.agent.pipeline import Investigator
from fraudagent.agent.policy import cached_policy
from fraudagent.agent.report import MAX_FINDINGS, MAX_NARRATIVE_CHARS, Draft
from fraudagent.agent.verifier import claim_problems, verify, vocabulary
from fraudagent.api.app import create_app
from fraudagent.core.bundle import parse_bundle, read_bundles
from fraudagent.core.errors import InvalidInput
from fraudagent.core.logging import PII_PATTERNS
from fraudagent.core.models import Action, CaseBundle, Typology
from fraudagent.core.settings import Settings
from fraudagent.tools.bundles import load_bundle
from fraudagent.tools.history import History
from tests.bundles import example
from tests.conftest import ARTIFACTS, LiveServer, client_for

PROBLEM = "application/problem+json"
FEW = hsettings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


# --- the bundle loader ------------------------------------------------------------------------------


def _outcome_is_clean(doc: Any) -> None:
    bundle, problems = parse_bundle(doc)
    assert (bundle is None) == bool(problems)
    assert all(p.path.startswith("$") and p.message for p in problems)


@FEW
@given(json_values)
def test_any_json_document_is_refused_with_located_problems_or_accepted(doc: Any) -> None:
    _outcome_is_clean(doc)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


EXAMPLE = example()
EXAMPLE_PATHS = [p for p in _paths(EXAMPLE) if p]


@FEW
@given(st.sampled_from(EXAMPLE_PATHS), json_values | st.just(None), st.booleans())
def test_a_valid_bundle_with_one_field_replaced_or_removed_never_crashes(path: tuple[Any, ...], value: Any, remove: bool) -> None:
    doc = copy.deepcopy(EXAMPLE)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    _outcome_is_clean(doc)


@FEW
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_in_a_bundle_file_are_refused_cleanly(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("junk") / "bundle.json"
    path.write_bytes(data)
    try:
        bundles = read_bundles(path)
    except InvalidInput as error:
        assert error.problems
    else:
        assert all(isinstance(b, CaseBundle) for b in bundles)


def test_deeply_nested_and_invalid_utf8_bundle_files_are_located_problems(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (tmp_path / "latin1.json").write_bytes(json.dumps(EXAMPLE).encode().replace(b"xX_sniper_Xx", b"caf\xe9"))
    (tmp_path / "lines.jsonl").write_text(json.dumps(EXAMPLE) + "\n" + "{" * 100_000 + "\n")
    with pytest.raises(InvalidInput) as refused:
        read_bundles(tmp_path)
    messages = {Path(p.path.split(":")[0]).name: p.message for p in refused.value.problems}
    assert messages["deep.json"] in ("JSON nested too deeply",) or messages["deep.json"].startswith("not valid JSON")
    assert messages["latin1.json"] == "not UTF-8 text"
    assert "lines.jsonl" in messages


# --- the draft parser and the verifier ----------------------------------------------------------------


@pytest.fixture
def pack(settings: Settings, history: History) -> EvidencePack:
    load_bundle(history, CaseBundle.model_validate(example()), past_case_store=None, scorer=None)
    return Investigator(settings=settings, history=history, past_cases=None).evidence("C-000123")


@FEW
@given(st.text(max_size=400) | json_values.map(json.dumps))
def test_any_model_output_is_a_draft_or_a_validation_error(raw: str) -> None:
    try:
        Draft.model_validate_json(raw)
    except ValidationError:
        pass


claim_text = st.text(max_size=200) | st.from_regex(
    r"(On|At|By) (19|20)\d\d-[01]\d-[0-3]\d(T[0-2]\d:[0-5]\d)? (E-\d{1,6}|txn:E-\d+|\d+(\.\d+)? (USD|EUR)|\d{1,3}%)", fullmatch=True
)


@FEW
@given(data=st.data())
def test_the_verifier_never_raises_on_arbitrary_claims(pack: EvidencePack, data: st.DataObject) -> None:
    vocab = vocabulary(pack, "rendered evidence")
    ids = [*pack.items, "txn:E-00000", "", "fact:nope"]
    text = data.draw(claim_text)
    assert all(isinstance(p, str) for p in claim_problems(text, vocab))
    findings = data.draw(
        st.lists(
            st.fixed_dictionaries({"statement": claim_text, "evidence_ids": st.lists(st.sampled_from(ids) | st.text(max_size=12), min_size=1, max_size=4)}),
            min_size=1,
            max_size=MAX_FINDINGS,
        )
    )
    draft = Draft(
        narrative=data.draw(claim_text),
        findings=findings,
        typology=data.draw(st.sampled_from(list(Typology))),
        recommended_actions=data.draw(st.lists(st.sampled_from(list(Action)), min_size=1, max_size=2)),
        confidence=data.draw(st.floats(allow_nan=True, allow_infinity=True)),
        insufficient_evidence=data.draw(st.booleans()),
        unknowns=data.draw(st.lists(st.text(max_size=40), max_size=3)),
    )
    policy = cached_policy(Settings().policy_path)
    verdict = verify(draft, pack, policy, vocab, max_narrative=MAX_NARRATIVE_CHARS, max_findings=MAX_FINDINGS)
    assert verdict.ok or verdict.problems


# --- a huge event history --------------------------------------------------------------------------------


def test_a_huge_history_loads_and_the_evidence_stays_bounded(settings: Settings, history: History) -> None:
    doc = example()
    extra = [
        {"event_id": f"E-{n}", "account_id": "A-4471", "ts": f"2026-02-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
         "type": "login", "device_id": "D-12", "ip": "198.51.100.20", "ip_country": "US"}
        for n in range(1500)
    ]  # fmt: skip
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


# --- the API: junk bodies and odd paths ---------------------------------------------------------------------


@pytest.fixture
def api(settings: Settings, history: History) -> Iterator[LiveServer]:
    load_bundle(history, CaseBundle.model_validate(pii_example()), past_case_store=None, scorer=None)
    investigator = Investigator(settings=settings, history=history, past_cases=None)
    with LiveServer(create_app(settings, investigator)) as server:
        yield server


HOSTILE_BODIES = {
    "deep arrays": b"[" * 100_000 + b"]" * 100_000,
    "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "invalid utf-8": b'{"disposition": "inconclusive", "typology": "legitimate", "actions": ["escalate"], "notes": "\xff\xfe\xc3"}',
    "lone surrogate": b'{"disposition": "inconclusive", "typology": "legitimate", "actions": ["escalate"], "notes": "\\ud800"}',
    "not json": b"\x00\x01 definitely not json",
    "huge number": b'{"disposition": "inconclusive", "typology": "legitimate", "actions": ["escalate"], "notes": ' + b"9" * 5000 + b"}",
    "wrong types": b'{"disposition": [], "typology": {}, "actions": "escalate", "notes": null}',
}

UNPARSEABLE = {"deep arrays", "deep objects", "invalid utf-8", "not json"}


def test_hostile_bodies_get_4xx_problems_and_change_nothing(api: LiveServer) -> None:
    client = client_for(api)
    for name, body in HOSTILE_BODIES.items():
        # assign takes an optional body and ignores unknown fields: only unparseable bodies are hostile there
        paths = ["/v1/cases/C-000123/decision", "/v1/keys"] + (["/v1/cases/C-000123/assign"] if name in UNPARSEABLE else [])
        for path in paths:
            response = client.post(path, content=body, headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, (name, path, response.status_code, response.text[:200])
            assert response.headers["content-type"] == PROBLEM, (name, path)
            assert response.json()["status"] == response.status_code
    assert client.get("/v1/cases/C-000123").json()["record"]["status"] == "open"
    assert client.get("/v1/cases/C-000123/audit").json()["items"] == []  # nothing was written


@pytest.mark.parametrize("case_id", ["%00", "..%2F..%2Fetc%2Fpasswd", "C-" + "9" * 500, "%E2%80%AE%F0%9F%92%A3", "%FF%FE", "C-1'%20OR%20'1'='1"])
def test_odd_case_ids_are_404_or_422_problems(api: LiveServer, case_id: str) -> None:
    response = client_for(api).get(f"/v1/cases/{case_id}")
    assert response.status_code in (404, 422), response.text[:200]
    assert response.headers["content-type"] == PROBLEM


# --- no personal data in logs --------------------------------------------------------------------------------

CARD, EMAIL = "4111 1111 1111 1111", "jane.doe@example.org"
PLANTED_IPS = ("198.51.100.20", "203.0.113.9")  # the example's event IPs


def pii_example() -> dict[str, Any]:
    """The example bundle with a card number and an email written by the customer into free text."""
    doc = example()
    doc["accounts"][0] = dict(doc["accounts"][0], display_name=f"mail me at {EMAIL}")
    doc["events"] = [dict(e, text=f"my card {CARD}, write to {EMAIL}") if e["event_id"] == "E-99812" else e for e in doc["events"]]
    doc["case"] = dict(doc["case"], note=f"customer {EMAIL} called from 203.0.113.9")
    return doc


def pii_found(text: str) -> list[str]:
    """Card numbers, emails and IPs by the logging module's patterns, minus what is not personal data:
    loopback and unspecified addresses (our own servers bind and log 127.0.0.1 / 0.0.0.0), and
    digit runs that fail the Luhn check (epoch-millisecond timestamps, sizes, counters)."""
    found = []
    for kind, pattern in PII_PATTERNS:
        for match in pattern.finditer(text):
            value = match.group(0).strip(" -")
            if kind == "ip":
                try:
                    address = ipaddress.ip_address(value)
                except ValueError:
                    continue  # a version string such as 1.2.3.400 or a time like 12:30:45:10 is not an address
                if address.is_loopback or address.is_unspecified:
                    continue
            if kind == "card" and not _luhn(re.sub(r"\D", "", value)):
                continue
            found.append(f"{kind}: {value}")
    return found


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def test_the_pattern_check_itself_finds_planted_pii() -> None:
    assert pii_found(f"x {CARD} y {EMAIL} z 203.0.113.9 w 2001:db8:0:0:0:0:0:1") == [
        f"card: {CARD}", f"email: {EMAIL}", "ip: 203.0.113.9", "ip: 2001:db8:0:0:0:0:0:1"
    ]  # fmt: skip
    assert pii_found("listening on 127.0.0.1:8000 and 0.0.0.0, ts 1764249394000") == []


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
    client.post("/v1/cases/C-000123/decision", content=b"\xff" + EMAIL.encode(), headers={"content-type": "application/json"})
    decision = {"disposition": "inconclusive", "typology": "legitimate", "actions": ["escalate"], "notes": f"called {EMAIL}, card {CARD}"}
    assert client.post("/v1/cases/C-000123/decision", json=decision).status_code == 201
    assert client.get("/v1/cases/C-000123/audit").status_code == 200
    assert caplog.records  # the session logged something (warnings at least)
    leaks = [(r.name, hit) for r in caplog.records for hit in pii_found(r.getMessage() + (r.exc_text or ""))]
    assert leaks == []


def test_no_log_file_written_by_the_test_session_holds_pii() -> None:
    """The server logs under test-artifacts/logs (DynamoDB Local, llama.cpp, Chroma, the fault tests'
    own servers) as far as the session has written them when this test runs."""
    files = sorted(p for p in (ARTIFACTS / "logs").rglob("*.log") if p.is_file())
    assert files, "the session's DynamoDB Local writes a log there"
    leaks = {}
    for path in files:
        text = path.read_text(errors="replace")
        hits = pii_found(text) + [f"planted: {v}" for v in (CARD, EMAIL, *PLANTED_IPS) if v in text]
        if hits:
            leaks[str(path.relative_to(ARTIFACTS))] = sorted(set(hits))[:5]
    assert leaks == {}
