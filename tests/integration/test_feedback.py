"""Closing the loop over real HTTP: verdicts on reports, agreement recorded on decision, the quality figures on a
seeded history (checked against values worked out by hand below), with DynamoDB Local behind the app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from fraudagent import store
from fraudagent.agent.pipeline import Investigator
from fraudagent.agent.report import Finding, InvestigationReport, Timings, Usage
from fraudagent.api.app import create_app
from fraudagent.bundles.service import load_bundle
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.store import keys as key_store
from fraudagent.store.tables import Tables
from tests.bundles import example
from tests.conftest import API_KEY, LiveServer, client_for

TODAY = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
YESTERDAY = TODAY - timedelta(days=1)


def report(
    report_id: str,
    case_id: str,
    *,
    model: str,
    prompt: str,
    policy: str,
    path: str,
    typology: str,
    actions: list[str],
    seconds: tuple[float, float, float],
    tokens: tuple[int, int],
) -> dict[str, Any]:
    return InvestigationReport(
        report_id=report_id,
        case_id=case_id,
        created_at=TODAY,
        narrative="A password reset from a new device was followed by a gift card purchase.",
        findings=[
            Finding(
                statement="password reset from a new device", evidence_ids=["txn:E-99801", "fact:credential_change"]
            ),
            Finding(statement="a gift card right after", evidence_ids=["txn:E-99812"]),
        ],
        typology=typology,  # type: ignore[arg-type]
        recommended_actions=actions,  # type: ignore[arg-type]
        confidence=0.8,
        unknowns=[],
        similar_cases=[],
        path=path,  # type: ignore[arg-type]
        policy_version=policy,
        model=model,
        prompt_version=prompt,
        evidence_hash="h",
        timings=Timings(evidence_s=seconds[0], drafting_s=seconds[1], verification_s=seconds[2]),
        usage=Usage(prompt_tokens=tokens[0], completion_tokens=tokens[1], llm_calls=1),
        requested_by="tests",
    ).model_dump(mode="json")


# The seeded history. Worked out by hand:
#   R1 C-1 yesterday  m-a p1 v1 llm       account_takeover [lock_account]     10 s  1200 tokens
#   R2 C-2 yesterday  m-a p1 v1 fallback  stolen_card      [block_instrument] 20 s  1800 tokens
#   R3 C-3 today      m-b p2 v1 llm       account_takeover [lock_account]     30 s   600 tokens
#   R4 C-4 today      m-b p2 v2 llm_retried legitimate     [close_no_action]  40 s     0 tokens
SEED = [
    (
        "R1",
        "C-1",
        YESTERDAY,
        dict(
            model="m-a",
            prompt="p1",
            policy="v1",
            path="llm",
            typology="account_takeover",
            actions=["lock_account"],
            seconds=(2.0, 6.0, 2.0),
            tokens=(1000, 200),
        ),
    ),
    (
        "R2",
        "C-2",
        YESTERDAY,
        dict(
            model="m-a",
            prompt="p1",
            policy="v1",
            path="fallback",
            typology="stolen_card",
            actions=["block_instrument"],
            seconds=(5.0, 10.0, 5.0),
            tokens=(1500, 300),
        ),
    ),
    (
        "R3",
        "C-3",
        TODAY,
        dict(
            model="m-b",
            prompt="p2",
            policy="v1",
            path="llm",
            typology="account_takeover",
            actions=["lock_account"],
            seconds=(10.0, 15.0, 5.0),
            tokens=(500, 100),
        ),
    ),
    (
        "R4",
        "C-4",
        TODAY,
        dict(
            model="m-b",
            prompt="p2",
            policy="v2",
            path="llm_retried",
            typology="legitimate",
            actions=["close_no_action"],
            seconds=(10.0, 25.0, 5.0),
            tokens=(0, 0),
        ),
    ),
]


@pytest.fixture
def api(settings: Settings, history: Tables, past_cases: PastCaseStore) -> Iterator[LiveServer]:
    for n in range(1, 6):
        doc = example()
        doc["case"] = dict(doc["case"], case_id=f"C-{n}")
        load_bundle(history, CaseBundle.model_validate(doc), past_case_store=past_cases, scorer=None)
    for report_id, case_id, day, spec in SEED:
        store.reports.put_report(
            history,
            case_id=case_id,
            report=report(report_id, case_id, **spec),  # type: ignore[arg-type]
            created=day + timedelta(hours=12),
        )
    investigator = Investigator(settings=settings, history=history, past_cases=past_cases)
    keys = {
        "analyst": key_store.create_key(history, name="ana", roles=["analyst"], created_by="tests")[1],
        "analyst2": key_store.create_key(history, name="bo", roles=["analyst"], created_by="tests")[1],
        "evaluator": key_store.create_key(history, name="eve", roles=["evaluator"], created_by="tests")[1],
        "ticketing": key_store.create_key(history, name="tix", roles=["ticketing"], created_by="tests")[1],
    }
    with LiveServer(create_app(settings, investigator)) as server:
        server.keys = keys  # type: ignore[attr-defined]
        yield server


def _as(api: LiveServer, role: str) -> httpx.Client:
    return client_for(api, api.keys[role])  # type: ignore[attr-defined]


def _audit(api: LiveServer, case_id: str) -> list[dict[str, Any]]:
    with _as(api, "analyst") as c:
        return c.get(f"/v1/cases/{case_id}/audit").json()["items"]


def test_a_verdict_is_given_changed_listed_and_audited(api: LiveServer) -> None:
    with _as(api, "analyst") as c:
        first = c.post("/v1/cases/C-1/reports/R1/feedback", json={"useful": False, "reasons": ["wrong_action"]})
        assert first.status_code == 200, first.text
        assert first.json()["changed"] is False and first.json()["analyst"] == "ana"
        second = c.post("/v1/cases/C-1/reports/R1/feedback", json={"useful": True, "reasons": []})
        assert second.status_code == 200
        assert second.json()["changed"] is True and second.json()["previous_useful"] is False
        listed = c.get("/v1/cases/C-1/reports/R1/feedback").json()["items"]
    assert [(v["analyst"], v["useful"], v["reasons"]) for v in listed] == [("ana", True, [])]  # one per analyst
    trail = [e for e in _audit(api, "C-1") if e["action"].startswith("report.verdict")]
    assert [e["action"] for e in trail] == ["report.verdict_changed", "report.verdict_given"]  # newest first
    assert trail[0]["details"]["previous_useful"] is False and trail[0]["details"]["useful"] is True
    assert trail[0]["actor"] == "ana" and trail[0]["audit_id"] == second.json()["audit_id"]
    with _as(api, "analyst2") as c:
        c.post("/v1/cases/C-1/reports/R1/feedback", json={"useful": False, "reasons": ["other"], "note": "vague"})
    with _as(api, "evaluator") as c:  # evaluators read verdicts but do not give them
        assert len(c.get("/v1/cases/C-1/reports/R1/feedback").json()["items"]) == 2


@pytest.mark.parametrize(
    ("role", "status"), [("evaluator", 403), ("ticketing", 403), (None, 401)], ids=["evaluator", "ticketing", "no-key"]
)
def test_only_analysts_give_verdicts(api: LiveServer, role: str | None, status: int) -> None:
    client = _as(api, role) if role else client_for(api, None)
    with client as c:
        r = c.post("/v1/cases/C-1/reports/R1/feedback", json={"useful": True})
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    with _as(api, "analyst") as c:
        assert c.get("/v1/cases/C-1/reports/R1/feedback").json()["items"] == []


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/cases/C-1/reports/R2/feedback", {"useful": True}, 404),  # R2 is a report of C-2
        ("/v1/cases/C-1/reports/R9/feedback", {"useful": True}, 404),  # no such report
        ("/v1/cases/C-9/reports/R1/feedback", {"useful": True}, 404),  # no such case
        ("/v1/cases/C-1/reports/R1/feedback", {"useful": False, "reasons": ["boring"]}, 422),  # not in the list
        ("/v1/cases/C-1/reports/R1/feedback", {"useful": False, "reasons": ["other"]}, 422),  # other needs a note
        ("/v1/cases/C-1/reports/R1/feedback", {"reasons": ["too_long"]}, 422),  # useful is required
        ("/v1/cases/C-1/reports/R1/feedback", {"useful": 0}, 422),  # true or false, not a number
        ("/v1/cases/C-1/reports/R1/feedback", {"useful": True, "score": 5}, 422),  # unknown field
    ],
    ids=[
        "other-case",
        "no-report",
        "no-case",
        "unknown-reason",
        "other-without-note",
        "no-useful",
        "useful-number",
        "extra-field",
    ],
)
def test_bad_feedback_is_a_problem_and_changes_nothing(
    api: LiveServer, path: str, body: dict[str, Any], status: int
) -> None:
    before = {case: _audit(api, case) for case in ("C-1", "C-2")}
    with _as(api, "analyst") as c:
        r = c.post(path, json=body)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == status
        for case, rid in (("C-1", "R1"), ("C-2", "R2")):
            assert c.get(f"/v1/cases/{case}/reports/{rid}/feedback").json()["items"] == []
    assert {case: _audit(api, case) for case in ("C-1", "C-2")} == before


def _decide(api: LiveServer, case_id: str, **decision: Any) -> dict[str, Any]:
    with _as(api, "analyst") as c:
        r = c.post(f"/v1/cases/{case_id}/decision", json=decision)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_decision_records_its_agreement_with_the_latest_report(api: LiveServer) -> None:
    agreed = _decide(
        api,
        "C-1",
        disposition="confirmed_fraud",
        typology="account_takeover",
        actions=["lock_account", "void_gift_cards"],
    )["agreement"]
    assert agreed["report_id"] == "R1" and (agreed["model"], agreed["prompt_version"]) == ("m-a", "p1")
    assert (agreed["policy_version"], agreed["path"]) == ("v1", "llm")
    assert agreed["typology_match"] and agreed["disposition_match"] and agreed["action_match"]
    assert agreed["agreed"] is True and agreed["action_overlap"] == 0.5  # {lock} of {lock, void}
    other = _decide(api, "C-2", disposition="false_positive", typology="legitimate", actions=["close_no_action"])
    a = other["agreement"]
    assert a["report_id"] == "R2" and a["agreed"] is False
    assert (a["typology_match"], a["disposition_match"], a["action_match"], a["action_overlap"]) == (
        False,
        False,
        False,
        0.0,
    )
    assert (
        _decide(api, "C-5", disposition="inconclusive", typology="legitimate", actions=["escalate"])["agreement"]
        is None
    )  # no report, nothing to agree with
    decided = next(e for e in _audit(api, "C-2") if e["action"] == "case.decided")
    assert decided["details"]["report_id"] == "R2" and decided["details"]["agreed"] is False
    stored = store.feedback.get_agreement(api_tables(api), "C-1")
    assert stored is not None and stored["agreed"] is True and stored["model"] == "m-a"
    with client_for(api, API_KEY) as c:
        metrics = c.get("/metrics").text
    assert 'fraudagent_decision_agreements_total{agreed="true",model="m-a"' in metrics


def api_tables(api: LiveServer) -> Tables:
    return api.server.config.app.state.investigator.history  # type: ignore[no-any-return]


def _seed_feedback(api: LiveServer) -> None:
    _decide(api, "C-1", disposition="confirmed_fraud", typology="account_takeover", actions=["lock_account"])
    _decide(api, "C-2", disposition="false_positive", typology="legitimate", actions=["close_no_action"])
    _decide(api, "C-4", disposition="false_positive", typology="legitimate", actions=["close_no_action"])
    with _as(api, "analyst") as c:
        c.post("/v1/cases/C-1/reports/R1/feedback", json={"useful": False, "reasons": ["wrong_action"]})
        c.post("/v1/cases/C-1/reports/R1/feedback", json={"useful": True})  # changed: counts once, as useful
        c.post("/v1/cases/C-3/reports/R3/feedback", json={"useful": True})
    with _as(api, "analyst2") as c:
        c.post("/v1/cases/C-1/reports/R1/feedback", json={"useful": False, "reasons": ["too_long"]})


def _row(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return next(r for r in rows if r["key"] == key)


def test_quality_figures_on_a_seeded_history_match_the_hand_computed_values(api: LiveServer) -> None:
    _seed_feedback(api)
    since = YESTERDAY.date().isoformat()
    with _as(api, "evaluator") as c:
        q = c.get("/v1/quality", params={"since": since}).json()
    total = q["total"]
    # 4 reports; 1 on fallback; latency (10+20+30+40)/4; tokens (1200+1800+600+0)/4
    assert (total["reports"], total["fallback_rate"], total["mean_latency_s"], total["mean_tokens"]) == (
        4,
        0.25,
        25.0,
        900.0,
    )
    # decided: R1 agreed, R2 not, R4 agreed (legitimate, close_no_action -> false_positive); R3 undecided
    assert (total["decided"], total["agreement_rate"]) == (3, 0.6667)
    # verdicts: R1 by ana (useful) and bo (not: too_long), R3 by ana (useful): 2 of 4 reports judged, 2 of 3 useful
    assert (total["judged"], total["verdict_rate"], total["useful_rate"]) == (2, 0.5, 0.6667)
    assert total["reasons"] == {"too_long": 1}
    day1, day2 = _row(q["by_day"], YESTERDAY.date().isoformat()), _row(q["by_day"], TODAY.date().isoformat())
    assert (day1["reports"], day1["fallback_rate"], day1["mean_latency_s"], day1["mean_tokens"]) == (
        2,
        0.5,
        15.0,
        1500.0,
    )
    assert (day1["decided"], day1["agreement_rate"], day1["verdict_rate"], day1["useful_rate"]) == (2, 0.5, 0.5, 0.5)
    assert (day2["reports"], day2["fallback_rate"], day2["mean_latency_s"], day2["mean_tokens"]) == (
        2,
        0.0,
        35.0,
        300.0,
    )
    assert (day2["decided"], day2["agreement_rate"], day2["verdict_rate"], day2["useful_rate"]) == (1, 1.0, 0.5, 1.0)
    assert [r["key"] for r in q["by_model"]] == ["m-a", "m-b"]
    assert _row(q["by_model"], "m-a")["agreement_rate"] == 0.5 and _row(q["by_model"], "m-b")["agreement_rate"] == 1.0
    assert _row(q["by_prompt_version"], "p2")["mean_latency_s"] == 35.0
    v1, v2 = _row(q["by_policy_version"], "v1"), _row(q["by_policy_version"], "v2")
    assert (v1["reports"], v1["decided"], v1["agreement_rate"], v2["reports"], v2["agreement_rate"]) == (
        3,
        2,
        0.5,
        1,
        1.0,
    )
    ato = _row(q["by_typology"], "account_takeover")
    assert (ato["reports"], ato["decided"], ato["agreement_rate"], ato["judged"]) == (2, 1, 1.0, 2)
    assert _row(q["by_typology"], "stolen_card")["fallback_rate"] == 1.0
    with _as(api, "evaluator") as c:  # a later start leaves yesterday's reports (and what refers to them) out
        today = c.get("/v1/quality", params={"since": TODAY.date().isoformat()}).json()["total"]
    assert (today["reports"], today["decided"], today["agreement_rate"], today["useful_rate"]) == (2, 1, 1.0, 1.0)


def test_quality_is_for_evaluators_and_admins_and_checks_its_dates(api: LiveServer) -> None:
    for role, status in (("analyst", 403), ("ticketing", 403), ("evaluator", 200)):
        with _as(api, role) as c:
            assert c.get("/v1/quality").status_code == status
    with client_for(api, API_KEY) as c:  # the bootstrap key is admin
        assert c.get("/v1/quality").status_code == 200
        bad = c.get("/v1/quality", params={"since": "2026-05-02", "until": "2026-05-01"})
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        assert c.get("/v1/quality", params={"since": "yesterday"}).status_code == 422
        assert c.get("/v1/quality", params={"since": "0"}).status_code == 422  # not seconds since 1970


def test_the_quality_chart_is_an_svg_with_one_bar_per_group(api: LiveServer) -> None:
    _seed_feedback(api)
    with _as(api, "evaluator") as c:
        r = c.get(
            "/v1/quality/chart.svg",
            params={"figure": "agreement_rate", "by": "model", "since": YESTERDAY.date().isoformat()},
        )
        assert c.get("/v1/quality/chart.svg", params={"figure": "nonsense"}).status_code == 422
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.count('class="bar"') == 2 and ">m-a<" in r.text and ">50%<" in r.text and ">100%<" in r.text
    assert "<script" not in r.text
