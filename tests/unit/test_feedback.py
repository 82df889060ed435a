"""Feedback without servers: a verdict's validation, a decision's agreement with a report, the quality arithmetic,
the SVG chart, and the keyed pseudonyms of exported cases."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fraudagent.agent.pii import KeyedPseudonyms
from fraudagent.agent.report import InvestigationReport, Timings, Usage
from fraudagent.core.models import Action, CaseBundle, Disposition, Typology
from fraudagent.decisions.flows import agreement_with
from fraudagent.feedback.charts import bar_chart
from fraudagent.feedback.export import pseudonymise
from fraudagent.feedback.models import Reason, VerdictRequest
from fraudagent.feedback.service import quality_report
from fraudagent.store.cases import CaseDecision
from tests.bundles import example

NOW = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)


def test_a_verdict_takes_reasons_from_the_list_and_other_needs_a_note() -> None:
    v = VerdictRequest.model_validate({"useful": False, "reasons": ["too_long", "too_long", "wrong_action"]})
    assert v.reasons == [Reason.too_long, Reason.wrong_action]  # repeated reasons count once
    for bad in (
        {"useful": False, "reasons": ["boring"]},
        {"useful": False, "reasons": ["other"]},
        {"useful": False, "reasons": ["other"], "note": "   "},
        {"reasons": []},
        {"useful": True, "extra": 1},
    ):
        with pytest.raises(ValidationError):
            VerdictRequest.model_validate(bad)
    assert VerdictRequest.model_validate({"useful": False, "reasons": ["other"], "note": "n"}).note == "n"


def _report(typology: str, actions: list[str], *, abstained: bool = False) -> dict[str, Any]:
    return InvestigationReport(
        report_id="R-1",
        case_id="C-1",
        created_at=NOW,
        narrative="n",
        findings=[],
        typology=typology,  # type: ignore[arg-type]
        recommended_actions=actions,  # type: ignore[arg-type]
        confidence=0.5,
        unknowns=[],
        abstained=abstained,
        similar_cases=[],
        path="llm",
        policy_version="pol-1",
        model="m",
        prompt_version="p",
        evidence_hash="h",
        timings=Timings(),
        usage=Usage(),
    ).model_dump(mode="json")


def _decision(disposition: str, typology: str, actions: list[str]) -> CaseDecision:
    return CaseDecision(
        disposition=Disposition(disposition),
        typology=Typology(typology),
        actions=[Action(a) for a in actions],
        analyst="ana",
        decided_at=NOW,
    )


@pytest.mark.parametrize(
    ("report", "decision", "expected"),
    [
        # same typology, fraud implied, main action taken (plus one more): agreed, overlap 1/2
        (
            ("account_takeover", ["lock_account"]),
            ("confirmed_fraud", "account_takeover", ["lock_account", "void_gift_cards"]),
            (True, True, True, 0.5, True),
        ),
        # the main action not taken although the second one was: no action match
        (
            ("stolen_card", ["block_instrument", "hold_purchases"]),
            ("confirmed_fraud", "stolen_card", ["hold_purchases"]),
            (True, True, False, 0.5, False),
        ),
        # the report closes it (false positive implied) but the analyst found fraud
        (
            ("legitimate", ["close_no_action"]),
            ("confirmed_fraud", "promo_abuse", ["lock_account"]),
            (False, False, False, 0.0, False),
        ),
    ],
)
def test_a_decision_agrees_when_typology_disposition_and_main_action_match(
    report: tuple[str, list[str]], decision: tuple[str, str, list[str]], expected: tuple[Any, ...]
) -> None:
    a = agreement_with(_report(*report), _decision(*decision))
    assert (a.typology_match, a.disposition_match, a.action_match, a.action_overlap, a.agreed) == expected
    assert (a.model, a.prompt_version, a.policy_version, a.path, a.report_id) == ("m", "p", "pol-1", "llm", "R-1")


def test_an_abstaining_report_implies_inconclusive() -> None:
    a = agreement_with(
        _report("account_takeover", ["escalate"], abstained=True),
        _decision("inconclusive", "account_takeover", ["escalate"]),
    )
    assert a.report_disposition is Disposition.inconclusive and a.agreed


def _stats(rid: str, day: str, **kw: Any) -> dict[str, Any]:
    return {
        "report_id": rid,
        "day": day,
        "model": "m",
        "prompt_version": "p",
        "policy_version": "v",
        "typology": "stolen_card",
        "path": "llm",
        "latency_s": 1.0,
        "prompt_tokens": 10,
        "completion_tokens": 0,
    } | kw


def test_quality_counts_per_report_and_keeps_out_what_refers_to_reports_outside_the_period() -> None:
    reports = [
        _stats("R1", "2026-11-01", path="fallback", latency_s=3.0, prompt_tokens=90, completion_tokens=10),
        _stats("R2", "2026-11-02", latency_s=1.0),
        _stats("R0", "2026-10-01"),  # before the period
    ]
    verdicts = [
        {"report_id": "R1", "useful": False, "reasons": ["wrong_action", "too_long"]},
        {"report_id": "R1", "useful": True, "reasons": []},
        {"report_id": "R0", "useful": False, "reasons": ["other"]},
    ]
    agreements = [{"report_id": "R2", "agreed": False}, {"report_id": "R0", "agreed": True}]
    q = quality_report(reports=reports, verdicts=verdicts, agreements=agreements, since=date(2026, 11, 1), until=None)
    t = q.total
    assert (t.reports, t.fallback_rate, t.mean_latency_s, t.mean_tokens) == (2, 0.5, 2.0, 55.0)
    assert (t.decided, t.agreement_rate, t.judged, t.verdict_rate, t.useful_rate) == (1, 0.0, 1, 0.5, 0.5)
    assert t.reasons == {"too_long": 1, "wrong_action": 1}
    r2 = next(r for r in q.by_day if r.key == "2026-11-02")
    assert (r2.judged, r2.verdict_rate, r2.useful_rate) == (0, 0.0, None)  # no verdict: no useful rate, not 0
    empty = quality_report(reports=[], verdicts=[], agreements=[], since=date(2026, 11, 1), until=date(2026, 11, 2))
    assert (empty.total.reports, empty.total.fallback_rate, empty.total.agreement_rate, empty.by_day) == (
        0,
        None,
        None,
        [],
    )


def test_the_chart_draws_a_bar_per_group_says_n_a_for_no_value_and_escapes_names() -> None:
    reports = [_stats("R1", "2026-11-01", model="<m&1>"), _stats("R2", "2026-11-01", model="m2")]
    q = quality_report(
        reports=reports,
        verdicts=[],
        agreements=[{"report_id": "R1", "agreed": True}],
        since=date(2026, 11, 1),
        until=None,
    )
    svg = bar_chart(q, figure="agreement_rate", by="model")
    assert svg.count('class="bar"') == 1 and ">n/a<" in svg and ">100%<" in svg
    assert "&lt;m&amp;1&gt;" in svg and "<m&1>" not in svg
    assert "no reports in this period" in bar_chart(
        quality_report(reports=[], verdicts=[], agreements=[], since=date(2026, 11, 1), until=None),
        figure="mean_tokens",
        by="day",
    )


def test_keyed_pseudonyms_are_stable_per_key_and_mask_personal_text() -> None:
    a, b, other = KeyedPseudonyms(b"k1"), KeyedPseudonyms(b"k1"), KeyedPseudonyms(b"k2")
    assert a.ident("acct", "A-", "A-4471") == b.ident("acct", "A-", "A-4471") != other.ident("acct", "A-", "A-4471")
    assert a.ident("acct", "A-", "A-4471") != a.ident("dev", "A-", "A-4471")  # a kind is part of the hash
    text = a.mask("mail jo@example.com from 203.0.113.9, card 4111 1111 1111 1111")
    assert "jo@example.com" not in text and "203.0.113.9" not in text and "4111" not in text
    assert text == b.mask("mail jo@example.com from 203.0.113.9, card 4111 1111 1111 1111")


def test_a_pseudonymised_bundle_is_valid_and_keeps_its_links() -> None:
    doc = example()
    doc["events"][0]["text"] = "call me at jo@example.com, xX_sniper_Xx"
    out = pseudonymise(json.loads(json.dumps(doc)), KeyedPseudonyms(b"k", names=["xX_sniper_Xx"]))
    bundle = CaseBundle.model_validate(out)  # still a valid bundle
    text = bundle.model_dump_json()
    assert (
        "A-4471" not in text and "xX_sniper_Xx" not in text and "jo@example.com" not in text and "203.0.113" not in text
    )
    account = bundle.accounts[0].account_id
    assert bundle.case.account_id == account and {e.account_id for e in bundle.events} == {account}
    devices = [(e.event_id, e.device_id) for e in bundle.events]
    original = {e["event_id"]: e.get("device_id") for e in doc["events"]}
    for event_id, device in devices:  # same device before, same device after
        assert all((device == d2) == (original[event_id] == original[e2]) for e2, d2 in devices)
    assert [e.event_id for e in bundle.events] == [e["event_id"] for e in doc["events"]]


def test_the_export_key_is_the_setting_or_one_made_once_and_kept_private(tmp_path: Path) -> None:
    from fraudagent.core.settings import Settings
    from fraudagent.feedback.export import pii_key

    assert pii_key(Settings(cache_dir=tmp_path, export_pii_key="s3cret")) == b"s3cret"  # type: ignore[arg-type]
    made = pii_key(Settings(cache_dir=tmp_path))
    assert len(made) == 64 and pii_key(Settings(cache_dir=tmp_path)) == made  # made once, then read
    assert (tmp_path / "export-pii.key").stat().st_mode & 0o777 == 0o600
