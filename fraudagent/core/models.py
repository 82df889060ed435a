"""Domain models: the case bundle (../shared/CASE_BUNDLE.md, version 1) and its parts.

Every model refuses unknown fields. Fields holding customer-written text are
typed `UntrustedText` so that code rendering them for a model can tell them apart.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


class EventType(StrEnum):
    login = "login"
    password_reset = "password_reset"
    email_change = "email_change"
    mfa_change = "mfa_change"
    purchase = "purchase"
    subscription = "subscription"
    wallet_topup = "wallet_topup"
    gift_card_purchase = "gift_card_purchase"
    gift_card_redeem = "gift_card_redeem"
    refund_request = "refund_request"
    refund = "refund"
    chargeback = "chargeback"
    support_contact = "support_contact"


CREDENTIAL_CHANGES = frozenset({EventType.password_reset, EventType.email_change, EventType.mfa_change})
MONEY_EVENTS = frozenset(
    {
        EventType.purchase,
        EventType.subscription,
        EventType.wallet_topup,
        EventType.gift_card_purchase,
        EventType.gift_card_redeem,
        EventType.refund_request,
        EventType.refund,
        EventType.chargeback,
    }
)
SPEND_EVENTS = frozenset(
    {EventType.purchase, EventType.subscription, EventType.wallet_topup, EventType.gift_card_purchase}
)
"""Attempts to pay the store; declined attempts count for velocity."""


class Typology(StrEnum):
    account_takeover = "account_takeover"
    stolen_card = "stolen_card"
    card_testing = "card_testing"
    friendly_fraud = "friendly_fraud"
    refund_abuse = "refund_abuse"
    gift_card_laundering = "gift_card_laundering"
    promo_abuse = "promo_abuse"
    mule_ring = "mule_ring"
    legitimate = "legitimate"


class Disposition(StrEnum):
    confirmed_fraud = "confirmed_fraud"
    false_positive = "false_positive"
    inconclusive = "inconclusive"


class Action(StrEnum):
    close_no_action = "close_no_action"
    step_up_verification = "step_up_verification"
    lock_account = "lock_account"
    hold_purchases = "hold_purchases"
    revoke_entitlements = "revoke_entitlements"
    void_gift_cards = "void_gift_cards"
    block_instrument = "block_instrument"
    deny_refund = "deny_refund"
    approve_refund = "approve_refund"
    represent_chargeback = "represent_chargeback"
    escalate = "escalate"


class Priority(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class TriggerKind(StrEnum):
    model = "model"
    rule = "rule"
    manual = "manual"
    chargeback = "chargeback"
    customer_report = "customer_report"


def _money(value: str) -> str:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError("must be a decimal string such as '59.99'") from None
    if not amount.is_finite():
        raise ValueError("must be a finite decimal")
    if amount.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValueError("at most 4 decimal places")
    return value


Money = Annotated[str, AfterValidator(_money)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]
UntrustedText = Annotated[str, Field(max_length=4000)]
"""Text a customer or fraudster wrote: evidence, never instructions."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(_Model):
    kind: TriggerKind
    detail: str = Field(default="", max_length=500)


class Case(_Model):
    case_id: Id
    account_id: Id
    opened_at: AwareDatetime
    trigger: Trigger
    priority: Priority = Priority.medium
    note: UntrustedText | None = None


class Account(_Model):
    account_id: Id
    created_at: AwareDatetime
    country: Country
    email_domain: str | None = Field(default=None, max_length=253)
    tier: str | None = Field(default=None, max_length=32)
    display_name: UntrustedText | None = None


class Event(_Model):
    event_id: Id
    account_id: Id
    ts: AwareDatetime
    type: EventType
    amount: Money | None = None
    currency: Currency | None = None
    sku: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=64)
    device_id: Id | None = None
    ip: str | None = Field(default=None, max_length=64)
    ip_country: Country | None = None
    instrument_id: Id | None = None
    instrument_type: str | None = Field(default=None, max_length=32)
    bin_country: Country | None = None
    status: str | None = Field(default=None, max_length=32)
    text: UntrustedText | None = None


class Reason(_Model):
    feature: str = Field(min_length=1, max_length=64)
    value: float | int | str | None = None
    contribution: float


class Score(_Model):
    event_id: Id
    model_version: str = Field(min_length=1, max_length=64)
    score: float = Field(ge=0.0, le=1.0)
    reasons: list[Reason] = Field(default_factory=list, max_length=50)


class PastCase(_Model):
    case_id: Id
    account_id: Id
    closed_at: AwareDatetime
    typology: Typology
    disposition: Disposition
    actions: list[Action] = Field(default_factory=list)
    narrative: UntrustedText


class Expected(_Model):
    typology: Typology
    disposition: Disposition
    acceptable_actions: list[Action] = Field(min_length=1)
    must_cite: list[Id] = Field(default_factory=list)
    must_not_contain: list[str] = Field(default_factory=list)


class CaseBundle(_Model):
    bundle_version: int = Field(ge=1, le=1)
    case: Case
    accounts: list[Account] = Field(min_length=1)
    events: list[Event] = Field(default_factory=list)
    scores: list[Score] | None = None
    past_cases: list[PastCase] = Field(default_factory=list)
    expected: Expected | None = None


def utc_iso(ts: datetime) -> str:
    """Canonical text form of an aware timestamp: UTC, 'Z', microseconds only when present."""
    utc = ts.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ")


def sort_key_ts(ts: datetime) -> str:
    """Fixed-width UTC form used in sort keys, so lexical order is time order."""
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
