"""Facts computed by code from the evidence, each a `fact:<name>` item citing the events it rests on.

The model reads facts instead of doing arithmetic over raw events: small models
get sums, gaps and ratios wrong; code does not.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from fraudagent.agent.evidence import EvidenceItem, EvidencePack
from fraudagent.core.models import CREDENTIAL_CHANGES, SPEND_EVENTS, EventType
from fraudagent.tools.history import ScoredEvent

RECENT = timedelta(days=7)
DAY = timedelta(hours=24)
_EVENT_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_PROMO = re.compile(r"TRIAL|PROMO|FIRST\d*|DISCOUNT|COUPON", re.IGNORECASE)
# Visa Compelling Evidence 3.0 (dispute condition 10.4, card-absent fraud): two prior undisputed
# transactions on the same card, 120 to 365 days before the disputed one, sharing with it the
# account and the device or IP address.
CE3_MIN_DAYS, CE3_MAX_DAYS, CE3_MIN_PRIOR = 120, 365, 2


def _fact(pack: EvidencePack, name: str, line: str, rests_on: list[str], **data: object) -> None:
    pack.add(EvidenceItem(id=f"fact:{name}", kind="fact", line=line, rests_on=rests_on, data=data))


def trigger_event(pack: EvidencePack) -> ScoredEvent | None:
    """The event that opened the case: named in the trigger, else the highest score in the last day."""
    by_id = {s.event.event_id: s for s in pack.events}
    for token in _EVENT_ID.findall(pack.case.trigger.detail):
        if token in by_id:
            return by_id[token]
    recent = [s for s in pack.events if s.score and pack.case.opened_at - s.event.ts <= DAY]
    return max(recent, key=lambda s: s.score.score if s.score else 0.0, default=None)


def span(events: list[ScoredEvent], n: int) -> list[ScoredEvent]:
    """Up to n events in time order: the first two (where a pattern starts) and the latest (nearest the case)."""
    ordered = sorted(events, key=lambda s: (s.event.ts, s.event.event_id))
    return ordered if len(ordered) <= n else [*ordered[: min(2, n // 3)], *ordered[len(ordered) - (n - min(2, n // 3)) :]]


def _money(events: list[ScoredEvent]) -> str:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for s in events:
        if s.event.amount is not None and s.event.currency:
            totals[s.event.currency] += Decimal(s.event.amount)
    return ", ".join(f"{v:.2f} {c}" for c, v in sorted(totals.items())) or "0"


def add_facts(pack: EvidencePack) -> None:
    events = [s for s in pack.events if s.event.ts <= pack.case.opened_at]
    opened = pack.case.opened_at
    ids = lambda xs: [s.event.event_id for s in xs]  # noqa: E731
    latest = lambda xs, n: ids(span(xs, n))  # noqa: E731

    trigger = trigger_event(pack)
    if trigger:
        score = f", score {trigger.score.score:.2f}" if trigger.score else ""
        _fact(pack, "trigger_event", f"the case was opened on event {trigger.event.event_id} ({trigger.event.type.value}{score})",
              [trigger.event.event_id], event_id=trigger.event.event_id)  # fmt: skip

    if pack.account:
        age = (opened - pack.account.created_at).days
        _fact(pack, "account_age_days", f"account age at case opening: {age} days", [], value=age)

    credential = [s for s in events if s.event.type in CREDENTIAL_CHANGES]
    if credential:
        last = credential[-1]
        after = [s for s in events if s.event.ts > last.event.ts and s.event.type in SPEND_EVENTS]
        gap = int((opened - last.event.ts).total_seconds() // 60)
        line = f"last credential change: {last.event.type.value} at {last.event.ts:%Y-%m-%d %H:%M}, {gap} minutes before the case opened"
        if after:
            first_gap = int((after[0].event.ts - last.event.ts).total_seconds() // 60)
            line += f"; {len(after)} purchase(s) after it totalling {_money(after)}, the first {first_gap} minutes later"
        _fact(pack, "credential_change", line, ids([last, *after[:5]]), minutes_before_open=gap, purchases_after=len(after))

    first_seen: dict[tuple[str, str], ScoredEvent] = {}
    for s in events:
        kinds = (("device", s.event.device_id), ("country", s.event.ip_country), ("instrument", s.event.instrument_id), ("ip", s.event.ip))
        for kind, value in kinds:
            if value and (kind, value) not in first_seen:
                first_seen[(kind, value)] = s
    window_start = events[0].event.ts if events else opened
    for kind in ("device", "country", "instrument", "ip"):
        # "new" = first seen in the last 7 days, after at least 7 days of earlier history in the window
        new = [(v, s) for (k, v), s in first_seen.items() if k == kind and opened - s.event.ts <= RECENT and s.event.ts - window_start >= RECENT]
        if not new:
            continue
        if kind == "ip":  # addresses are personal data: the fact counts them and cites the events, never names them
            _fact(pack, "new_ip", f"{len(new)} new IP address(es) first seen in the last 7 days", ids([s for _, s in new[:5]]), count=len(new))
        else:
            names = ", ".join(v for v, _ in new[:5])
            _fact(pack, f"new_{kind}", f"new {kind}(s) first seen in the last 7 days: {names}", ids([s for _, s in new[:5]]), values=[v for v, _ in new], count=len(new))

    last_day = [s for s in events if opened - s.event.ts <= DAY]
    spend_day = [s for s in last_day if s.event.type in SPEND_EVENTS and s.event.status != "declined"]
    declined_day = [s for s in last_day if s.event.status == "declined"]
    if spend_day or declined_day:
        instruments = {s.event.instrument_id for s in last_day if s.event.instrument_id}
        _fact(pack, "velocity_24h",
              f"in the 24 hours before opening: {len(spend_day)} settled/pending payment(s) totalling {_money(spend_day)}, "
              f"{len(declined_day)} declined, {len(instruments)} distinct instrument(s)",
              latest(spend_day + declined_day, 8), payments=len(spend_day), declined=len(declined_day), instruments=len(instruments))  # fmt: skip

    # Card testing's yield: a payment that went through on a card after declines on other cards shortly before it
    # (the cards that "work" are the ones to block). Slow testing spreads over days, so the whole window counts.
    went_through = []
    for n, s in enumerate(events):
        if s.event.type not in SPEND_EVENTS or s.event.status == "declined" or not s.event.instrument_id:
            continue
        before = [p for p in events[:n] if p.event.status == "declined" and s.event.ts - p.event.ts <= DAY]
        if len({p.event.instrument_id for p in before if p.event.instrument_id != s.event.instrument_id}) >= 2:
            went_through.append(s)
    if went_through:
        cards = list(dict.fromkeys(s.event.instrument_id for s in went_through))
        _fact(pack, "approved_after_declines",
              f"{len(went_through)} payment(s) went through on a card after declines on at least two other cards in the "
              f"24 hours before; cards: {', '.join(str(c) for c in cards[:4])}",
              latest(went_through, 8), count=len(went_through), instruments=len(cards))  # fmt: skip

    recent_spend = [s for s in events if opened - s.event.ts <= RECENT and s.event.type in SPEND_EVENTS and s.event.amount]
    if recent_spend:
        total = sum(Decimal(s.event.amount or 0) for s in recent_spend)
        gift = [s for s in recent_spend if s.event.type is EventType.gift_card_purchase]
        share = float(sum(Decimal(s.event.amount or 0) for s in gift) / total) if total else 0.0
        _fact(pack, "gift_card_share_7d", f"gift cards are {share:.0%} of spend in the last 7 days ({len(gift)} of {len(recent_spend)} payments)",
              latest(gift, 5) or latest(recent_spend, 3), share=round(share, 3))  # fmt: skip

    purchases = [s for s in events if s.event.type in SPEND_EVENTS]
    refunds = [s for s in events if s.event.type in (EventType.refund_request, EventType.refund)]
    chargebacks = [s for s in events if s.event.type is EventType.chargeback]
    if refunds or chargebacks:
        # The customer's requests are the evidence of a pattern; the refunds paid out only follow them.
        claims = [s for s in refunds if s.event.type is EventType.refund_request] or refunds
        ratio = (len(refunds) + len(chargebacks)) / max(len(purchases), 1)
        _fact(pack, "refunds_chargebacks",
              f"{len(refunds)} refund request(s)/refund(s) and {len(chargebacks)} chargeback(s) against {len(purchases)} purchase(s) in the window (ratio {ratio:.2f})",
              ids(chargebacks[-3:]) + latest(claims, 8 - len(chargebacks[-3:])), refunds=len(refunds), chargebacks=len(chargebacks), ratio=round(ratio, 3))  # fmt: skip

    mismatch = [s for s in events if s.event.bin_country and s.event.ip_country and s.event.bin_country != s.event.ip_country]
    if mismatch:
        _fact(pack, "bin_ip_mismatch", f"{len(mismatch)} payment(s) where the card's BIN country differs from the IP country",
              latest(mismatch, 5), count=len(mismatch))  # fmt: skip

    promos = [s for s in events if s.event.sku and _PROMO.search(s.event.sku)]
    if promos:
        _fact(pack, "promo_use", f"{len(promos)} purchase(s) of a trial or first-purchase offer",
              latest(promos, 5), count=len(promos))  # fmt: skip

    for fact in _ce3_facts(pack, events):
        pack.add(fact)

    scored = [s for s in events if s.score]
    if scored:
        top = max(scored, key=lambda s: s.score.score if s.score else 0.0)
        assert top.score is not None
        _fact(pack, "max_score", f"highest model score {top.score.score:.2f} on {top.event.event_id}", [top.event.event_id], value=top.score.score)

    linked = [i for i in pack.items.values() if i.kind == "acct" and i.id != f"acct:{pack.case.account_id}"]
    if linked:
        _fact(pack, "linked_accounts", f"{len(linked)} other account(s) share a device or payment instrument with this account",
              [e for i in linked for e in i.rests_on][:8], count=len(linked))  # fmt: skip


def disputed_purchase(chargeback: ScoredEvent, events: list[ScoredEvent]) -> ScoredEvent | None:
    """The purchase a chargeback disputes: the latest earlier payment on the same instrument for the same amount."""
    cb = chargeback.event
    candidates = [
        s for s in events
        if s.event.type in SPEND_EVENTS and s.event.ts < cb.ts and s.event.instrument_id == cb.instrument_id
        and s.event.amount == cb.amount and s.event.currency == cb.currency
    ]  # fmt: skip
    return candidates[-1] if candidates else None


def _ce3_facts(pack: EvidencePack, events: list[ScoredEvent]) -> list[EvidenceItem]:
    chargebacks = [s for s in events if s.event.type is EventType.chargeback]
    if not chargebacks:
        return []
    history = sorted({s.event.event_id: s for s in [*pack.prior_events, *events]}.values(), key=lambda s: s.event.ts)
    disputed_ids = {d.event.event_id for cb in chargebacks if (d := disputed_purchase(cb, history))}
    verdicts: list[str] = []
    qualifying: list[str] = []
    rests_on: list[str] = []
    eligible_any = False
    for cb in chargebacks[:3]:
        disputed = disputed_purchase(cb, history)
        if disputed is None:
            verdicts.append(f"{cb.event.event_id}: disputed purchase not in the evidence, eligibility unknown")
            rests_on.append(cb.event.event_id)
            continue
        d = disputed.event
        prior = [
            s for s in history
            if s.event.type in SPEND_EVENTS and s.event.status != "declined" and s.event.event_id not in disputed_ids
            and s.event.instrument_id == d.instrument_id
            and timedelta(days=CE3_MIN_DAYS) <= d.ts - s.event.ts <= timedelta(days=CE3_MAX_DAYS)
            and ((d.device_id and s.event.device_id == d.device_id) or (d.ip and s.event.ip == d.ip))
        ]  # fmt: skip
        eligible = len(prior) >= CE3_MIN_PRIOR
        eligible_any = eligible_any or eligible
        verdicts.append(
            f"{cb.event.event_id} disputes {d.event_id}: {'eligible' if eligible else 'not eligible'}"
            f" ({len(prior)} prior undisputed payment(s) on the same card and device/IP 120-365 days earlier; 2 needed)"
        )
        qualifying += [s.event.event_id for s in prior[:2]]
        rests_on += [cb.event.event_id, d.event_id]
    line = "Visa CE 3.0 for the chargeback(s): " + "; ".join(verdicts)
    return [EvidenceItem(id="fact:chargeback_ce3", kind="fact", line=line, rests_on=[*rests_on, *qualifying],
                         data={"eligible": int(eligible_any), "checked": len(verdicts)})]  # fmt: skip
