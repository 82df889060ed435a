"""Reason codes in the words an analyst reads: `new_device=1` -> "new device".

A `Reason` keeps its snake_case feature name and its raw value (that is what
is stored and compared); `describe_reason` turns one into a short phrase for
people. It lives in core because both sides need it: the scorers that emit
reasons and whatever shows them (the agent's evidence, the console).
"""

from __future__ import annotations

from collections.abc import Callable

from fraudagent.core.models import Reason

Describe = Callable[[float], str]


def _count(noun: str, tail: str = "", plural: str | None = None) -> Describe:
    """ "1 failed login in the previous 24 hours", "3 failed logins in the previous 24 hours"."""

    def describe(value: float) -> str:
        n = int(value)
        return f"{n} {noun if n == 1 else plural or noun + 's'}{' ' + tail if tail else ''}"

    return describe


def _shared(thing: str) -> Describe:
    def describe(value: float) -> str:
        return f"{thing} used by this account only" if value <= 1 else f"{thing} shared by {value:.0f} accounts"

    return describe


def _flag(when_set: str, when_clear: str) -> Describe:
    return lambda value: when_set if value else when_clear


def _elapsed(after: str) -> Describe:
    """Minutes since something, in the unit a person would use."""

    def describe(minutes: float) -> str:
        if minutes < 120:
            span = f"{minutes:.0f} minutes"
        elif minutes < 2 * 1440:
            span = f"{minutes / 60:.0f} hours"
        else:
            span = f"{minutes / 1440:.0f} days"
        return f"{span} after {after}"

    return describe


def _share(what: str) -> Describe:
    return lambda value: f"{value:.0%} of {what}"


def _ratio(of: str) -> Describe:
    return lambda value: f"amount {value:.1f}x {of}"


def _age(template: str) -> Describe:
    """An age in days, e.g. "account 12 days old", "account under a day old"."""

    def describe(days: float) -> str:
        if days < 1:
            return template.format(age="under a day")
        return template.format(age="1 day" if round(days) == 1 else f"{days:.0f} days")

    return describe


_DESCRIPTIONS: dict[str, Describe] = {
    "purchases_10m": _count("payment attempt", "in the previous 10 minutes"),
    "purchases_1h": _count("payment attempt", "in the previous hour"),
    "purchases_24h": _count("payment attempt", "in the previous 24 hours"),
    "purchases_7d": _count("payment attempt", "in the previous 7 days"),
    "declines_1h": _count("declined payment", "in the previous hour"),
    "declines_24h": _count("declined payment", "in the previous 24 hours"),
    "spend_usd_24h": lambda value: f"${value:,.2f} attempted in the previous 24 hours",
    "failed_logins_24h": _count("failed login", "in the previous 24 hours"),
    "new_device": _flag("new device (first seen in the last day)", "known device"),
    "new_ip_country": _flag("new country (first seen in the last day)", "known country"),
    "device_first_use": _flag("first use of this device", "device used before"),
    "ip_first_use": _flag("first use of this IP address", "IP address used before"),
    "instrument_first_use": _flag("first use of this payment instrument", "payment instrument used before"),
    "mins_since_credential_change": _elapsed("a credential change"),
    "mins_since_password_reset": _elapsed("a password reset"),
    "mins_since_email_change": _elapsed("an email change"),
    "mins_since_mfa_change": _elapsed("an MFA change"),
    "mins_since_last_event": _elapsed("the account's previous event"),
    "amount_usd": lambda value: f"amount ${value:,.2f}",
    "amount_vs_median": _ratio("the account's usual spend"),
    "amount_vs_max": _ratio("the account's largest earlier spend"),
    "gift_card_share_24h": _share("the last day's payments on gift cards"),
    "gift_card_share_7d": _share("the last week's payments on gift cards"),
    "virtual_currency_share_24h": _share("the last day's payments on virtual currency"),
    "bin_country_mismatch": _flag("card issued in another country than the IP's", "card country matches the IP's"),
    "bin_account_country_mismatch": _flag(
        "card issued in another country than the account's", "card country matches the account's"
    ),
    "ip_account_country_mismatch": _flag("connecting from outside the account's country", "connecting from home"),
    "device_accounts": _shared("device"),
    "instrument_accounts": _shared("payment instrument"),
    "ip_accounts": _shared("IP address"),
    "instruments_24h": _count("payment instrument", "in 24 hours"),
    "account_age_days": _age("account {age} old"),
    "account_history_days": _age("first activity {age} ago"),
    "prior_refunds_chargebacks": _count(
        "earlier refund request or chargeback", plural="earlier refund requests and chargebacks"
    ),
    "prior_refund_requests": _count("earlier refund request"),
    "prior_chargebacks": _count("earlier chargeback"),
    "refund_request_ratio": lambda value: f"{value:.0%} of earlier payments asked back",
    "redeems_24h": _count("gift card", "redeemed in the previous 24 hours"),
}

_ABSENT: dict[str, str] = {
    "mins_since_credential_change": "no credential change on record",
    "mins_since_password_reset": "no password reset on record",
    "mins_since_email_change": "no email change on record",
    "mins_since_mfa_change": "no MFA change on record",
    "mins_since_last_event": "first event of the account",
    "amount_vs_median": "no amount",
    "amount_vs_max": "no earlier settled spend",
    "refund_request_ratio": "no earlier settled payment",
    "account_history_days": "first event of the account",
}

_CATEGORIES: dict[str, str] = {
    "event_type": "event: {value}",
    "item_category": "item: {value}",
    "payment_type": "paid by {value}",
}
"""Features whose value is a category name rather than a number."""


def describe_reason(reason: Reason) -> str:
    """The reason as a short phrase, e.g. "19 minutes after a password reset"."""
    return describe_feature(reason.feature, reason.value)


def describe_feature(feature: str, value: float | int | str | None) -> str:
    if feature in _CATEGORIES:
        return _CATEGORIES[feature].format(value=str(value).replace("_", " ") if value is not None else "unknown")
    if value is None or isinstance(value, str):
        return _ABSENT.get(feature, f"{feature.replace('_', ' ')}: {value or 'unknown'}")
    describe = _DESCRIPTIONS.get(feature)
    return describe(float(value)) if describe else f"{feature.replace('_', ' ')} {value}"


def described_features() -> frozenset[str]:
    """Every feature with its own phrase (others fall back to their name and value)."""
    return frozenset(_DESCRIPTIONS) | frozenset(_CATEGORIES)
