"""Fraud storylines, one per typology, each with the signature analysts know it by.

A storyline creates its cast's profiles (fraudsters' own accounts are new,
victims and friendly fraudsters are long-standing customers), writes the
episode onto the timeline and names the events that prove it. Rings share
device, instrument and network ids, so linked-account lookups find them.
For accounts a fraudster opened, the onset is the sign-up itself: everything
such an account does is part of the scheme.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fraudagent.core.models import EventType, Typology
from fraudagent.sim.catalog import (
    CURRENCY_PACKS,
    FRAUD_ORIGINS,
    GAMES,
    GIFT_CARDS,
    MARKETS,
    TEST_CHARGE,
    TOP_UPS,
    TRIAL,
    Market,
    Product,
    first_purchase_offer,
)
from fraudagent.sim.entities import Access, Device, DeviceKind, Instrument, Profile, public_ip
from fraudagent.sim.stage import Stage, Storyline
from fraudagent.sim.texts import abusive_refund_reason, friendly_fraud_dispute, takeover_report
from fraudagent.sim.timeline import EventDraft

_AMBIGUOUS_TAKEOVER_CHANCE = 0.15
_AMBIGUOUS_DISPUTE_CHANCE = 0.15
_TAKEOVER_REPORT_CHANCE = 0.6
_ISSUER_DECLINE_CHANCE = 0.15
_STOLEN_CARD_CHARGEBACK_CHANCE = 0.7
_TESTED_CARD_CHARGEBACK_CHANCE = 0.3

_HIGH_VALUE_GAMES = tuple(g for g in GAMES if g.usd >= 49.99)
_BIG_PACKS = tuple(p for p in CURRENCY_PACKS if p.usd >= 49.99)
_BIG_GIFT_CARDS = tuple(g for g in GIFT_CARDS if g.face_usd >= 50)
_BIG_TOP_UPS = tuple(t for t in TOP_UPS if t.face_usd >= 50)
_SMALL_TOP_UP = TOP_UPS[0]
# What a takeover changes first to keep the owner out.
_CREDENTIAL_COMBOS: tuple[tuple[EventType, ...], ...] = (
    (EventType.password_reset,),
    (EventType.email_change,),
    (EventType.password_reset, EventType.mfa_change),
    (EventType.email_change, EventType.mfa_change),
    (EventType.password_reset, EventType.email_change),
)


def _resale_item(stage: Stage) -> tuple[EventType, Product]:
    """What fraudsters buy: things that resell, gift cards first."""
    if stage.rng.random() < 0.6:
        return EventType.gift_card_purchase, stage.rng.choice(_BIG_GIFT_CARDS)
    if stage.rng.random() < 0.7:
        return EventType.purchase, stage.rng.choice(_BIG_PACKS)
    return EventType.purchase, stage.rng.choice(_HIGH_VALUE_GAMES)


def _origin(stage: Stage, not_in: str) -> str:
    return stage.rng.choice([c for c in FRAUD_ORIGINS if c != not_in])


def _fraudster_device(stage: Stage) -> Device:
    return stage.mint.device(stage.rng.choice((DeviceKind.pc, DeviceKind.pc, DeviceKind.phone)))


def _operate_from(profile: Profile, devices: list[Device], ips: list[str], country: str) -> None:
    """Point a fraudster-controlled account at the devices and network the scheme uses."""
    profile.devices = list(devices)
    profile.acquired.clear()
    profile.home_ips = list(ips)
    profile.home_country = country


def _chargeback_later(stage: Stage, charge: EventDraft, chance: float, lo_days: int, hi_days: int) -> EventDraft | None:
    """The cardholder's bank disputing a settled charge some days later, if it lands in the window."""
    if charge.status != "settled" or stage.rng.random() >= chance:
        return None
    ts = charge.ts + timedelta(days=stage.rng.uniform(lo_days, hi_days))
    return stage.tl.chargeback(charge, ts, text=None) if stage.tl.contains(ts) else None


def account_takeover(stage: Stage, account_ids: list[str]) -> Storyline:
    """Login from a new device abroad, credential change, then fast gift-card and currency buys."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    victim = stage.factory.customer(account_id, stage.factory.established_since(stage.start, min_days=180))
    ts = stage.in_window(0.15, 0.95)
    origin = _origin(stage, victim.home_country)
    attacker = Access(_fraudster_device(stage), public_ip(rng, origin), origin)
    onset = ts
    for _ in range(rng.randint(0, 4)):  # credential stuffing before the hit
        tl.login(account_id, ts, attacker, failed=True)
        ts = stage.later(ts, 0.2, 2)
    tl.login(account_id, ts, attacker)
    changes: list[EventDraft] = []
    for change in rng.choice(_CREDENTIAL_COMBOS):
        ts = stage.later(ts, 1, 8)
        changes.append(tl.credential_change(account_id, ts, change, attacker))
    if rng.random() < _AMBIGUOUS_TAKEOVER_CHANCE:
        game = rng.choice(GAMES)
        buy = tl.charge(
            account_id, stage.later(ts, 10, 90), EventType.purchase, game, victim.currency, attacker, victim.card()
        )
        return Storyline(Typology.account_takeover, onset, {account_id: [changes[0], buy]}, [victim], ambiguous=True)
    charges: list[EventDraft] = []
    for _ in range(rng.randint(3, 8)):
        ts = stage.later(ts, 1, 8)
        event_type, product = _resale_item(stage)
        status = "declined" if rng.random() < _ISSUER_DECLINE_CHANCE else "settled"
        text = (
            rng.choice(("enjoy", "gift", "for you"))
            if event_type is EventType.gift_card_purchase and rng.random() < 0.15
            else None
        )
        charges.append(
            tl.charge(
                account_id, ts, event_type, product, victim.currency, attacker, victim.card(), status=status, text=text
            )
        )
    settled = [c for c in charges if c.status == "settled"] or charges
    reports = stage.maybe_report(victim, ts, _TAKEOVER_REPORT_CHANCE, takeover_report)
    _chargeback_later(stage, settled[0], 0.3, 10, 40)
    return Storyline(
        Typology.account_takeover, onset, {account_id: [changes[0], settled[0], settled[-1]]}, [victim], reports=reports
    )


def stolen_card(stage: Stage, account_ids: list[str]) -> Storyline:
    """A fresh account pays with cards issued elsewhere than it connects from; chargebacks follow."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    market = stage.factory.market()
    ts = stage.in_window(0.1, 0.9)
    created = ts - timedelta(minutes=rng.randint(10, 3 * 1440))
    profile = stage.factory.customer(
        account_id, created, market=market, disposable_email=rng.random() < 0.5, tier="free", sessions_per_day=0.05
    )
    # Most connect from home; some through a proxy in the card's own country.
    country = _origin(stage, market.country) if rng.random() < 0.75 else market.country
    _operate_from(profile, [_fraudster_device(stage)], [public_ip(rng, country)], country)
    profile.instruments = [stage.mint.card(market.country) for _ in range(rng.randint(1, 3))]
    access = profile.home_access(rng, ts)
    tl.login(account_id, ts, access)
    charges: list[EventDraft] = []
    for _ in range(rng.randint(3, 8)):
        ts = stage.later(ts, 2, 25)
        event_type, product = _resale_item(stage)
        status = "declined" if rng.random() < 0.2 else "settled"
        charges.append(
            tl.charge(
                account_id,
                ts,
                event_type,
                product,
                market.currency,
                access,
                rng.choice(profile.instruments),
                status=status,
            )
        )
    settled = [c for c in charges if c.status == "settled"] or charges
    disputes = [cb for c in settled if (cb := _chargeback_later(stage, c, _STOLEN_CARD_CHARGEBACK_CHANCE, 7, 35))]
    evidence = [settled[0], *(disputes[:1] or settled[1:2])]
    return Storyline(Typology.stolen_card, created, {account_id: evidence}, [profile])


def card_testing(stage: Stage, account_ids: list[str]) -> Storyline:
    """A burst of tiny charges across many cards from one machine, most of them declined."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    market = stage.factory.market()
    ts = stage.in_window(0.1, 0.95)
    created = ts - timedelta(minutes=rng.randint(5, 600))
    profile = stage.factory.customer(
        account_id, created, market=market, disposable_email=rng.random() < 0.7, tier="free", sessions_per_day=0.03
    )
    origin = _origin(stage, market.country)
    _operate_from(profile, [stage.mint.device(DeviceKind.pc)], [public_ip(rng, origin)], origin)
    attempts = rng.randint(12, 40)
    cards = [stage.mint.card(rng.choice(MARKETS).country) for _ in range(rng.randint(max(4, attempts // 4), attempts))]
    profile.instruments = cards[:1]
    access = profile.home_access(rng, ts)
    tl.login(account_id, ts, access)
    tries: list[EventDraft] = []
    for attempt in range(attempts):
        ts = stage.later(ts, 0.1, 1.5)
        event_type, product = (
            (EventType.purchase, TEST_CHARGE) if rng.random() < 0.7 else (EventType.wallet_topup, _SMALL_TOP_UP)
        )
        status = "declined" if rng.random() < 0.8 else "settled"
        tries.append(
            tl.charge(
                account_id, ts, event_type, product, market.currency, access, cards[attempt % len(cards)], status=status
            )
        )
    for charge in tries:
        _chargeback_later(stage, charge, _TESTED_CARD_CHARGEBACK_CHANCE, 10, 40)
    declined = [t for t in tries if t.status == "declined"]
    passed = [t for t in tries if t.status == "settled"]
    evidence = [*(declined[:1] or tries[:1]), *(passed[:1] or tries[1:2]), tries[-1]]
    return Storyline(Typology.card_testing, created, {account_id: evidence}, [profile])


def friendly_fraud(stage: Stage, account_ids: list[str]) -> Storyline:
    """A long-standing customer buys, keeps playing on the same console, then disputes the charge."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    profile = stage.factory.customer(account_id, stage.factory.established_since(stage.start, min_days=400))
    ts = stage.in_window(0.05, 0.55)
    ambiguous = rng.random() < _AMBIGUOUS_DISPUTE_CHANCE
    # The ambiguous variant buys from a phone seen only once: maybe a household member did.
    device = stage.mint.device(DeviceKind.phone) if ambiguous else profile.devices[0]
    access = Access(device, rng.choice(profile.home_ips), profile.home_country)
    tl.login(account_id, ts, access)
    purchases: list[EventDraft] = []
    for _ in range(rng.randint(1, 3)):
        ts = stage.later(ts, 3, 30)
        product = rng.choice(_HIGH_VALUE_GAMES + _BIG_PACKS)
        purchases.append(
            tl.charge(account_id, ts, EventType.purchase, product, profile.currency, access, profile.card())
        )
    disputed = rng.choice(purchases)
    evidence = [disputed]
    if not ambiguous:
        for index in range(rng.randint(2, 5)):
            played = stage.later(ts, 6 * 60, 5 * 1440)
            if tl.contains(played):
                login = tl.login(account_id, played, access)
                if index == 0:
                    evidence.append(login)
    latest = stage.end - timedelta(hours=2)
    filed = min(disputed.ts + timedelta(days=rng.uniform(14, 45)), latest)
    text = friendly_fraud_dispute(rng) if rng.random() < 0.85 else None
    evidence.append(tl.chargeback(disputed, filed, text=text))
    return Storyline(Typology.friendly_fraud, disputed.ts, {account_id: evidence}, [profile], ambiguous=ambiguous)


def refund_abuse(stage: Stage, account_ids: list[str]) -> Storyline:
    """Buys game after game and asks for most of them back, with short generic reasons."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    profile = stage.factory.customer(account_id, stage.factory.established_since(stage.start, min_days=60))
    onset = stage.in_window(0.05, 0.5)
    ratio = rng.uniform(0.6, 0.9)
    buys = sorted(stage.moment(onset, stage.end - timedelta(days=3)) for _ in range(rng.randint(8, 16)))
    requests: list[EventDraft] = []
    for ts in buys:
        access = profile.home_access(rng, ts)
        tl.login(account_id, ts, access)
        product = rng.choice(GAMES) if rng.random() < 0.7 else rng.choice(_BIG_PACKS)
        purchase = tl.charge(
            account_id, stage.later(ts, 3, 20), EventType.purchase, product, profile.currency, access, profile.card()
        )
        if rng.random() >= ratio:
            continue
        approved = len(requests) < 4 or rng.random() < 0.3  # the store catches on after a few
        text = abusive_refund_reason(rng) if rng.random() < 0.7 else None
        asked = stage.later(purchase.ts, 30, 2 * 1440)
        paid = stage.later(asked, 60, 1440)
        if not tl.contains(paid):
            continue
        requests.append(
            tl.refund_request(purchase, asked, access, status="approved" if approved else "denied", text=text)
        )
        if approved:
            tl.refund(purchase, paid)
    return Storyline(Typology.refund_abuse, buys[0], {account_id: requests or [purchase]}, [profile])


def gift_card_laundering(stage: Stage, account_ids: list[str]) -> Storyline:
    """One account buys gift cards with several cards; accounts on the same machine redeem them."""
    rng, tl = stage.rng, stage.tl
    market = stage.factory.market()
    ts = stage.in_window(0.15, 0.85)
    hub = _fraudster_device(stage)
    ips = [public_ip(rng, market.country) for _ in range(rng.randint(1, 2))]
    buyer = _ring_member(stage, account_ids[0], ts - timedelta(days=rng.uniform(3, 20)), market, [hub], ips)
    buyer.instruments = [stage.mint.card(rng.choice(MARKETS).country) for _ in range(rng.randint(2, 4))]
    redeemers = [
        _ring_member(stage, account_id, ts - timedelta(days=rng.uniform(0.2, 14)), market, [hub], ips)
        for account_id in account_ids[1:]
    ]
    evidence: dict[str, list[EventDraft]] = {p.account_id: [] for p in [buyer, *redeemers]}
    tl.login(buyer.account_id, ts, buyer.home_access(rng, ts))
    for _ in range(rng.randint(4, 10)):
        ts = stage.later(ts, 3, 12 * 60)
        if not tl.contains(ts + timedelta(hours=14)):
            break
        access = buyer.home_access(rng, ts)
        status = "declined" if rng.random() < 0.1 else "settled"
        gift = tl.charge(
            buyer.account_id,
            ts,
            EventType.gift_card_purchase,
            rng.choice(_BIG_GIFT_CARDS),
            market.currency,
            access,
            rng.choice(buyer.instruments),
            status=status,
        )
        if status == "declined":
            continue
        evidence[buyer.account_id].append(gift)
        redeemer = rng.choice(redeemers)
        redeem = _launder(stage, redeemer, gift)
        evidence[redeemer.account_id] += [gift, redeem]
        _chargeback_later(stage, gift, 0.4, 10, 40)
    return Storyline(
        Typology.gift_card_laundering,
        min(p.account.created_at for p in [buyer, *redeemers]),
        evidence,
        [buyer, *redeemers],
    )


def _launder(stage: Stage, redeemer: Profile, gift: EventDraft) -> EventDraft:
    """Redeem on the ring's machine within hours, then spend the balance on resellable currency."""
    ts = stage.later(gift.ts, 10, 600)
    access = redeemer.home_access(stage.rng, ts)
    redeem = stage.tl.redeem(redeemer.account_id, ts, gift, access)
    if stage.rng.random() < 0.6:
        spend = stage.later(ts, 5, 120)
        stage.tl.charge(
            redeemer.account_id,
            spend,
            EventType.purchase,
            stage.rng.choice(CURRENCY_PACKS[:4]),
            redeemer.currency,
            access,
            None,
        )
    return redeem


def _ring_member(
    stage: Stage, account_id: str, created: datetime, market: Market, devices: list[Device], ips: list[str]
) -> Profile:
    rng = stage.rng
    profile = stage.factory.customer(
        account_id, created, market=market, disposable_email=rng.random() < 0.6, tier="free", sessions_per_day=0.1
    )
    own_phone = [stage.mint.device(DeviceKind.phone)] if rng.random() < 0.4 else []
    _operate_from(profile, devices + own_phone, ips, market.country)
    return profile


def promo_abuse(stage: Stage, account_ids: list[str]) -> Storyline:
    """A batch of new accounts from one device, each taking the trial and the first-purchase discount."""
    rng, tl = stage.rng, stage.tl
    market = stage.factory.market()
    farm = _fraudster_device(stage)
    ips = [public_ip(rng, market.country) for _ in range(rng.randint(1, 2))]
    shared_payment = [
        stage.mint.card(market.country) if rng.random() < 0.6 else stage.mint.instrument("paypal", None)
        for _ in range(rng.randint(1, 2))
    ]
    farm_opens = stage.in_window(0.05, 0.8)
    sign_ups = sorted(stage.later(farm_opens, 5, 20 * 60) for _ in account_ids)  # a batch within a day
    members: list[Profile] = []
    evidence: dict[str, list[EventDraft]] = {}
    previous_promo: EventDraft | None = None
    for account_id, created in zip(account_ids, sign_ups, strict=True):
        member = _ring_member(stage, account_id, created, market, [farm], ips)
        member.instruments = list(shared_payment)
        members.append(member)
        ts = stage.later(created, 1, 5)
        access = Access(farm, rng.choice(ips), market.country)
        tl.login(account_id, ts, access)
        if rng.random() < 0.7:
            ts = stage.later(ts, 1, 4)
            tl.charge(
                account_id, ts, EventType.subscription, TRIAL, market.currency, access, rng.choice(shared_payment)
            )
        ts = stage.later(ts, 2, 15)
        promo = tl.charge(
            account_id,
            ts,
            EventType.purchase,
            first_purchase_offer(rng.choice(GAMES)),
            market.currency,
            access,
            rng.choice(shared_payment),
        )
        evidence[account_id] = [promo] + ([previous_promo] if previous_promo else [])
        previous_promo = promo
    first = account_ids[0]
    evidence[first].append(previous_promo or evidence[first][0])
    return Storyline(Typology.promo_abuse, members[0].account.created_at, evidence, members)


def mule_ring(stage: Stage, account_ids: list[str]) -> Storyline:
    """Accounts sharing consoles, networks and cards pass value around by top-ups and gift cards."""
    rng = stage.rng
    market = stage.factory.market()
    devices = [stage.mint.device(DeviceKind.console), stage.mint.device(DeviceKind.pc)]
    ips = [public_ip(rng, market.country) for _ in range(2)]
    cards: list[Instrument] = [stage.mint.card(market.country) for _ in range(rng.randint(2, 3))]
    members: list[Profile] = []
    for index, account_id in enumerate(account_ids):
        member = _ring_member(
            stage, account_id, stage.factory.established_since(stage.start, min_days=90), market, devices, ips
        )
        member.instruments = cards[index % len(cards) :] + cards[: index % len(cards)]
        member.sessions_per_day = 0.15
        members.append(member)
    onset = stage.in_window(0.1, 0.7)
    evidence: dict[str, list[EventDraft]] = {m.account_id: [] for m in members}
    ts = onset
    for _ in range(rng.randint(3, 6)):
        ts = stage.moment(ts, min(ts + timedelta(days=rng.uniform(2, 10)), stage.end - timedelta(days=1)))
        _mule_round(stage, members, cards, ts, evidence)
    return Storyline(Typology.mule_ring, min(m.account.created_at for m in members), evidence, members)


def _mule_round(
    stage: Stage, members: list[Profile], cards: list[Instrument], ts: datetime, evidence: dict[str, list[EventDraft]]
) -> None:
    """Top up several accounts from the shared cards, move a gift card, cash out on one account."""
    rng, tl = stage.rng, stage.tl
    funded = rng.sample(members, k=min(len(members), rng.randint(2, 3)))
    card = rng.choice(cards)
    for member in funded:
        ts = stage.later(ts, 2, 30)
        access = member.home_access(rng, ts)
        tl.login(member.account_id, ts, access)
        ts = stage.later(ts, 1, 5)
        topup = tl.charge(
            member.account_id, ts, EventType.wallet_topup, rng.choice(_BIG_TOP_UPS), member.currency, access, card
        )
        evidence[member.account_id].append(topup)
        for other in funded:
            if other is not member and len(evidence[other.account_id]) < 3:
                evidence[other.account_id].append(topup)
    sender, receiver = rng.sample(members, k=2)
    ts = stage.later(ts, 5, 60)
    gift = tl.charge(
        sender.account_id,
        ts,
        EventType.gift_card_purchase,
        rng.choice(_BIG_GIFT_CARDS),
        sender.currency,
        sender.home_access(rng, ts),
        card,
    )
    redeemed = stage.later(ts, 5, 180)
    redeem = tl.redeem(receiver.account_id, redeemed, gift, receiver.home_access(rng, redeemed))
    evidence[receiver.account_id] += [gift, redeem]
    cash_out = stage.later(redeemed, 5, 120)
    tl.charge(
        receiver.account_id,
        cash_out,
        EventType.purchase,
        rng.choice(_BIG_PACKS),
        receiver.currency,
        receiver.home_access(rng, cash_out),
        None,
    )
