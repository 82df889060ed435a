"""What analysts do about each typology: the actions a case of it may end with."""

from __future__ import annotations

from fraudagent.core.models import Action, Typology

ACCEPTABLE_ACTIONS: dict[Typology, tuple[Action, ...]] = {
    Typology.account_takeover: (
        Action.lock_account,
        Action.step_up_verification,
        Action.void_gift_cards,
        Action.hold_purchases,
        Action.escalate,
    ),
    Typology.stolen_card: (
        Action.block_instrument,
        Action.lock_account,
        Action.hold_purchases,
        Action.revoke_entitlements,
        Action.escalate,
    ),
    Typology.card_testing: (Action.block_instrument, Action.lock_account, Action.hold_purchases, Action.escalate),
    Typology.friendly_fraud: (Action.represent_chargeback, Action.revoke_entitlements, Action.escalate),
    Typology.refund_abuse: (Action.deny_refund, Action.hold_purchases, Action.escalate),
    Typology.gift_card_laundering: (
        Action.void_gift_cards,
        Action.lock_account,
        Action.block_instrument,
        Action.escalate,
    ),
    Typology.promo_abuse: (Action.lock_account, Action.revoke_entitlements, Action.hold_purchases, Action.escalate),
    Typology.mule_ring: (
        Action.lock_account,
        Action.block_instrument,
        Action.void_gift_cards,
        Action.hold_purchases,
        Action.escalate,
    ),
}
"""Confirmed fraud: any of these is a defensible call; the first is the usual one."""

INCONCLUSIVE_ACTIONS: tuple[Action, ...] = (Action.escalate, Action.step_up_verification)
"""When the evidence settles nothing: hand it on, or ask the customer to prove who they are."""

FALSE_POSITIVE_ACTIONS: tuple[Action, ...] = (Action.close_no_action,)

FRAUD_TYPOLOGIES: tuple[Typology, ...] = tuple(ACCEPTABLE_ACTIONS)
