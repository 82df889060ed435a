"""The simulated store as one deterministic world: customers, events, scores, alerts, history.

`generate_world` casts every account into a role (an ordinary customer, a
legitimate look-alike of fraud, or a member of a fraud storyline), writes
their behaviour over the window, scores it, opens the alerts and writes the
past cases. Each phase draws from its own `Random` derived from the seed, so
the same seed always yields the same world, byte for byte once exported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from random import Random

from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import Account, CaseBundle, Event, PastCase, Score, Typology
from fraudagent.risk.rules import score_events
from fraudagent.sim import fraud, lookalikes
from fraudagent.sim.activity import everyday_activity
from fraudagent.sim.alerts import raise_alerts
from fraudagent.sim.catalog import sale_windows
from fraudagent.sim.entities import IdMint, Profile
from fraudagent.sim.past_cases import generate_past_cases
from fraudagent.sim.population import ProfileFactory
from fraudagent.sim.stage import Stage, Storyline
from fraudagent.sim.timeline import EventDraft, Timeline

DEFAULT_END = datetime(2026, 11, 26, tzinfo=timezone.utc)
GENERATOR_VERSION = "fraudagent-sim/3"  # bump whenever the same seed would write a different world
MIN_DAYS = 7  # storylines need room: a trip, a chargeback weeks after a purchase


@dataclass(frozen=True)
class World:
    seed: int
    end: datetime
    days: int
    accounts: list[Account]
    events: list[Event]  # sorted by (ts, event_id)
    scores: list[Score]
    truth: dict[str, Typology]  # account_id -> ground truth; legitimate for every non-fraud account
    alerts: list[CaseBundle]
    past_cases: list[PastCase]
    fraud_events: frozenset[str] = frozenset()
    """Ids of the events that are fraud activity: see `_fraud_events`. The risk model's training labels."""

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


@dataclass(frozen=True, slots=True)
class Casting:
    """A storyline and how often it is cast: groups per thousand accounts, and group size."""

    write: Callable[[Stage, list[str]], Storyline]
    per_thousand: float
    group: tuple[int, int] = (1, 1)


# Legitimate look-alikes first, then fraud; every storyline is cast at least
# once, so small worlds still hold every typology.
CASTINGS: tuple[Casting, ...] = (
    Casting(lookalikes.traveller, 50),
    Casting(lookalikes.new_console, 45),
    Casting(lookalikes.holiday_gifter, 40),
    Casting(lookalikes.family, 18, (2, 4)),
    Casting(lookalikes.newcomer, 50),
    Casting(lookalikes.duplicate_charge, 4),
    Casting(lookalikes.card_trouble, 25),
    Casting(lookalikes.account_recovery, 20),
    Casting(lookalikes.expat_newcomer, 20),
    Casting(fraud.account_takeover, 11),
    Casting(fraud.stolen_card, 7),
    Casting(fraud.card_testing, 2),
    Casting(fraud.friendly_fraud, 8),
    Casting(fraud.refund_abuse, 7),
    Casting(fraud.gift_card_laundering, 2, (3, 5)),
    Casting(fraud.promo_abuse, 1.6, (4, 8)),
    Casting(fraud.mule_ring, 1.6, (3, 6)),
)


def generate_world(
    *,
    seed: int = 7,
    accounts: int = 5000,
    days: int = 90,
    end: datetime = DEFAULT_END,
    past_cases: int = 3000,
) -> World:
    """Generate the store: `accounts` customers over `days` days ending at `end`."""
    limits = (("accounts", accounts, 1), ("days", days, MIN_DAYS), ("past_cases", past_cases, 0))
    problems = [Problem(name, f"must be at least {least}") for name, value, least in limits if value < least]
    if problems:
        raise InvalidInput("cannot simulate a world of that size", problems)
    start = end - timedelta(days=days)
    mint = IdMint()
    tl = Timeline(start, end)
    cast_rng = Random(f"{seed}:cast")
    account_ids = [f"A-{n:05d}" for n in range(1, accounts + 1)]
    groups, regulars = _cast(cast_rng, account_ids)

    factory = ProfileFactory(Random(f"{seed}:people"), mint)
    ordinary = [factory.customer(a, factory.established_since(start)) for a in regulars]
    bystanders: dict[str, list[Profile]] = {}
    for profile in ordinary:
        bystanders.setdefault(profile.market.country, []).append(profile)
    stage = Stage(tl, Random(f"{seed}:stories"), mint, factory, sale_windows(start, end), bystanders)
    storylines: list[Storyline] = []
    written: list[list[EventDraft]] = []  # per storyline, the events it wrote itself
    for casting, members in groups:
        mark = tl.mark()
        storylines.append(casting.write(stage, members))
        written.append(tl.written_since(mark))

    profiles = sorted(ordinary + [p for story in storylines for p in story.profiles], key=lambda p: p.account_id)
    activity_rng = Random(f"{seed}:activity")
    for profile in profiles:
        everyday_activity(tl, activity_rng, profile, stage.sales)

    events = tl.seal()
    account_list = [p.account for p in profiles]
    scores = score_events(events, {a.account_id: a for a in account_list})
    truth = _truth(account_list, storylines)
    fraud_events = _fraud_events(events, account_list, storylines, written)
    run = raise_alerts(
        rng=Random(f"{seed}:alerts"),
        events=events,
        accounts=account_list,
        scores=scores,
        storylines=storylines,
        end=end,
    )
    return World(
        seed=seed,
        end=end,
        days=days,
        accounts=run.accounts,
        events=run.events,
        scores=scores,
        truth=truth,
        alerts=run.alerts,
        past_cases=generate_past_cases(
            Random(f"{seed}:past"), past_cases, accounts=run.accounts, truth=truth, before=start
        ),
        fraud_events=fraud_events,
    )


def _cast(rng: Random, account_ids: list[str]) -> tuple[list[tuple[Casting, list[str]]], list[str]]:
    """Assign accounts to storyline groups; the rest are ordinary customers."""
    pool = list(account_ids)
    rng.shuffle(pool)
    groups: list[tuple[Casting, list[str]]] = []
    for casting in CASTINGS:
        for _ in range(max(1, round(casting.per_thousand * len(account_ids) / 1000))):
            size = rng.randint(*casting.group)
            if size > len(pool):
                break
            members, pool = pool[:size], pool[size:]
            groups.append((casting, sorted(members)))
    return groups, sorted(pool)


def _fraud_events(
    events: list[Event], accounts: list[Account], storylines: list[Storyline], written: list[list[EventDraft]]
) -> frozenset[str]:
    """Event-level ground truth: what each fraud storyline wrote, and everything a scheme's own accounts do.

    Truth is per account, but a victim of a takeover or a customer who later
    files a false chargeback also shops honestly; labelling all their events
    would teach a model that ordinary purchases are fraud. So the fraud events
    are the ones the storyline itself wrote (the attacker's logins and buys,
    the disputed purchase and its chargeback, the abused refunds) plus every
    event of an account that exists for the scheme: created at or after the
    storyline's onset (stolen-card, card-testing and ring accounts). A
    victim's own report to support is not fraud activity.
    """
    created = {a.account_id: a.created_at for a in accounts}
    fraud: set[str] = set()
    schemes: set[str] = set()
    for story, drafts in zip(storylines, written, strict=True):
        if story.typology is Typology.legitimate:
            continue
        members = set(story.members)
        fraud.update(d.event_id for d in drafts if d.account_id in members and d not in story.reports)
        schemes.update(m for m in members if created[m] >= story.onset)
    fraud.update(e.event_id for e in events if e.account_id in schemes)
    return frozenset(fraud)


def _truth(accounts: list[Account], storylines: list[Storyline]) -> dict[str, Typology]:
    truth = {a.account_id: Typology.legitimate for a in accounts}
    for story in storylines:
        for member in story.members:
            truth[member] = story.typology
    return truth


def simulated_store(seed: int, accounts: int, days: int) -> World:
    """The world a model is trained on: no past cases are needed for that."""
    return generate_world(seed=seed, accounts=accounts, days=days, past_cases=0)
