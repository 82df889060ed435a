"""Customers of the store: accounts with the devices, networks and instruments they use."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from random import Random

from fraudagent.core.models import Account
from fraudagent.sim.catalog import DISPOSABLE_EMAIL_DOMAINS, MARKETS, Market
from fraudagent.sim.entities import Device, DeviceKind, IdMint, Instrument, Profile, public_ip
from fraudagent.sim.texts import gamertag

_TIERS = ("free", "plus", "premium")
_TIER_WEIGHTS = (0.55, 0.30, 0.15)
_MAX_ACCOUNT_AGE = timedelta(days=11 * 365)  # the store opened its accounts eleven years ago
_MEAN_SESSIONS_PER_DAY = 0.2


class ProfileFactory:
    """Makes customer profiles with ids from the world's mint."""

    def __init__(self, rng: Random, mint: IdMint) -> None:
        self._rng = rng
        self._mint = mint

    def market(self) -> Market:
        return self._rng.choices(MARKETS, weights=[m.weight for m in MARKETS])[0]

    def established_since(self, before: datetime, *, min_days: int = 30) -> datetime:
        """A sign-up date well before `before`: most accounts are a few years old."""
        days = min_days + self._rng.expovariate(1 / 700)
        age = timedelta(seconds=int(days * 86_400))
        return before - min(age, _MAX_ACCOUNT_AGE)

    def customer(
        self,
        account_id: str,
        created_at: datetime,
        *,
        market: Market | None = None,
        disposable_email: bool = False,
        tier: str | None = None,
        sessions_per_day: float | None = None,
    ) -> Profile:
        """An ordinary customer: a console or two, a home network, a card or PayPal."""
        rng = self._rng
        market = market or self.market()
        account = Account(
            account_id=account_id,
            created_at=created_at.replace(microsecond=0),
            country=market.country,
            email_domain=rng.choice(DISPOSABLE_EMAIL_DOMAINS if disposable_email else market.email_domains),
            tier=tier or rng.choices(_TIERS, weights=_TIER_WEIGHTS)[0],
            display_name=gamertag(rng),
        )
        return Profile(
            account=account,
            market=market,
            devices=self._household_devices(),
            home_ips=[public_ip(rng, market.country) for _ in range(rng.choice((1, 1, 2)))],
            home_country=market.country,
            instruments=self._wallet(market.country),
            sessions_per_day=sessions_per_day if sessions_per_day is not None else self._sessions_per_day(),
        )

    def _household_devices(self) -> list[Device]:
        rng = self._rng
        devices: list[Device] = []
        if rng.random() < 0.85:
            devices.append(self._mint.device(DeviceKind.console))
        if rng.random() < 0.35 or not devices:
            devices.append(self._mint.device(DeviceKind.pc))
        if rng.random() < 0.5:
            devices.append(self._mint.device(DeviceKind.phone))
        return devices

    def _wallet(self, country: str) -> list[Instrument]:
        rng = self._rng
        instruments: list[Instrument] = []
        if rng.random() < 0.8:
            instruments.append(self._mint.card(country))
        if rng.random() < 0.25 or not instruments:
            instruments.append(self._mint.instrument("paypal", None))
        if rng.random() < 0.1:
            instruments.append(self._mint.instrument("wallet", None))
        return instruments

    def _sessions_per_day(self) -> float:
        # Log-normal engagement: many casual players, a long tail of daily ones.
        mean_log = math.log(_MEAN_SESSIONS_PER_DAY) - 0.5 * 0.7**2
        return min(1.5, self._rng.lognormvariate(mean_log, 0.7))
