"""Legitimate behaviour that looks risky: the store's everyday false positives.

Each storyline takes the ids of its cast, creates their profiles and writes
the episode that makes them look like fraud to a rules engine: a trip abroad,
a new console, gift cards in a sale, a household sharing a console and a card,
a card the bank keeps declining, a locked-out owner recovering the account, a
newcomer paying with a card from the country they moved from. The last three
resemble card testing, account takeover and stolen cards closely enough that
no model separates them from fraud perfectly, as in a real store.
"""

from __future__ import annotations

from datetime import timedelta

from fraudagent.core.models import EventType, Typology
from fraudagent.sim.activity import pick_item, session_access
from fraudagent.sim.catalog import (
    CURRENCY_PACKS,
    GAMES,
    GIFT_CARDS,
    MARKETS,
    TRAVEL_DESTINATIONS,
    TRIAL,
    first_purchase_offer,
)
from fraudagent.sim.entities import Access, DeviceKind, Profile, public_ip
from fraudagent.sim.stage import Stage, Storyline
from fraudagent.sim.texts import (
    confused_login_report,
    duplicate_charge_dispute,
    gift_message,
    unrecognised_charge_report,
)
from fraudagent.sim.timeline import EventDraft

_RESET_ABROAD_CHANCE = 0.2
_RESET_ON_NEW_CONSOLE_CHANCE = 0.35
_CONFUSED_REPORT_CHANCE = 0.1
_GIFT_MESSAGE_CHANCE = 0.6
_GIFT_REDEEMED_IN_STORE_CHANCE = 0.7
_HOUSEHOLD_REPORT_CHANCE = 0.25
_CHILD_USES_PARENT_CARD_CHANCE = 0.6
_NEW_CARD_AFTER_DECLINES_CHANCE = 0.5
_GIVES_UP_CHANCE = 0.25
_RECOVERY_ABROAD_CHANCE = 0.35
_RECOVERY_MFA_RESET_CHANCE = 0.4
_RECOVERY_GIFT_CHANCE = 0.35
_EXPAT_GIFT_CHANCE = 0.6


def _established(stage: Stage, account_id: str) -> Profile:
    return stage.factory.customer(account_id, stage.factory.established_since(stage.start, min_days=120))


def traveller(stage: Stage, account_ids: list[str]) -> Storyline:
    """Plays and buys from a hotel abroad on their own laptop or phone, paying with the home card."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    profile = _established(stage, account_id)
    depart = stage.in_window(0.05, 0.85)
    back = min(depart + timedelta(days=rng.randint(4, 12)), stage.end - timedelta(hours=6))
    destination = rng.choice(TRAVEL_DESTINATIONS[profile.market.country])
    device = next((d for d in profile.devices if d.kind is not DeviceKind.console), None)
    if device is None:
        device = stage.mint.device(DeviceKind.phone)
        profile.add_device(device, since=depart - timedelta(days=rng.randint(1, 20)))
    hotel_ips = [public_ip(rng, destination) for _ in range(rng.randint(1, 2))]
    sessions = sorted(stage.moment(depart, back) for _ in range(rng.randint(2, 6)))
    evidence: list[EventDraft] = []
    for index, ts in enumerate(sessions):
        access = Access(device, rng.choice(hotel_ips), destination)
        login = tl.login(account_id, ts, access)
        moment = stage.later(ts, 3, 20)
        if index == 0:
            evidence.append(login)
            if rng.random() < _RESET_ABROAD_CHANCE:
                evidence.append(tl.credential_change(account_id, moment, EventType.password_reset, access))
                moment = stage.later(moment, 2, 10)
        if index == 0 or rng.random() < 0.4:
            event_type, product = pick_item(rng)
            purchase = tl.charge(account_id, moment, event_type, product, profile.currency, access, profile.card())
            if len(evidence) < 3:
                evidence.append(purchase)
    return Storyline(Typology.legitimate, sessions[0], {account_id: evidence}, [profile])


def new_console(stage: Stage, account_ids: list[str]) -> Storyline:
    """Sets up a new console at home, sometimes resets a forgotten password, buys games for it."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    profile = _established(stage, account_id)
    ts = stage.in_window(0.05, 0.95)
    console = stage.mint.device(DeviceKind.console)
    profile.add_device(console, since=ts)
    access = Access(console, rng.choice(profile.home_ips), profile.home_country)
    evidence = [tl.login(account_id, ts, access)]
    moment = stage.later(ts, 2, 10)
    if rng.random() < _RESET_ON_NEW_CONSOLE_CHANCE:
        evidence.append(tl.credential_change(account_id, moment, EventType.password_reset, access))
    for index in range(rng.randint(1, 4)):
        moment = stage.later(moment, 5, 40)
        purchase = tl.charge(
            account_id, moment, EventType.purchase, rng.choice(GAMES), profile.currency, access, profile.card()
        )
        if index == 0:
            evidence.append(purchase)
    reports = stage.maybe_report(profile, moment, _CONFUSED_REPORT_CHANCE, confused_login_report)
    return Storyline(Typology.legitimate, ts, {account_id: evidence}, [profile], reports=reports)


def holiday_gifter(stage: Stage, account_ids: list[str]) -> Storyline:
    """Buys several gift cards for friends during a sale; most are redeemed by store customers."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    profile = _established(stage, account_id)
    opens, closes = rng.choice(stage.sales) if stage.sales else (stage.start, stage.end)
    closes = min(closes, stage.end - timedelta(hours=6))
    ts = stage.moment(opens, closes)
    access = session_access(rng, profile, ts)
    tl.login(account_id, ts, access)
    in_one_sitting = rng.random() < 0.6
    moment = stage.later(ts, 2, 10)
    gifts: list[EventDraft] = []
    for _ in range(rng.randint(2, 5)):
        product = rng.choices(GIFT_CARDS, weights=(3, 4, 3, 1.5))[0]
        text = gift_message(rng) if rng.random() < _GIFT_MESSAGE_CHANCE else None
        gifts.append(
            tl.charge(
                account_id,
                moment,
                EventType.gift_card_purchase,
                product,
                profile.currency,
                access,
                profile.card(),
                text=text,
            )
        )
        moment = (
            stage.later(moment, 1, 6)
            if in_one_sitting
            else stage.moment(moment, max(closes, stage.later(moment, 30, 60)))
        )
        if not tl.contains(moment):
            break
    for gift in gifts:
        _redeem_by_friend(stage, profile, gift)
    return Storyline(Typology.legitimate, gifts[0].ts, {account_id: gifts[:2]}, [profile])


def _redeem_by_friend(stage: Stage, giver: Profile, gift: EventDraft) -> None:
    if stage.rng.random() >= _GIFT_REDEEMED_IN_STORE_CHANCE:
        return
    friend = stage.bystander(giver.market, exclude=giver.account_id)
    redeemed = stage.later(gift.ts, 60, 5 * 1440)
    if friend is not None and stage.tl.contains(redeemed):
        stage.tl.redeem(friend.account_id, redeemed, gift, session_access(stage.rng, friend, redeemed))


def family(stage: Stage, account_ids: list[str]) -> Storyline:
    """A household: one console, one home network, the parent's card on the children's accounts."""
    rng, tl = stage.rng, stage.tl
    parent = _established(stage, account_ids[0])
    console = stage.mint.device(DeviceKind.console)
    parent.devices.append(console)
    children: list[Profile] = []
    for account_id in account_ids[1:]:
        child = stage.factory.customer(
            account_id, stage.factory.established_since(stage.start, min_days=60), market=parent.market, tier="free"
        )
        child.devices = [console] + [d for d in child.devices if d.kind is DeviceKind.phone]
        child.home_ips = list(parent.home_ips)
        if rng.random() < _CHILD_USES_PARENT_CARD_CHANCE:
            child.instruments = [parent.card()]
        else:
            child.instruments.append(parent.card())
        children.append(child)
    child = rng.choice(children)
    ts = stage.in_window(0.1, 0.9)
    shared = Access(console, rng.choice(parent.home_ips), parent.home_country)
    tl.login(child.account_id, ts, shared)
    _, product = pick_item(rng)
    purchase = tl.charge(
        child.account_id, stage.later(ts, 5, 20), EventType.purchase, product, parent.currency, shared, parent.card()
    )
    evening = tl.login(parent.account_id, stage.later(ts, 60, 300), shared)
    evidence = {p.account_id: [purchase, evening] for p in [parent, *children]}
    reports = stage.maybe_report(parent, evening.ts, _HOUSEHOLD_REPORT_CHANCE, unrecognised_charge_report)
    return Storyline(Typology.legitimate, ts, evidence, [parent, *children], reports=reports)


def newcomer(stage: Stage, account_ids: list[str]) -> Storyline:
    """Signs up during the window and takes the welcome offers once, as intended."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    created = stage.in_window(0.0, 0.9)
    profile = stage.factory.customer(account_id, created)
    ts = stage.later(created, 1, 10)
    access = profile.home_access(rng, ts)
    evidence = [tl.login(account_id, ts, access)]
    moment = stage.later(ts, 5, 60)
    if rng.random() < 0.3:
        tl.charge(account_id, moment, EventType.subscription, TRIAL, profile.currency, access, profile.card())
        moment = stage.later(moment, 1, 5)
    if rng.random() < 0.6:
        offer = first_purchase_offer(rng.choice(GAMES))
        evidence.append(
            tl.charge(account_id, moment, EventType.purchase, offer, profile.currency, access, profile.card())
        )
    return Storyline(Typology.legitimate, created, {account_id: evidence}, [profile])


def duplicate_charge(stage: Stage, account_ids: list[str]) -> Storyline:
    """Billed twice for one game by a payment glitch; the bank disputes the duplicate."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    profile = _established(stage, account_id)
    ts = stage.in_window(0.05, 0.7)
    access = profile.home_access(rng, ts)
    tl.login(account_id, ts, access)
    game = rng.choice(GAMES)
    first = tl.charge(
        account_id, stage.later(ts, 5, 20), EventType.purchase, game, profile.currency, access, profile.card()
    )
    twin = tl.charge(
        account_id,
        first.ts + timedelta(seconds=rng.randint(2, 50)),
        EventType.purchase,
        game,
        profile.currency,
        access,
        profile.card(),
    )
    evidence = [first, twin]
    disputed = twin.ts + timedelta(days=rng.randint(5, 25), hours=rng.randint(0, 23))
    if tl.contains(disputed):
        text = duplicate_charge_dispute(rng) if rng.random() < 0.8 else None
        evidence.append(tl.chargeback(twin, disputed, text=text))
    return Storyline(Typology.legitimate, first.ts, {account_id: evidence}, [profile])


def card_trouble(stage: Stage, account_ids: list[str]) -> Storyline:
    """The bank keeps declining a purchase; the customer retries, tries other cards, maybe adds a new one."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    profile = _established(stage, account_id)
    ts = stage.in_window(0.05, 0.95)
    access = session_access(rng, profile, ts)
    tl.login(account_id, ts, access)
    event_type, product = pick_item(rng)
    if rng.random() < _NEW_CARD_AFTER_DECLINES_CHANCE:
        profile.instruments.append(stage.mint.card(profile.home_country))
    moment = stage.later(ts, 2, 15)
    evidence: list[EventDraft] = []
    for _ in range(rng.randint(2, 6)):
        instrument = rng.choice(profile.instruments)
        evidence.append(
            tl.charge(account_id, moment, event_type, product, profile.currency, access, instrument, status="declined")
        )
        moment = stage.later(moment, 0.3, 4)
    if rng.random() >= _GIVES_UP_CHANCE:
        evidence.append(
            tl.charge(account_id, moment, event_type, product, profile.currency, access, profile.instruments[-1])
        )
    return Storyline(Typology.legitimate, evidence[0].ts, {account_id: evidence[:3]}, [profile])


def account_recovery(stage: Stage, account_ids: list[str]) -> Storyline:
    """Locked out, the owner resets the password (and MFA) from a new phone, then shops as usual, or for gifts."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    profile = _established(stage, account_id)
    ts = stage.in_window(0.05, 0.95)
    phone = stage.mint.device(DeviceKind.phone)
    profile.add_device(phone, since=ts)
    abroad = rng.random() < _RECOVERY_ABROAD_CHANCE
    country = rng.choice(TRAVEL_DESTINATIONS[profile.market.country]) if abroad else profile.home_country
    access = Access(phone, public_ip(rng, country), country)
    for _ in range(rng.randint(1, 4)):
        tl.login(account_id, ts, access, failed=True)
        ts = stage.later(ts, 0.3, 3)
    tl.login(account_id, ts, access)
    ts = stage.later(ts, 1, 6)
    evidence = [tl.credential_change(account_id, ts, EventType.password_reset, access)]
    if rng.random() < _RECOVERY_MFA_RESET_CHANCE:
        ts = stage.later(ts, 1, 6)
        tl.credential_change(account_id, ts, EventType.mfa_change, access)
    for _ in range(rng.randint(1, 4)):
        ts = stage.later(ts, 2, 30)
        if rng.random() < _RECOVERY_GIFT_CHANCE:
            event_type, product = EventType.gift_card_purchase, rng.choice(GIFT_CARDS[1:])
        elif rng.random() < 0.5:
            event_type, product = EventType.purchase, rng.choice(CURRENCY_PACKS[2:])
        else:
            event_type, product = pick_item(rng)
        purchase = tl.charge(account_id, ts, event_type, product, profile.currency, access, profile.card())
        if len(evidence) < 3:
            evidence.append(purchase)
    return Storyline(Typology.legitimate, evidence[0].ts, {account_id: evidence}, [profile])


def expat_newcomer(stage: Stage, account_ids: list[str]) -> Storyline:
    """Signs up after moving abroad and pays with the card from home: gift cards and currency for family."""
    rng, tl = stage.rng, stage.tl
    (account_id,) = account_ids
    created = stage.in_window(0.0, 0.9)
    profile = stage.factory.customer(account_id, created)
    home = rng.choice([m for m in MARKETS if m.country != profile.market.country])
    profile.instruments = [stage.mint.card(home.country)]
    ts = stage.later(created, 1, 30)
    access = profile.home_access(rng, ts)
    evidence = [tl.login(account_id, ts, access)]
    for _ in range(rng.randint(2, 5)):
        ts = stage.later(ts, 2, 60)
        if not tl.contains(ts):
            break
        if rng.random() < _EXPAT_GIFT_CHANCE:
            event_type, product = EventType.gift_card_purchase, rng.choice(GIFT_CARDS[1:])
        else:
            event_type, product = pick_item(rng)
        purchase = tl.charge(account_id, ts, event_type, product, profile.currency, access, profile.card())
        if len(evidence) < 3:
            evidence.append(purchase)
    return Storyline(Typology.legitimate, created, {account_id: evidence}, [profile])
