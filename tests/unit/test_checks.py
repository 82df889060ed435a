"""The guarantees code gives over the model, on evidence packs built in memory (no store, no model server):
the verifier, the per-case schema, the evidence-id grammar, the policy solver, code-written findings, the
retry and fallback paths with a scripted model, and the summary renderers on the reports they produce.

The same pack read from DynamoDB Local and Chroma, and the real model, are in tests/integration/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fraudagent.agent import evidence_ids
from fraudagent.agent.drafting import ModelDraft, choices, draft_schema
from fraudagent.agent.evidence import EvidencePack, pack_from_bundle
from fraudagent.agent.facts import add_facts
from fraudagent.agent.pipeline import Investigator, add_injection_fact, report_from_pack
from fraudagent.agent.policy import facts_of, load_policy
from fraudagent.agent.verifier import verify, vocabulary
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import SUMMARY_FIELDS, Settings
from fraudagent.retrieval.search import SimilarCase
from fraudagent.store.cases import CaseRecord
from fraudagent.store.tables import Tables
from fraudagent.summaries.render import render, summary_content
from tests.bundles import example
from tests.fakes import ScriptedToolModel, draft

ROOT = Path(__file__).resolve().parents[2]


def _settings() -> Settings:
    return Settings(llm_base_url="http://127.0.0.1:9/v1", llm_max_retries=0, llm_timeout_s=5, table_prefix="unit")


def _pack(doc: dict[str, Any] | None = None) -> EvidencePack:
    bundle = CaseBundle.model_validate(doc or example())
    similar = [SimilarCase(case=p, similarity=0.8, matched_signals=["credential_change"]) for p in bundle.past_cases]
    pack = pack_from_bundle(bundle, similar=similar)
    add_facts(pack)
    add_injection_fact(pack)
    return pack


def _investigator(model: Any = None) -> Investigator:
    settings = _settings()
    factory = (lambda *_a, **_k: model) if model is not None else None
    return Investigator(settings=settings, history=Tables.connect(settings), model_factory=factory)


@pytest.fixture
def pack() -> EvidencePack:
    return _pack()


def _verify(pack: EvidencePack, **changes: Any) -> list[str]:
    policy = load_policy()
    facts = facts_of(pack.items)
    allowed = choices(pack, policy, facts, shown=list(pack.items))
    verdict = verify(
        ModelDraft.model_validate(draft(**changes)), pack, policy, vocabulary(pack), choices=allowed, max_narrative=1200
    )
    return verdict.problems


def test_the_pack_holds_the_bundles_evidence_under_stable_ids(pack: EvidencePack) -> None:
    assert {"txn:E-99801", "txn:E-99812", "score:E-99812", "acct:A-4471", "dev:D-77", "case:C-000017"} <= set(
        pack.items
    )
    assert pack.items["fact:credential_change"].rests_on[:2] == ["E-99801", "E-99812"]
    assert "19 minutes" in pack.items["fact:credential_change"].line


def test_a_true_draft_passes_including_stated_rounding(pack: EvidencePack) -> None:
    assert _verify(pack) == []
    assert (
        _verify(
            pack,
            narrative=(
                "About 100 USD of gift cards followed a password reset at 13:42 on 2026-03-02; the score was 0.9 (91%)."
            ),
        )
        == []
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"narrative": "A 120.00 USD gift card was bought 19 minutes after a password reset."}, "the number 120.00"),
        ({"narrative": "Event E-99999 shows the purchase."}, "the id E-99999"),
        ({"findings": ["txn:E-12345"]}, "finding txn:E-12345 is not an id"),
        ({"actions": ["deny_refund"]}, "deny_refund is not allowed for account_takeover"),
        ({"narrative": "The password was reset on 2026-03-03 from a new device."}, "the date 2026-03-03"),
        ({"narrative": "The password was reset at 13:43 from a new device."}, "the time 13:43"),
        ({"typology": "card_testing", "actions": ["block_instrument"]}, "card_testing is not supported"),
        (
            {"typology": "legitimate", "actions": ["close_no_action"]},
            "close_no_action is refused while these facts show fraud",
        ),
        # A high-impact action the rules do not suggest is the model's word against the rules': refused.
        ({"typology": "stolen_card", "actions": ["block_instrument"]}, "goes beyond what the rules support"),
        ({"typology": "stolen_card", "actions": ["escalate"]}, None),
        ({"typology": "account_takeover", "actions": ["step_up_verification"]}, None),
    ],
)
def test_the_verifier_catches_each_bad_draft(pack: EvidencePack, changes: dict[str, Any], expected: str | None) -> None:
    problems = _verify(pack, **changes)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_ids_a_model_writes_under_another_name_resolve_only_when_unambiguous(pack: EvidencePack) -> None:
    assert pack.resolve("txn:E-99812") == pack.resolve("E-99812") == "txn:E-99812"
    assert pack.resolve("event:E-99812") == pack.resolve("transaction: E-99812") == "txn:E-99812"
    assert pack.resolve("[event:E-99812]") == "txn:E-99812"
    assert pack.resolve("score:E-99812") == "score:E-99812"
    assert pack.resolve("acct:E-99812") is None  # one of the pack's own kinds, and the wrong one
    assert pack.resolve("event:E-12345") is None and pack.resolve("score_0.80") is None
    assert _verify(pack, findings=["event:E-99812"]) == []


def test_the_console_keeps_the_same_id_pattern_as_the_agent() -> None:
    script = (ROOT / "fraudagent/api/console/static/case.js").read_text()
    kinds = re.search(r"const ID_TOKEN = /\\\[\?\(\(\?:([a-z|]+)\):", script)
    assert kinds is not None, "case.js no longer declares ID_TOKEN"
    assert kinds.group(1).split("|") == [k.rstrip(":") for k in evidence_ids.EVIDENCE_KINDS]
    assert "[A-Za-z0-9_.\\-]*[A-Za-z0-9_]" in script.split("const ID_TOKEN", 1)[1].split("\n", 1)[0]
    assert evidence_ids.ID_TOKEN.pattern.endswith(":[A-Za-z0-9_.\\-]*[A-Za-z0-9_]")


def test_the_schema_narrows_every_choice_to_the_case(pack: EvidencePack) -> None:
    policy = load_policy()
    allowed = choices(pack, policy, facts_of(pack.items), shown=list(pack.items))
    schema = draft_schema(allowed)
    branches = {b["properties"]["typology"]["const"]: b for b in schema["anyOf"]}
    assert next(iter(branches)) == "account_takeover"  # the rules' typology first
    assert "card_testing" not in branches and "legitimate" in branches  # unsupported typologies cannot be written
    assert branches["account_takeover"]["properties"]["actions"]["items"]["enum"][0] == "lock_account"
    assert "block_instrument" not in branches["stolen_card"]["properties"]["actions"]["items"]["enum"]  # not suggested
    assert (
        "close_no_action" not in branches["legitimate"]["properties"]["actions"]["items"]["enum"]
    )  # refused by policy
    ids = branches["account_takeover"]["properties"]["findings"]["items"]["enum"]
    assert "txn:E-99812" in ids and all(i.split(":")[0] in ("fact", "txn", "acct", "dev") for i in ids)
    assert list(branches["account_takeover"]["properties"])[-1] == "narrative"  # decisions first, free text last


def test_the_policy_solver_is_the_pipeline_with_the_model_off(pack: EvidencePack) -> None:
    model = ScriptedToolModel()
    report = report_from_pack(_investigator(model), pack, use_model=False)
    assert report.path == "policy" and model.seen == [] and report.usage.llm_calls == 0
    assert report.typology.value == "account_takeover" and [a.value for a in report.recommended_actions] == [
        "lock_account"
    ]
    assert report.findings and all(pack.resolve(i) == i for f in report.findings for i in f.evidence_ids)


def test_findings_are_written_by_code_and_a_wrong_sentence_is_removed_not_retried(pack: EvidencePack) -> None:
    wrong = "A 120.00 USD gift card followed a reset."
    model = ScriptedToolModel(script=[draft(narrative=f"A password reset came first. {wrong}")])
    report = report_from_pack(_investigator(model), pack)
    assert report.path == "llm" and report.usage.llm_calls == 1
    assert report.removed_claims == [wrong] and report.narrative == "A password reset came first."
    by_id = {f.evidence_ids[0]: f for f in report.findings}
    assert "100.00 USD" in by_id["txn:E-99812"].statement and by_id["txn:E-99812"].source == "model"
    assert report.confidence == 0.85 and report.unknowns == ["Whether the account holder recognises this activity."]
    body = model.bodies[0]
    assert body["max_tokens"] == _settings().draft_max_tokens and body["response_format"]["type"] == "json_object"


def test_a_refused_draft_is_sent_back_by_appending_only_the_feedback(pack: EvidencePack) -> None:
    model = ScriptedToolModel(script=[draft(actions=["deny_refund"]), draft()])
    report = report_from_pack(_investigator(model), pack)
    assert report.path == "llm_retried" and report.model_proposal is None
    first, second = model.seen
    assert second[: len(first)] == first  # the same prefix: the server's cache re-reads none of it
    assert second[2].type == "ai" and "deny_refund" in second[2].content
    assert "deny_refund is not allowed for account_takeover" in second[3].content


def test_a_model_that_always_fails_verification_gets_the_policy_fallback_saying_what_it_proposed(
    pack: EvidencePack,
) -> None:
    wrong = draft(typology="refund_abuse", actions=["deny_refund"])
    report = report_from_pack(_investigator(ScriptedToolModel(script=[wrong, wrong])), pack)
    assert report.path == "fallback"
    assert report.typology.value == "account_takeover" and [a.value for a in report.recommended_actions] == [
        "lock_account"
    ]
    assert report.policy_rules == ["classify.account_takeover", "ato.lock_after_spend"]
    assert report.policy_version == load_policy().version
    assert all(f.source == "code" for f in report.findings)
    assert report.model_proposal is not None and report.model_proposal.typology.value == "refund_abuse"
    assert any("refund_abuse is not supported" in r for r in report.model_proposal.refused_because)
    assert "<=" not in report.narrative and "4320" not in report.narrative  # no rule expressions for readers


def test_required_citations_are_added_by_code_when_the_draft_leaves_them_out(pack: EvidencePack) -> None:
    report = report_from_pack(_investigator(ScriptedToolModel(script=[draft(findings=["txn:E-99812"])])), pack)
    assert report.path == "llm"
    added = {i for f in report.findings if f.source == "code" for i in f.evidence_ids}
    assert {"fact:credential_change", "fact:trigger_event"} <= added


def test_summaries_render_the_report_in_markdown_jira_and_servicenow(pack: EvidencePack) -> None:
    report = report_from_pack(_investigator(ScriptedToolModel(script=[draft()])), pack).model_dump(mode="json")
    bundle = CaseBundle.model_validate(example())
    record = CaseRecord(case=bundle.case, account_ids=["A-4471"])
    lines = {i: item.line for i, item in pack.items.items()}
    full = summary_content(
        report=report, record=record, fields=list(SUMMARY_FIELDS), redact_pii=False, evidence_lines=lines
    )
    markdown = render("markdown", full, "C-000123")
    assert isinstance(markdown, str) and markdown.startswith(
        "## Fraud case C-000123: account takeover (confidence 0.85)"
    )
    assert "txn:E-99812" in markdown
    adf = render("jira", full, "C-000123")
    assert isinstance(adf, dict) and adf["type"] == "doc" and adf["version"] == 1
    note = render("servicenow", full, "C-000123")
    assert isinstance(note, str) and "<script" not in note and "C-000123" in note
    # a ticketing caller gets only the allowed fields, with personal data redacted
    narrow = summary_content(report=report, record=record, fields=["typology"], redact_pii=True, evidence_lines=lines)
    assert "narrative" not in narrow and "typology" in str(narrow)
