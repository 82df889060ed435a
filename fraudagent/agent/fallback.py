"""The report code writes from facts and policy alone: when no model draft holds, and as the `policy` solver.

The typology comes from the policy's ordered classification rules, the actions
from its suggestion for that typology, the findings from the computed facts.
Nothing is invented; its confidence is kept low on purpose: it is a safe
starting point for the analyst, not a verdict.
"""

from __future__ import annotations

from typing import Any

from fraudagent.agent.evidence import EvidencePack
from fraudagent.agent.findings import item_finding
from fraudagent.agent.policy import Policy, facts_of
from fraudagent.agent.report import Finding
from fraudagent.core.models import Typology

CONFIDENCE = 0.3


def deterministic_report(pack: EvidencePack, policy: Policy) -> dict[str, Any]:
    facts = facts_of(pack.items)
    rule = policy.classify_case(facts)
    decision = policy.decide(rule.typology, facts)
    findings = [
        item_finding(pack, item.id, "code")
        for item in pack.items.values()
        if item.kind == "fact" and item.id != "fact:injection_attempt"  # injection findings are added separately
    ]
    if not findings and f"acct:{pack.case.account_id}" in pack.items:
        findings = [
            Finding(
                statement="No computed facts: the case has no events in the window.",
                evidence_ids=[f"acct:{pack.case.account_id}"],
                source="code",
            )
        ]
    # In words, not the rule's expressions: a reader (and the numeric check) should meet only evidence numbers.
    matched = (
        "no fraud rule matched"
        if rule.typology is Typology.legitimate
        else f"the facts match the {rule.typology.value.replace('_', ' ')} rule"
    )
    narrative = (
        f"Built by code from the facts and the policy. Case {pack.case.case_id} on account {pack.case.account_id}:"
        f" {len(pack.events)} events in the window; {matched} ({rule.id}), so the typology is {rule.typology.value} and"
        f" the policy suggests {', '.join(a.value for a in decision.suggested)}."
    )
    return {
        "narrative": narrative,
        "findings": findings,
        "typology": rule.typology,
        "recommended_actions": decision.suggested,
        "confidence": CONFIDENCE,
        "unknowns": ["No model judgement: an analyst should review the evidence."],
        "policy_rules": [rule.id, *decision.rules],
        "suggested_actions": decision.suggested,
    }
