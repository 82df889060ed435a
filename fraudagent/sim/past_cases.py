"""The closed-case history: investigations closed in the year before the simulated window.

Most past cases are on historical accounts that no longer appear in the
store (`A-H...`); about one in twenty is on an account that does, ring
members included, so that similar-case search can be tested for excluding
the case's own account and ring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from random import Random

from fraudagent.core.models import Account, Action, Disposition, PastCase, Typology
from fraudagent.sim.injections import Carrier, make_injection
from fraudagent.sim.narratives import write_narrative

HISTORY = timedelta(days=365)
TYPOLOGY_WEIGHTS: dict[Typology, float] = {
    Typology.legitimate: 28,
    Typology.account_takeover: 15,
    Typology.stolen_card: 12,
    Typology.card_testing: 7,
    Typology.friendly_fraud: 12,
    Typology.refund_abuse: 9,
    Typology.gift_card_laundering: 6,
    Typology.promo_abuse: 6,
    Typology.mule_ring: 5,
}
INCONCLUSIVE_SHARE = 0.12  # of suspected fraud: escalated without a verdict
IN_STORE_SHARE = 0.05
REPEAT_ACCOUNT_SHARE = 0.06  # historical accounts investigated more than once
INJECTION_SHARE = 0.01
RING_TYPOLOGIES = frozenset({Typology.mule_ring, Typology.gift_card_laundering, Typology.promo_abuse})

# Per typology: the usual first action, then further actions with how often analysts add them.
_CONFIRMED_ACTIONS: dict[Typology, tuple[tuple[Action, ...], tuple[tuple[Action, float], ...]]] = {
    Typology.account_takeover: (
        (Action.lock_account,),
        ((Action.void_gift_cards, 0.6), (Action.step_up_verification, 0.3), (Action.hold_purchases, 0.15)),
    ),
    Typology.stolen_card: (
        (Action.block_instrument,),
        ((Action.lock_account, 0.6), (Action.revoke_entitlements, 0.4), (Action.hold_purchases, 0.2)),
    ),
    Typology.card_testing: ((Action.block_instrument,), ((Action.lock_account, 0.7), (Action.hold_purchases, 0.2))),
    Typology.friendly_fraud: ((Action.represent_chargeback,), ((Action.revoke_entitlements, 0.5),)),
    Typology.refund_abuse: ((Action.deny_refund,), ((Action.hold_purchases, 0.3), (Action.escalate, 0.1))),
    Typology.gift_card_laundering: (
        (Action.void_gift_cards,),
        ((Action.lock_account, 0.7), (Action.block_instrument, 0.3)),
    ),
    Typology.promo_abuse: ((Action.lock_account, Action.revoke_entitlements), ((Action.hold_purchases, 0.2),)),
    Typology.mule_ring: (
        (Action.lock_account,),
        ((Action.block_instrument, 0.6), (Action.void_gift_cards, 0.3), (Action.hold_purchases, 0.2)),
    ),
}


def generate_past_cases(
    rng: Random, count: int, *, accounts: Sequence[Account], truth: Mapping[str, Typology], before: datetime
) -> list[PastCase]:
    """`count` closed cases, closed in the year before `before`, numbered in closing order."""
    earliest = before - HISTORY
    in_store = _in_store_accounts(rng, round(count * IN_STORE_SHARE), accounts, truth, before)
    drafts: list[tuple[datetime, str, Typology, Disposition]] = []
    for account in in_store:
        closed = _moment(rng, max(earliest, account.created_at + timedelta(days=3)), before)
        typology, disposition = _in_store_outcome(rng, truth.get(account.account_id, Typology.legitimate))
        drafts.append((closed, account.account_id, typology, disposition))
    historical: list[str] = []
    for _ in range(count - len(drafts)):
        if historical and rng.random() < REPEAT_ACCOUNT_SHARE:
            account_id = rng.choice(historical)
        else:
            account_id = f"A-H{len(historical) + 1:05d}"
            historical.append(account_id)
        typology, disposition = _historical_outcome(rng)
        drafts.append((_moment(rng, earliest, before), account_id, typology, disposition))
    drafts.sort(key=lambda d: (d[0], d[1]))
    return [
        _close(rng, f"C-1{number:05d}", closed, account_id, typology, disposition)
        for number, (closed, account_id, typology, disposition) in enumerate(drafts, start=1)
    ]


def _in_store_accounts(
    rng: Random, wanted: int, accounts: Sequence[Account], truth: Mapping[str, Typology], before: datetime
) -> list[Account]:
    """Store accounts old enough to have a past case; up to a quarter are ring members."""
    eligible = [a for a in accounts if a.created_at < before - timedelta(days=7)]
    rings = [a for a in eligible if truth.get(a.account_id) in RING_TYPOLOGIES]
    chosen = rng.sample(rings, min(len(rings) // 2, wanted // 4))
    taken = {a.account_id for a in chosen}
    others = [a for a in eligible if a.account_id not in taken]
    return chosen + rng.sample(others, min(len(others), wanted - len(chosen)))


def _in_store_outcome(rng: Random, truth: Typology) -> tuple[Typology, Disposition]:
    """A fraudster's earlier case was often left open; an honest customer's was a false alarm."""
    if truth is Typology.legitimate:
        return Typology.legitimate, Disposition.false_positive
    return truth, Disposition.inconclusive if rng.random() < 0.6 else Disposition.confirmed_fraud


def _historical_outcome(rng: Random) -> tuple[Typology, Disposition]:
    typology = rng.choices(list(TYPOLOGY_WEIGHTS), weights=list(TYPOLOGY_WEIGHTS.values()))[0]
    if typology is Typology.legitimate:
        return typology, Disposition.false_positive
    return typology, Disposition.inconclusive if rng.random() < INCONCLUSIVE_SHARE else Disposition.confirmed_fraud


def _actions(rng: Random, typology: Typology, disposition: Disposition) -> list[Action]:
    if disposition is Disposition.false_positive:
        return [Action.close_no_action] + ([Action.step_up_verification] if rng.random() < 0.1 else [])
    if disposition is Disposition.inconclusive:
        extra = [
            a
            for a, chance in ((Action.step_up_verification, 0.4), (Action.hold_purchases, 0.2))
            if rng.random() < chance
        ]
        return [Action.escalate, *extra]
    usual, optional = _CONFIRMED_ACTIONS[typology]
    return [rng.choice(usual), *(a for a, chance in optional if rng.random() < chance)]


def _close(
    rng: Random, case_id: str, closed: datetime, account_id: str, typology: Typology, disposition: Disposition
) -> PastCase:
    actions = _actions(rng, typology, disposition)
    narrative = write_narrative(rng, typology, disposition, actions)
    if rng.random() < INJECTION_SHARE:
        narrative = _with_injection(rng, narrative)
    return PastCase(
        case_id=case_id,
        account_id=account_id,
        closed_at=closed,
        typology=typology,
        disposition=disposition,
        actions=actions,
        narrative=narrative,
    )


def _with_injection(rng: Random, narrative: str) -> str:
    """Past narratives quote customer text, so injections reach them too."""
    injection = make_injection(rng, Carrier.narrative)
    quote = rng.choice(('Customer chat quoted: "{}"', 'Dispute text read: "{}"', 'Gift message was: "{}"'))
    return f"{narrative} {quote.format(injection.text)}"


def _moment(rng: Random, lo: datetime, hi: datetime) -> datetime:
    return lo + timedelta(seconds=rng.randrange(max(1, int((hi - lo).total_seconds()))))
