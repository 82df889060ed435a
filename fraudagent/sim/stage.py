"""What every storyline is written with, and what a storyline hands back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random

from fraudagent.core.models import Typology
from fraudagent.sim.catalog import Market
from fraudagent.sim.entities import IdMint, Profile
from fraudagent.sim.population import ProfileFactory
from fraudagent.sim.timeline import EventDraft, Timeline


@dataclass(slots=True)
class Storyline:
    """One scripted episode: who took part, what it really was, and what proves it."""

    typology: Typology  # legitimate for look-alikes of fraud
    onset: datetime
    evidence: dict[str, list[EventDraft]]  # per member account: the events a report must cite
    profiles: list[Profile]
    ambiguous: bool = False  # the evidence cannot settle it either way
    reports: list[EventDraft] = field(default_factory=list)  # support contacts that are customer reports

    @property
    def members(self) -> list[str]:
        return [p.account_id for p in self.profiles]


@dataclass(slots=True)
class Stage:
    """The shared means of every storyline: timeline, randomness, ids, people, calendar."""

    tl: Timeline
    rng: Random
    mint: IdMint
    factory: ProfileFactory
    sales: list[tuple[datetime, datetime]]
    bystanders: dict[str, list[Profile]]  # ordinary customers by country: gift recipients

    @property
    def start(self) -> datetime:
        return self.tl.start

    @property
    def end(self) -> datetime:
        return self.tl.end

    def moment(self, lo: datetime, hi: datetime) -> datetime:
        """A whole second drawn uniformly from [lo, hi)."""
        return lo + timedelta(seconds=self.rng.randrange(max(1, int((hi - lo).total_seconds()))))

    def in_window(self, lo_fraction: float, hi_fraction: float) -> datetime:
        """A moment between two fractions of the simulated window."""
        span = self.end - self.start
        return self.moment(self.start + span * lo_fraction, self.start + span * hi_fraction)

    def later(self, ts: datetime, lo_minutes: float, hi_minutes: float) -> datetime:
        return ts + timedelta(seconds=int(self.rng.uniform(lo_minutes, hi_minutes) * 60))

    def bystander(self, market: Market, exclude: str) -> Profile | None:
        """An ordinary customer of the same market (gift cards are region-locked)."""
        pool = [p for p in self.bystanders.get(market.country, []) if p.account_id != exclude]
        return self.rng.choice(pool) if pool else None

    def maybe_report(
        self, profile: Profile, after: datetime, chance: float, write: Callable[[Random], str]
    ) -> list[EventDraft]:
        """With probability `chance`, the customer contacts support from home some hours after `after`."""
        if self.rng.random() >= chance:
            return []
        ts = self.later(after, 30, 36 * 60)
        if not self.tl.contains(ts):
            return []
        access = profile.home_access(self.rng, ts)
        return [self.tl.support(profile.account_id, ts, access, text=write(self.rng))]
