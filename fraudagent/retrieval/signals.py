"""Key signals: one small vocabulary of fraud indicators shared by past cases and open cases.

A past case is text an analyst wrote; an open case is events. To compare the
two, both are reduced to the same signal names: a past case's signals are read
from its narrative with a lexicon of analyst phrasing, an open case's are
computed from its events. The names go into the lexical index as single tokens
(`sig_new_device`), and their readable phrases into the embedded text, so both
halves of hybrid search see the same structure.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from fraudagent.core.models import CREDENTIAL_CHANGES, SPEND_EVENTS, Account, Case, Event, EventType, TriggerKind

SIGNAL_TOKEN_PREFIX = "sig_"

# The incident is what happened shortly before the case opened (for a chargeback: shortly before the disputed
# purchase, which can be weeks earlier); history signals
# (chargebacks, refund patterns, tenure) look at the whole window the caller read.
INCIDENT_WINDOW = timedelta(days=3)
NEW_ACCOUNT_AGE = timedelta(days=7)
LONG_TENURE_AGE = timedelta(days=365)
USUAL_DEVICE_AGE = timedelta(days=30)
DUPLICATE_CHARGE_GAP = timedelta(seconds=120)
SMALL_CHARGE = Decimal(2)  # US dollars, about
BURST = timedelta(minutes=15)
BURST_ATTEMPTS = 6
# Rough US-dollar value of a unit, only to band amounts (a small test charge, a high-value purchase) across currencies.
USD_PER_UNIT = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.1"),
    "GBP": Decimal("1.3"),
    "CAD": Decimal("0.73"),
    "AUD": Decimal("0.66"),
    "SEK": Decimal("0.095"),
    "PLN": Decimal("0.25"),
    "BRL": Decimal("0.19"),
    "MXN": Decimal("0.055"),
    "JPY": Decimal("0.0067"),
    "CHF": Decimal("1.15"),
    "NOK": Decimal("0.095"),
    "DKK": Decimal("0.15"),
    "NZD": Decimal("0.6"),
    "INR": Decimal("0.012"),
    "KRW": Decimal("0.00072"),
}


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    phrase: str  # how it reads in an embedded text
    narrative: re.Pattern[str]  # how analysts write it


def _lexicon(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


SIGNALS: tuple[Signal, ...] = (
    Signal(
        "credential_change",
        "credential change (password, email or MFA)",
        _lexicon(r"password reset|pw reset|reset the password|email change|email chg|\bmfa\b|credential|\breset\b"),
    ),
    Signal("failed_logins", "failed logins", _lexicon(r"failed (logins?|password attempts)")),
    Signal(
        "new_device",
        "new device",
        _lexicon(
            r"never seen|unseen|unfamiliar|not seen|seen only once"
            r"|new (console|device|pc|phone|laptop|tablet|iphone|android|windows|desktop)"
        ),
    ),
    Signal(
        "usual_device",
        "usual device and home network",
        _lexicon(r"\busual\b|as always|home ip|home network|same network|own devices"),
    ),
    Signal(
        "foreign_ip",
        "login from another country",
        _lexicon(
            r"\bip in\b|connecting from|signed in from|logins? (came )?from|\blogin (?-i:[A-Z]{2})\b"
            r"|\b(?-i:[A-Z]{2}) ip\b|\bip (?-i:[A-Z]{2})\b|bin-ip|ip"
            r" country|outside|abroad|travel|holiday|(came|played|activity) from"
        ),
    ),
    Signal(
        "bin_mismatch",
        "card issued in a country the account never connected from",
        _lexicon(r"\bbin\b(?! countries)|issued in|mismatch|never matched"),
    ),
    Signal("many_bin_countries", "cards issued in many countries", _lexicon(r"(bin|issuing|issuer) countries")),
    Signal("gift_cards", "gift card purchases", _lexicon(r"gift ?cards?|\bgcs?\b|gift spree")),
    Signal("gift_card_redeem", "gift cards redeemed", _lexicon(r"redeem|redemption|moved between")),
    Signal("virtual_currency", "virtual currency purchases", _lexicon(r"currency|\bvc\b")),
    Signal("wallet_topups", "wallet top-ups", _lexicon(r"top-?ups?|topped up")),
    Signal("declines", "declined payments", _lexicon(r"declin")),
    Signal(
        "many_cards",
        "many payment cards",
        _lexicon(r"\b\d+ (different |shared )?cards\b|cards (were )?added|different cards|bin countries"),
    ),
    Signal("small_charges", "small test charges", _lexicon(r"\bsmall\b|0\.99|\btest")),
    Signal("rapid_attempts", "a burst of payment attempts", _lexicon(r"(?<!password )\battempts\b|were tried")),
    Signal(
        "shared_gift_cards",
        "gift cards bought where linked accounts share the device",
        _lexicon(
            r"redeemed on \d+ other|other accounts redeemed|redeemed on \d+ accts|redeemers used the same"
            r"|redemption came from the buyer"
        ),
    ),
    Signal(
        "new_account",
        "newly created account",
        _lexicon(r"created|sign-?up|\bdays? old|\d+d old|opened \d+ days|new accounts?|newcomer|new customer"),
    ),
    Signal(
        "long_tenure",
        "long-standing account",
        _lexicon(r"\d+[- ]?years?\b|\b\d+y\b|years of|clean history|long-standing|with us"),
    ),
    Signal("chargeback", "chargeback", _lexicon(r"chargeback|charged back|\bcbs?\b|disput")),
    Signal("refunds", "refund requests", _lexicon(r"refund")),
    Signal(
        "linked_accounts",
        "accounts linked by shared devices or cards",
        _lexicon(
            r"\bshar|other accounts|\baccts\b|\d+ accounts|\bring\b|household|linked|redeemers" r"|across (all|accts)"
        ),
    ),
    Signal(
        "promo", "promotions or free trials", _lexicon(r"promo|trial|discount|first-purchase|first50|coupon|voucher")
    ),
    Signal(
        "continued_play",
        "kept playing after the purchase",
        _lexicon(
            r"kept playing|sessions|logged in \d+ more times|logins\)|in use within" r"|downloaded and used|used within"
        ),
    ),
    Signal(
        "customer_contact",
        "customer contacted support",
        _lexicon(
            r"customer (wrote|replied|confirmed|said|asking|contacted)|owner (contacted|reported)"
            r"|contacted support|wrote in|customer report|report of an unknown charge"
        ),
    ),
    Signal("duplicate_charge", "duplicate charge", _lexicon(r"twice|duplicate|dupe|identical charges|double capture")),
)
BY_NAME = {s.name: s for s in SIGNALS}


def signal_tokens(names: Iterable[str]) -> list[str]:
    """Signal names as lexical tokens that no narrative word can collide with."""
    return [SIGNAL_TOKEN_PREFIX + n for n in sorted(set(names))]


def signal_phrases(names: Iterable[str]) -> str:
    return "; ".join(BY_NAME[n].phrase for n in sorted(set(names)) if n in BY_NAME)


def signals_from_text(text: str) -> set[str]:
    """The signals an analyst's write-up mentions."""
    return {s.name for s in SIGNALS if s.narrative.search(text)}


def signals_from_events(
    *, case: Case, account: Account | None, events: Sequence[Event], linked_account_ids: Iterable[str] = ()
) -> set[str]:
    """The signals an open case's events show: its own account's, plus those of accounts in its bundle."""
    own = sorted((e for e in events if e.account_id == case.account_id), key=lambda e: e.ts)
    opened = incident_start(case, own)

    def in_incident(ts: datetime) -> bool:  # around the incident, and just before the case opened
        near_opening = case.opened_at - INCIDENT_WINDOW <= ts <= case.opened_at + timedelta(days=1)
        return near_opening or opened - INCIDENT_WINDOW <= ts <= opened + INCIDENT_WINDOW

    incident_all = [e for e in events if in_incident(e.ts)]
    incident = [e for e in incident_all if e.account_id == case.account_id]
    found: set[str] = set()
    found |= _identity_signals(own, incident, account, opened)
    found |= _payment_signals(own, incident, incident_all)
    found |= _history_signals(own, case)
    if set(linked_account_ids) - {case.account_id} or _shares_keys(events, case.account_id):
        found.add("linked_accounts")
    if _gift_cards_on_shared_device(events, incident_all):
        found.add("shared_gift_cards")
    return found


def incident_start(case: Case, own: Sequence[Event]) -> datetime:
    """When the incident happened: the case's opening, or for a case opened on a chargeback the earliest
    purchase a chargeback of the account disputes (same item and instrument, bought before it)."""
    if case.trigger.kind is not TriggerKind.chargeback:
        return case.opened_at
    disputed = [
        e.ts
        for cb in own
        if cb.type is EventType.chargeback and cb.ts <= case.opened_at + timedelta(days=1)
        for e in own
        if e.type in SPEND_EVENTS and e.ts < cb.ts and (e.sku, e.instrument_id) == (cb.sku, cb.instrument_id)
    ]
    return min(disputed, default=case.opened_at)


def _identity_signals(own: list[Event], incident: list[Event], account: Account | None, opened: datetime) -> set[str]:
    found = set()
    if any(e.type in CREDENTIAL_CHANGES for e in incident):
        found.add("credential_change")
    if sum(1 for e in incident if e.type is EventType.login and e.status == "failed") >= 2:
        found.add("failed_logins")
    first_use = _first_use(own, "device_id")
    incident_devices = {e.device_id for e in incident if e.device_id}
    established = any(e.ts < opened - INCIDENT_WINDOW for e in own)
    if established and any(first_use[d] >= opened - INCIDENT_WINDOW for d in incident_devices):
        found.add("new_device")
    if any(
        first_use[e.device_id] <= e.ts - USUAL_DEVICE_AGE for e in incident if e.type in SPEND_EVENTS and e.device_id
    ):
        found.add("usual_device")
    earlier = [e for e in own if e.ts < opened - INCIDENT_WINDOW]
    known = {e.device_id for e in earlier if e.device_id} | {e.ip for e in earlier if e.ip}
    used = [e for e in incident if e.device_id or e.ip]
    if earlier and used and all(e.device_id in known or e.ip in known for e in used):
        found.add("usual_device")  # nothing new: every incident event came from a device or network seen before
    if account is not None:
        if any(e.ip_country and e.ip_country != account.country for e in incident):
            found.add("foreign_ip")
        age = opened - account.created_at
        if age < NEW_ACCOUNT_AGE:
            found.add("new_account")
        elif age > LONG_TENURE_AGE:
            found.add("long_tenure")
    return found


def _payment_signals(own: list[Event], incident: list[Event], incident_all: list[Event]) -> set[str]:
    found = set()
    spend = [e for e in incident if e.type in SPEND_EVENTS]
    connected_from = {e.ip_country for e in own if e.ip_country}
    if any(e.bin_country and e.ip_country and e.bin_country not in connected_from for e in spend):
        found.add("bin_mismatch")  # a card from a country the account was never used from (a traveller's is)
    if len({e.bin_country for e in spend if e.instrument_type == "card" and e.bin_country}) >= 3:
        found.add("many_bin_countries")
    types = Counter(e.type for e in incident_all)
    if types[EventType.gift_card_purchase] >= 2:
        found.add("gift_cards")
    if types[EventType.gift_card_redeem]:
        found.add("gift_card_redeem")
    if types[EventType.wallet_topup] >= 2:
        found.add("wallet_topups")
    if sum(1 for e in spend if e.category == "virtual_currency") >= 2:
        found.add("virtual_currency")
    if any(e.status == "declined" for e in spend):
        found.add("declines")
    if len({e.instrument_id for e in spend if e.instrument_type == "card" and e.instrument_id}) >= 3:
        found.add("many_cards")
    values = [v for e in spend if (v := _usd(e)) is not None]
    if sum(1 for v in values if v < SMALL_CHARGE) >= 3:
        found.add("small_charges")
    if _burst(spend):
        found.add("rapid_attempts")
    if any(_is_promotional(e) for e in incident_all):
        found.add("promo")
    if _has_duplicate_charge([e for e in own if e.type in SPEND_EVENTS]):
        found.add("duplicate_charge")
    return found


def _usd(event: Event) -> Decimal | None:
    rate = USD_PER_UNIT.get(event.currency or "USD")
    return None if event.amount is None or rate is None else Decimal(event.amount) * rate


def _burst(spend: list[Event]) -> bool:
    """BURST_ATTEMPTS payment attempts (settled or declined) within BURST."""
    times = sorted(e.ts for e in spend)
    return any(later - earlier <= BURST for earlier, later in zip(times, times[BURST_ATTEMPTS - 1 :]))


def _history_signals(own: list[Event], case: Case) -> set[str]:
    found = set()
    chargebacks = [e for e in own if e.type is EventType.chargeback]
    if chargebacks or case.trigger.kind is TriggerKind.chargeback:
        found.add("chargeback")
    if any(_logins_after_disputed_purchase(own, cb) >= 3 for cb in chargebacks):
        found.add("continued_play")
    if sum(1 for e in own if e.type is EventType.refund_request) >= 2:
        found.add("refunds")
    if case.trigger.kind is TriggerKind.customer_report or any(e.type is EventType.support_contact for e in own):
        found.add("customer_contact")
    return found


def _first_use(events: list[Event], attr: str) -> dict[str, datetime]:
    first: dict[str, datetime] = {}
    for e in events:  # oldest first
        key = getattr(e, attr)
        if key and key not in first:
            first[key] = e.ts
    return first


def _shares_keys(events: Sequence[Event], account_id: str) -> bool:
    """Another account in the evidence used one of this account's devices or cards."""
    users: dict[str, set[str]] = {}
    for e in events:
        for key in (e.device_id, e.instrument_id):
            if key:
                users.setdefault(key, set()).add(e.account_id)
    return any(account_id in ids and len(ids) > 1 for ids in users.values())


def _gift_cards_on_shared_device(events: Sequence[Event], incident: list[Event]) -> bool:
    """A gift card bought in the incident on a device that other accounts in the evidence also use."""
    users: dict[str, set[str]] = {}
    for e in events:
        if e.device_id:
            users.setdefault(e.device_id, set()).add(e.account_id)
    return any(e.type is EventType.gift_card_purchase and e.device_id and len(users[e.device_id]) > 1 for e in incident)


def _is_promotional(event: Event) -> bool:
    sku = (event.sku or "").upper()
    free_subscription = event.type is EventType.subscription and event.amount is not None and Decimal(event.amount) == 0
    return free_subscription or any(marker in sku for marker in ("TRIAL", "PROMO", "FIRST"))


def _has_duplicate_charge(spend: list[Event]) -> bool:
    for earlier, later in pairwise(spend):
        same = (earlier.sku, earlier.amount, earlier.instrument_id) == (later.sku, later.amount, later.instrument_id)
        same = same and earlier.status == later.status == "settled"
        if same and later.ts - earlier.ts <= DUPLICATE_CHARGE_GAP:
            return True
    return False


def _logins_after_disputed_purchase(own: list[Event], chargeback: Event) -> int:
    """Successful logins between the charged-back purchase and the chargeback: the buyer kept using it."""
    purchases = [e for e in own if e.type in SPEND_EVENTS and e.sku == chargeback.sku and e.ts < chargeback.ts]
    if not purchases:
        return 0
    bought = purchases[-1]
    return sum(
        1
        for e in own
        if e.type is EventType.login
        and e.status == "success"
        and bought.ts < e.ts < chargeback.ts
        and (bought.device_id is None or e.device_id == bought.device_id)
    )
