"""Everyday behaviour of a customer: play sessions, purchases, renewals, refunds, support.

This is the legitimate background every storyline is written over. Rates are
per account and per day, so a world of any length keeps the same texture.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from random import Random

from fraudagent.core.models import EventType
from fraudagent.sim.catalog import CURRENCY_PACKS, DLC, GAMES, SUBSCRIPTIONS, TOP_UPS, Market, Product
from fraudagent.sim.entities import Access, DeviceKind, Instrument, Profile, public_ip
from fraudagent.sim.texts import refund_reason, support_chat
from fraudagent.sim.timeline import EventDraft, Timeline, product_amount

# Relative activity per local hour: quiet nights, busy evenings.
_HOUR_WEIGHTS = (2, 1, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1, 1.2, 1.4, 1.6, 2, 2, 2, 2.2, 2.6, 3.2, 4, 4.6, 5, 4.8, 4, 3)
_HOURS = tuple(range(24))

_BUY_CHANCE = 0.16  # a session includes a purchase
_SALE_BUY_BOOST = 2.0
_SPREE_CHANCE, _SALE_SPREE_CHANCE = 0.12, 0.35  # a purchase session buys several items
_DECLINE_CHANCE = 0.03
_REFUND_REQUEST_CHANCE = 0.025
_REFUND_APPROVAL_CHANCE = 0.75
_MOBILE_NETWORK_CHANCE = 0.4  # phone sessions on the carrier network rather than home wifi
_RENEWAL_DECLINE_CHANCE = 0.02
_PER_90_DAYS = {  # expected occurrences per 90 days of account life
    EventType.password_reset: 0.05,
    EventType.email_change: 0.01,
    EventType.mfa_change: 0.02,
    EventType.support_contact: 0.12,
}
_SUPPORT_TEXT_CHANCE = 0.8
_REFUND_TEXT_CHANCE = 0.6


def local_time(rng: Random, day: datetime, market: Market) -> datetime:
    """A moment on `day` (UTC midnight) drawn from the market's local daily rhythm."""
    hour = rng.choices(_HOURS, weights=_HOUR_WEIGHTS)[0]
    return day + timedelta(hours=hour - market.utc_offset, minutes=rng.randrange(60), seconds=rng.randrange(60))


def in_sale(ts: datetime, sales: list[tuple[datetime, datetime]]) -> bool:
    return any(opens <= ts < closes for opens, closes in sales)


def session_access(rng: Random, profile: Profile, ts: datetime) -> Access:
    """The device and network of an ordinary session: home, or the phone's carrier."""
    access = profile.home_access(rng, ts)
    if access.device.kind is DeviceKind.phone and rng.random() < _MOBILE_NETWORK_CHANCE:
        return Access(access.device, public_ip(rng, profile.home_country), access.ip_country)
    return access


def pick_item(rng: Random) -> tuple[EventType, Product]:
    """What an ordinary customer buys: games, add-ons, currency, now and then a top-up."""
    roll = rng.random()
    if roll < 0.35:
        return EventType.purchase, rng.choice(GAMES)
    if roll < 0.60:
        return EventType.purchase, rng.choice(DLC)
    if roll < 0.92:
        return EventType.purchase, rng.choices(CURRENCY_PACKS, weights=(4, 5, 3, 1.5, 0.5))[0]
    return EventType.wallet_topup, rng.choices(TOP_UPS, weights=(2, 4, 3, 1.5, 0.5))[0]


def everyday_activity(tl: Timeline, rng: Random, profile: Profile, sales: list[tuple[datetime, datetime]]) -> None:
    """The account's ordinary life from sign-up (or the window start) to the window end."""
    begin = max(tl.start, profile.account.created_at)
    if begin >= tl.end:
        return
    _Routine(tl, rng, profile, sales, begin).run()


class _Routine:
    """One account's background activity; keeps its store balance to pay from it."""

    def __init__(
        self, tl: Timeline, rng: Random, profile: Profile, sales: list[tuple[datetime, datetime]], begin: datetime
    ) -> None:
        self.tl, self.rng, self.profile, self.sales, self.begin = tl, rng, profile, sales, begin
        self.balance = 0.0  # in the account's currency

    def run(self) -> None:
        for ts in self._session_starts():
            self._session(ts)
        if self.profile.account.tier in SUBSCRIPTIONS:
            self._renewals()
        self._upkeep()

    def _moments(self, per_day: float) -> list[datetime]:
        """Poisson-distributed days in the account's life, each at a local-time moment."""
        span = (self.tl.end - self.begin).total_seconds() / 86_400
        moments: list[datetime] = []
        elapsed = self.rng.expovariate(per_day) if per_day > 0 else span
        while elapsed < span:
            day = (self.begin + timedelta(days=elapsed)).replace(hour=0, minute=0, second=0, microsecond=0)
            ts = local_time(self.rng, day, self.profile.market)
            if self.begin <= ts < self.tl.end - timedelta(hours=3):
                moments.append(ts)
            elapsed += self.rng.expovariate(per_day)
        return moments

    def _session_starts(self) -> list[datetime]:
        return self._moments(self.profile.sessions_per_day)

    def _session(self, ts: datetime) -> None:
        rng, profile = self.rng, self.profile
        access = session_access(rng, profile, ts)
        self.tl.login(profile.account_id, ts, access)
        on_sale = in_sale(ts, self.sales)
        if rng.random() >= _BUY_CHANCE * (_SALE_BUY_BOOST if on_sale else 1.0):
            return
        items = rng.randint(2, 4) if rng.random() < (_SALE_SPREE_CHANCE if on_sale else _SPREE_CHANCE) else 1
        moment = ts + timedelta(minutes=rng.randint(2, 40))
        for _ in range(items):
            moment = self._buy(moment, access) + timedelta(minutes=rng.randint(1, 10), seconds=rng.randrange(60))

    def _buy(self, ts: datetime, access: Access) -> datetime:
        """One purchase (retrying after a decline); returns when the customer was done."""
        rng, profile = self.rng, self.profile
        event_type, product = pick_item(rng)
        instrument = self._payment_for(product, event_type)
        if instrument is not None and rng.random() < _DECLINE_CHANCE:
            self.tl.charge(
                profile.account_id, ts, event_type, product, profile.currency, access, instrument, status="declined"
            )
            ts += timedelta(minutes=rng.randint(1, 3), seconds=rng.randrange(60))
            instrument = rng.choice(profile.instruments)
        draft = self.tl.charge(profile.account_id, ts, event_type, product, profile.currency, access, instrument)
        self._settle_balance(draft, event_type)
        if event_type is EventType.purchase and rng.random() < _REFUND_REQUEST_CHANCE:
            self._refund(draft, access)
        return ts

    def _payment_for(self, product: Product, event_type: EventType) -> Instrument | None:
        """Store balance when it covers the price, else the default card or another instrument."""
        price = float(product_amount(product, self.profile.currency))
        if event_type is EventType.purchase and self.balance >= price and self.rng.random() < 0.7:
            return None
        if self.rng.random() < 0.8:
            return self.profile.card()
        return self.rng.choice(self.profile.instruments)

    def _settle_balance(self, draft: EventDraft, event_type: EventType) -> None:
        amount = float(draft.amount or 0)
        if event_type is EventType.wallet_topup:
            self.balance += amount
        elif draft.instrument_id is None:
            self.balance -= amount

    def _refund(self, purchase: EventDraft, access: Access) -> None:
        rng = self.rng
        asked = purchase.ts + timedelta(hours=rng.uniform(1, 72))
        if asked >= self.tl.end:
            return
        approved = rng.random() < _REFUND_APPROVAL_CHANCE
        text = refund_reason(rng) if rng.random() < _REFUND_TEXT_CHANCE else None
        self.tl.refund_request(purchase, asked, access, status="approved" if approved else "denied", text=text)
        paid = asked + timedelta(hours=rng.uniform(1, 48))
        if approved and paid < self.tl.end:
            self.tl.refund(purchase, paid)

    def _renewals(self) -> None:
        """Monthly renewal on the sign-up day of month, charged early in the UTC morning."""
        rng, profile = self.rng, self.profile
        product = SUBSCRIPTIONS[profile.account.tier or ""]
        billing_day = min(profile.account.created_at.day, 28)
        access = profile.home_access(rng, self.begin)
        month = self.begin.replace(
            day=billing_day, hour=rng.randint(5, 9), minute=rng.randrange(60), second=0, microsecond=0
        )
        while month < self.tl.end:
            if month >= self.begin:
                self._renew(month, product, access)
            month = _next_month(month)

    def _renew(self, ts: datetime, product: Product, access: Access) -> None:
        profile = self.profile
        instrument = profile.card()
        if self.rng.random() < _RENEWAL_DECLINE_CHANCE:
            self.tl.charge(
                profile.account_id,
                ts,
                EventType.subscription,
                product,
                profile.currency,
                access,
                instrument,
                status="declined",
            )
            ts += timedelta(days=1)
            if ts >= self.tl.end:
                return
        self.tl.charge(profile.account_id, ts, EventType.subscription, product, profile.currency, access, instrument)

    def _upkeep(self) -> None:
        """Credential changes and support contacts a normal account has now and then."""
        for event_type, per_90_days in _PER_90_DAYS.items():
            for ts in self._moments(per_90_days / 90):
                access = session_access(self.rng, self.profile, ts)
                if event_type is EventType.support_contact:
                    text = support_chat(self.rng) if self.rng.random() < _SUPPORT_TEXT_CHANCE else None
                    self.tl.support(self.profile.account_id, ts, access, text=text)
                else:
                    self.tl.login(self.profile.account_id, ts, access)
                    changed = ts + timedelta(minutes=self.rng.randint(1, 5), seconds=self.rng.randrange(60))
                    self.tl.credential_change(self.profile.account_id, changed, event_type, access)


def _next_month(ts: datetime) -> datetime:
    return ts.replace(year=ts.year + 1, month=1) if ts.month == 12 else ts.replace(month=ts.month + 1)
