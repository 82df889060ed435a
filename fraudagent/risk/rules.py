"""The reference risk scorer: documented rules combined in a logistic, with reason codes.

It stands in for the trained model until one exists. Features come from one
time-ordered pass over the event log: an event's features read only the
history built from the events before it (in (ts, event_id) order) plus the
event's own fields, so a later event can never change an earlier score.
`FeatureTracker` is that pass; the trained model (`model.py`) reads the
same features, the rules' own and the wider set in `MODEL_FEATURES`, and only
replaces `score_features`.

Each rule turns one feature into a signal and multiplies it by a weight; the
product is the feature's additive contribution to the logit, and the largest
contributions are the score's reasons.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fraudagent.core.models import (
    CREDENTIAL_CHANGES,
    MONEY_EVENTS,
    SPEND_EVENTS,
    Account,
    Event,
    EventType,
    Reason,
    Score,
)
from fraudagent.core.money import usd_value

SCORER_VERSION = "ref-rules-1"

SCORED_EVENTS = MONEY_EVENTS - {EventType.refund}
"""Money-moving events a customer initiates. Refunds are the store's own payments, so they are not scored."""

TYPICAL_SPEND_USD = 30.0  # what an account without spending history is compared against
_MIN_HISTORY_FOR_MEDIAN = 3
_TEN_MINUTES = timedelta(minutes=10)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)  # the longest velocity window: attempts older than this are forgotten

Features = dict[str, float | None]
"""Feature name -> value; None when the feature does not apply (e.g. no credential change yet)."""


@dataclass(frozen=True, slots=True)
class Rule:
    feature: str
    weight: float
    signal: Callable[[float], float]
    meaning: str


def _capped(cap: float) -> Callable[[float], float]:
    return lambda value: min(value, cap)


def _extra(cap: float) -> Callable[[float], float]:
    """Count beyond the first (the account itself, the first instrument), capped."""
    return lambda value: min(max(value - 1, 0.0), cap)


RULES: tuple[Rule, ...] = (
    Rule("purchases_1h", 0.35, _capped(8), "payment attempts by the account in the previous hour"),
    Rule("purchases_24h", 0.06, _capped(20), "payment attempts by the account in the previous 24 hours"),
    Rule(
        "new_device",
        1.2,
        float,
        "1 when the device is new to an account that was active before it: first seen within 24 hours",
    ),
    Rule(
        "new_ip_country",
        1.3,
        float,
        "1 when the IP country is new to an account that was active before it: first seen within 24 hours",
    ),
    Rule(
        "mins_since_credential_change",
        2.4,
        lambda minutes: max(0.0, 1 - minutes / 1440),
        "minutes since the last password, email or MFA change; the signal fades over a day",
    ),
    Rule(
        "amount_vs_median",
        0.7,
        lambda ratio: min(max(math.log2(ratio), 0.0), 4.0) if ratio > 0 else 0.0,
        "amount over the account's median settled spend (a store-typical amount for new accounts); log2 signal",
    ),
    Rule(
        "gift_card_share_24h",
        1.6,
        float,
        "share of the last 24 hours' payment attempts, this one included, that bought gift cards",
    ),
    Rule("bin_country_mismatch", 1.4, float, "1 when the card's issuing country differs from the IP country"),
    Rule("device_accounts", 0.6, _extra(8), "distinct accounts seen on this device so far, this one included"),
    Rule(
        "instrument_accounts",
        0.9,
        _extra(8),
        "distinct accounts seen on this payment instrument so far, this one included",
    ),
    Rule(
        "account_age_days",
        2.0,
        lambda days: max(0.0, 1 - days / 30),
        "days since sign-up; the signal is for accounts under a month old",
    ),
    Rule("prior_refunds_chargebacks", 0.85, _capped(10), "refund requests and chargebacks the account had before"),
    Rule("declines_1h", 0.45, _capped(10), "declined payment attempts by the account in the previous hour"),
    Rule(
        "instruments_24h",
        0.4,
        _extra(10),
        "distinct instruments in the last 24 hours' payment attempts, this one included",
    ),
)
FEATURE_NAMES: tuple[str, ...] = tuple(rule.feature for rule in RULES)
"""The features the rules read."""

EXTRA_FEATURES: dict[str, str] = {
    "purchases_10m": "payment attempts by the account in the previous 10 minutes",
    "purchases_7d": "payment attempts by the account in the previous 7 days",
    "declines_24h": "declined payment attempts by the account in the previous 24 hours",
    "spend_usd_24h": "USD value of the account's payment attempts in the previous 24 hours",
    "failed_logins_24h": "failed logins to the account in the previous 24 hours",
    "device_first_use": "1 when the account has never used this device before",
    "ip_first_use": "1 when the account has never connected from this IP address before",
    "instrument_first_use": "1 when the account has never used this payment instrument before",
    "mins_since_password_reset": "minutes since the account's last password reset",
    "mins_since_email_change": "minutes since the account's last email change",
    "mins_since_mfa_change": "minutes since the account's last MFA change",
    "mins_since_last_event": "minutes since the account's previous event of any kind",
    "amount_usd": "the event's amount in USD",
    "amount_vs_max": "amount over the account's largest settled spend so far",
    "virtual_currency_share_24h": (
        "share of the last 24 hours' payment attempts, this one included, that bought virtual currency"
    ),
    "gift_card_share_7d": "share of the last 7 days' payment attempts, this one included, that bought gift cards",
    "prior_refund_requests": "refund requests the account made before",
    "prior_chargebacks": "chargebacks on the account before",
    "refund_request_ratio": "refund requests per settled payment, before this event",
    "redeems_24h": "gift cards the account redeemed in the previous 24 hours",
    "account_history_days": "days since the account's first event in the log",
    "bin_account_country_mismatch": "1 when the card's issuing country differs from the account's country",
    "ip_account_country_mismatch": "1 when the IP country differs from the account's country",
    "ip_accounts": "distinct accounts seen on this IP address so far, this one included",
}
"""Features beyond the rules' that the tracker computes for the trained model, with their meaning."""

MODEL_FEATURES: tuple[str, ...] = FEATURE_NAMES + tuple(EXTRA_FEATURES)
FEATURE_MEANINGS: dict[str, str] = {rule.feature: rule.meaning for rule in RULES} | EXTRA_FEATURES
BIAS = -5.2
MAX_REASONS = 5


@dataclass(slots=True)
class _Attempt:
    ts: datetime
    gift_card: bool
    virtual_currency: bool
    instrument_id: str | None
    declined: bool
    usd: float


@dataclass(slots=True)
class _AccountHistory:
    first_seen: datetime | None = None  # the account's first event
    last_seen: datetime | None = None  # the account's latest event
    devices: dict[str, datetime] = field(default_factory=dict)  # device -> first seen
    countries: dict[str, datetime] = field(default_factory=dict)  # IP country -> first seen
    ips: set[str] = field(default_factory=set)
    instruments: set[str] = field(default_factory=set)
    last_credential_change: datetime | None = None
    last_change_of: dict[EventType, datetime] = field(default_factory=dict)  # per credential change type
    settled_spend_usd: list[float] = field(default_factory=list)  # kept sorted for the median
    recent_attempts: deque[_Attempt] = field(default_factory=deque)  # the last 7 days
    failed_logins: deque[datetime] = field(default_factory=deque)  # the last 24 hours
    redeems: deque[datetime] = field(default_factory=deque)  # the last 24 hours
    refunds_and_chargebacks: int = 0
    refund_requests: int = 0
    chargebacks: int = 0

    def forget_before(self, now: datetime) -> None:
        """Drop what has left every window; windows are half-open, (now - length, now)."""
        while self.recent_attempts and self.recent_attempts[0].ts <= now - _WEEK:
            self.recent_attempts.popleft()
        for times in (self.failed_logins, self.redeems):
            while times and times[0] <= now - _DAY:
                times.popleft()

    def median_spend(self) -> float | None:
        spend = self.settled_spend_usd
        if len(spend) < _MIN_HISTORY_FOR_MEDIAN:
            return None
        middle = len(spend) // 2
        return spend[middle] if len(spend) % 2 else (spend[middle - 1] + spend[middle]) / 2


class FeatureTracker:
    """History of one time-ordered pass. Call `features` for an event, then `observe` it."""

    def __init__(self, accounts: Mapping[str, Account]) -> None:
        self._accounts = accounts
        self._histories: dict[str, _AccountHistory] = {}
        self._device_accounts: dict[str, set[str]] = {}
        self._instrument_accounts: dict[str, set[str]] = {}
        self._ip_accounts: dict[str, set[str]] = {}

    def features(self, event: Event) -> Features:
        """Features of `event` from the history observed so far and the event's own fields.

        The rules' features (FEATURE_NAMES) and the trained model's extras (EXTRA_FEATURES).
        """
        history = self._histories.get(event.account_id) or _AccountHistory()
        history.forget_before(event.ts)
        window = [a for a in history.recent_attempts if a.ts > event.ts - _DAY]
        spend = event.type in SPEND_EVENTS
        last_hour = [a for a in window if a.ts > event.ts - _HOUR]
        day_gift_cards = sum(a.gift_card for a in window) + (event.type is EventType.gift_card_purchase)
        day_attempts = len(window) + spend
        day_instruments = {a.instrument_id for a in window if a.instrument_id}
        if spend and event.instrument_id:
            day_instruments.add(event.instrument_id)
        return {
            "purchases_1h": float(len(last_hour)),
            "purchases_24h": float(len(window)),
            "new_device": _newly_seen(history, history.devices, event.device_id, event.ts),
            "new_ip_country": _newly_seen(history, history.countries, event.ip_country, event.ts),
            "mins_since_credential_change": _minutes_between(history.last_credential_change, event.ts),
            "amount_vs_median": _amount_ratio(event, history.median_spend()),
            "gift_card_share_24h": day_gift_cards / day_attempts if day_attempts else 0.0,
            "bin_country_mismatch": float(
                bool(event.bin_country and event.ip_country and event.bin_country != event.ip_country)
            ),
            "device_accounts": _sharing(self._device_accounts, event.device_id, event.account_id),
            "instrument_accounts": _sharing(self._instrument_accounts, event.instrument_id, event.account_id),
            "account_age_days": self._account_age_days(event),
            "prior_refunds_chargebacks": float(history.refunds_and_chargebacks),
            "declines_1h": float(sum(a.declined for a in last_hour)),
            "instruments_24h": float(len(day_instruments)),
        } | self._extra_features(event, history, window)

    def _extra_features(self, event: Event, history: _AccountHistory, day: list[_Attempt]) -> Features:
        week = history.recent_attempts
        spend = event.type in SPEND_EVENTS
        account = self._accounts.get(event.account_id)
        day_attempts = len(day) + spend
        week_attempts = len(week) + spend
        day_currency = sum(a.virtual_currency for a in day) + (spend and event.category == "virtual_currency")
        week_gift_cards = sum(a.gift_card for a in week) + (event.type is EventType.gift_card_purchase)
        settled = len(history.settled_spend_usd)
        return {
            "purchases_10m": float(sum(a.ts > event.ts - _TEN_MINUTES for a in day)),
            "purchases_7d": float(len(week)),
            "declines_24h": float(sum(a.declined for a in day)),
            "spend_usd_24h": round(sum(a.usd for a in day), 2),
            "failed_logins_24h": float(len(history.failed_logins)),
            "device_first_use": _first_use(history.devices, event.device_id),
            "ip_first_use": _first_use(history.ips, event.ip),
            "instrument_first_use": _first_use(history.instruments, event.instrument_id),
            "mins_since_password_reset": _minutes_between(
                history.last_change_of.get(EventType.password_reset), event.ts
            ),
            "mins_since_email_change": _minutes_between(history.last_change_of.get(EventType.email_change), event.ts),
            "mins_since_mfa_change": _minutes_between(history.last_change_of.get(EventType.mfa_change), event.ts),
            "mins_since_last_event": _minutes_between(history.last_seen, event.ts),
            "amount_usd": _usd(event),
            "amount_vs_max": _amount_ratio_to(event, history.settled_spend_usd[-1] if settled else None),
            "virtual_currency_share_24h": day_currency / day_attempts if day_attempts else 0.0,
            "gift_card_share_7d": week_gift_cards / week_attempts if week_attempts else 0.0,
            "prior_refund_requests": float(history.refund_requests),
            "prior_chargebacks": float(history.chargebacks),
            "refund_request_ratio": round(history.refund_requests / settled, 3) if settled else None,
            "redeems_24h": float(len(history.redeems)),
            "account_history_days": _days_between(history.first_seen, event.ts),
            "bin_account_country_mismatch": _differs(event.bin_country, account.country if account else None),
            "ip_account_country_mismatch": _differs(event.ip_country, account.country if account else None),
            "ip_accounts": _sharing(self._ip_accounts, event.ip, event.account_id),
        }

    def observe(self, event: Event) -> None:
        """Add `event` to the history; later events will see it."""
        history = self._histories.setdefault(event.account_id, _AccountHistory())
        if history.first_seen is None:
            history.first_seen = event.ts
        history.last_seen = event.ts
        if event.device_id:
            history.devices.setdefault(event.device_id, event.ts)
            self._device_accounts.setdefault(event.device_id, set()).add(event.account_id)
        if event.ip_country:
            history.countries.setdefault(event.ip_country, event.ts)
        if event.ip:
            history.ips.add(event.ip)
            self._ip_accounts.setdefault(event.ip, set()).add(event.account_id)
        if event.instrument_id:
            history.instruments.add(event.instrument_id)
            self._instrument_accounts.setdefault(event.instrument_id, set()).add(event.account_id)
        if event.type in CREDENTIAL_CHANGES:
            history.last_credential_change = event.ts
            history.last_change_of[event.type] = event.ts
        self._observe_outcome(history, event)

    def _observe_outcome(self, history: _AccountHistory, event: Event) -> None:
        """Refunds, chargebacks, failed logins, redemptions and payment attempts."""
        if event.type in (EventType.refund_request, EventType.chargeback):
            history.refunds_and_chargebacks += 1
        if event.type is EventType.refund_request:
            history.refund_requests += 1
        elif event.type is EventType.chargeback:
            history.chargebacks += 1
        elif event.type is EventType.login and event.status == "failed":
            history.failed_logins.append(event.ts)
        elif event.type is EventType.gift_card_redeem:
            history.redeems.append(event.ts)
        if event.type in SPEND_EVENTS:
            declined = event.status == "declined"
            history.recent_attempts.append(
                _Attempt(
                    event.ts,
                    gift_card=event.type is EventType.gift_card_purchase,
                    virtual_currency=event.category == "virtual_currency",
                    instrument_id=event.instrument_id,
                    declined=declined,
                    usd=_usd(event) or 0.0,
                )
            )
            if not declined and event.amount and event.currency and float(event.amount) > 0:
                bisect.insort(history.settled_spend_usd, usd_value(event.amount, event.currency))

    def _account_age_days(self, event: Event) -> float | None:
        account = self._accounts.get(event.account_id)
        if account is None:
            return None
        return round(max((event.ts - account.created_at).total_seconds(), 0.0) / 86_400, 1)


def _newly_seen(history: _AccountHistory, first_seen: dict[str, datetime], key: str | None, now: datetime) -> float:
    """1 when `key` appeared in the last day on an account already active before it appeared."""
    if not key or history.first_seen is None:
        return 0.0
    since = first_seen.get(key, now)
    return float(since > history.first_seen and now - since <= _DAY)


def _first_use(seen: Container[str], key: str | None) -> float | None:
    return None if not key else float(key not in seen)


def _differs(one: str | None, other: str | None) -> float | None:
    return None if not one or not other else float(one != other)


def _minutes_between(earlier: datetime | None, later: datetime) -> float | None:
    return None if earlier is None else round((later - earlier).total_seconds() / 60, 1)


def _days_between(earlier: datetime | None, later: datetime) -> float | None:
    return None if earlier is None else round((later - earlier).total_seconds() / 86_400, 1)


def _usd(event: Event) -> float | None:
    if not event.amount or not event.currency:
        return None
    return round(usd_value(event.amount, event.currency), 2)


def _amount_ratio(event: Event, median_usd: float | None) -> float | None:
    return _amount_ratio_to(event, median_usd or TYPICAL_SPEND_USD)


def _amount_ratio_to(event: Event, reference_usd: float | None) -> float | None:
    if not event.amount or not event.currency or not reference_usd:
        return None
    return round(usd_value(event.amount, event.currency) / reference_usd, 2)


def _sharing(index: dict[str, set[str]], key: str | None, account_id: str) -> float | None:
    if not key:
        return None
    seen = index.get(key, set())
    return float(len(seen) + (account_id not in seen))


def event_features(events: Sequence[Event], accounts: Mapping[str, Account]) -> Iterator[tuple[Event, Features]]:
    """(event, features) for every scored event, in (ts, event_id) order, in one pass."""
    tracker = FeatureTracker(accounts)
    for event in sorted(events, key=lambda e: (e.ts, e.event_id)):
        if event.type in SCORED_EVENTS:
            yield event, tracker.features(event)
        tracker.observe(event)


def score_features(features: Features) -> tuple[float, list[Reason]]:
    """Probability of fraud and the top reasons, from the rules' additive contributions."""
    contributions: list[tuple[float, int, Rule, float]] = []
    logit = BIAS
    for order, rule in enumerate(RULES):
        value = features.get(rule.feature)
        if value is None:
            continue
        contribution = rule.weight * rule.signal(value)
        logit += contribution
        if contribution != 0:
            contributions.append((contribution, order, rule, value))
    contributions.sort(key=lambda item: (-item[0], item[1]))
    reasons = [
        Reason(feature=rule.feature, value=_reported(value), contribution=round(contribution, 4))
        for contribution, _, rule, value in contributions[:MAX_REASONS]
    ]
    return round(1 / (1 + math.exp(-logit)), 4), reasons


def _reported(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def score_events(events: Sequence[Event], accounts: Mapping[str, Account]) -> list[Score]:
    """Scores of every money-moving event, in (ts, event_id) order."""
    scores: list[Score] = []
    for event, features in event_features(events, accounts):
        probability, reasons = score_features(features)
        scores.append(Score(event_id=event.event_id, model_version=SCORER_VERSION, score=probability, reasons=reasons))
    return scores
