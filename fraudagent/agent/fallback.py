"""The report code writes when the model's draft can't be used: facts only, nothing invented.

The typology comes from transparent rules over the facts; the action is the
conservative one for that typology. Its confidence is kept low on purpose: it
is a safe starting point for the analyst, not a verdict.
"""

from __future__ import annotations

from typing import Any

from fraudagent.agent.evidence import EvidencePack
from fraudagent.agent.report import Finding
from fraudagent.core.models import Action, Typology

# The conservative action for each typology when no model judgement is available.
CONSERVATIVE_ACTION: dict[Typology, Action] = {
    Typology.account_takeover: Action.step_up_verification,
    Typology.stolen_card: Action.hold_purchases,
    Typology.card_testing: Action.block_instrument,
    Typology.friendly_fraud: Action.represent_chargeback,
    Typology.refund_abuse: Action.deny_refund,
    Typology.gift_card_laundering: Action.escalate,
    Typology.promo_abuse: Action.escalate,
    Typology.mule_ring: Action.escalate,
    Typology.legitimate: Action.close_no_action,
}


def _data(pack: EvidencePack, name: str) -> dict[str, Any] | None:
    item = pack.items.get(f"fact:{name}")
    return item.data if item else None


def classify(pack: EvidencePack) -> tuple[Typology, str]:
    """First matching rule wins; returns the typology and the rule, in words."""
    cred = _data(pack, "credential_change")
    velocity = _data(pack, "velocity_24h") or {}
    refunds = _data(pack, "refunds_chargebacks") or {}
    gift = _data(pack, "gift_card_share_7d") or {}
    linked = _data(pack, "linked_accounts") or {}
    new_device = _data(pack, "new_device")
    mismatch = _data(pack, "bin_ip_mismatch")
    if velocity.get("declined", 0) >= 4 and velocity.get("instruments", 0) >= 3:
        return Typology.card_testing, "4+ declined payments across 3+ instruments in 24 hours"
    if cred and cred.get("purchases_after", 0) >= 1 and cred.get("minutes_before_open", 10**9) <= 72 * 60 and new_device:
        return Typology.account_takeover, "purchases soon after a credential change, on a new device"
    if refunds.get("chargebacks", 0) >= 1 and not new_device:
        return Typology.friendly_fraud, "a chargeback from an account on its usual devices"
    if refunds.get("refunds", 0) >= 3 and refunds.get("ratio", 0) >= 0.3:
        return Typology.refund_abuse, "3+ refunds at a refund ratio of 0.3 or more"
    if linked.get("count", 0) >= 3:
        return Typology.mule_ring, "3+ other accounts share its devices or instruments"
    if gift.get("share", 0) >= 0.7 and linked.get("count", 0) >= 1:
        return Typology.gift_card_laundering, "gift cards are most of the spend and other accounts are linked"
    if mismatch and new_device:
        return Typology.stolen_card, "card BIN country differs from IP country, on a new device"
    return Typology.legitimate, "no rule for a fraud pattern matched"


def deterministic_report(pack: EvidencePack) -> dict[str, Any]:
    typology, rule = classify(pack)
    facts = [i for i in pack.items.values() if i.kind == "fact"]
    findings = [Finding(statement=f.line, evidence_ids=[f.id, *[f"txn:{e}" for e in f.rests_on[:3] if f"txn:{e}" in pack.items]]) for f in facts]
    if not findings:
        findings = [Finding(statement="No computed facts: the case has no events in the window.", evidence_ids=[f"acct:{pack.case.account_id}"] if f"acct:{pack.case.account_id}" in pack.items else [])]
    narrative = (
        f"Built by code from the evidence (no model draft was accepted). "
        f"Case {pack.case.case_id} on account {pack.case.account_id}: {len(pack.events)} events in the window. "
        f"Rule-based typology: {typology.value} ({rule})."
    )
    return {
        "narrative": narrative,
        "findings": findings,
        "typology": typology,
        "recommended_actions": [CONSERVATIVE_ACTION[typology]],
        "confidence": 0.3,
        "unknowns": ["No model judgement: an analyst should review the evidence."],
    }
