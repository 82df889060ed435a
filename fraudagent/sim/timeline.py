"""Event drafts and the timeline that collects them.

Generators write drafts in whatever order their story unfolds; `seal` sorts
them by time and only then assigns event ids, so ids count up with time the
way a production event log does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fraudagent.core.models import Event, EventType
from fraudagent.sim.catalog import Product, face_value, local_price
from fraudagent.sim.entities import Access, Instrument

STORE_BALANCE = "store_balance"  # instrument_type of purchases paid from the account's wallet


@dataclass(slots=True, eq=False)
class EventDraft:
    """A mutable event before it has its id; compared and hashed by identity."""

    seq: int
    account_id: str
    ts: datetime
    type: EventType
    amount: str | None = None
    currency: str | None = None
    sku: str | None = None
    category: str | None = None
    device_id: str | None = None
    ip: str | None = None
    ip_country: str | None = None
    instrument_id: str | None = None
    instrument_type: str | None = None
    bin_country: str | None = None
    status: str | None = None
    text: str | None = None
    event_id: str = field(default="", init=False)  # assigned by Timeline.seal


def product_amount(product: Product, currency: str) -> str:
    """What the product costs in the currency: face value for cards and top-ups."""
    if product.face_usd:
        return face_value(product.face_usd, currency)
    if product.usd == 0:
        return "0.00"
    return local_price(product.usd, currency)


class Timeline:
    """Collects the drafts of one world within [start, end)."""

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.end = end
        self._drafts: list[EventDraft] = []

    def contains(self, ts: datetime) -> bool:
        return self.start <= ts < self.end

    def mark(self) -> int:
        """A position in the timeline's writing order; `written_since` returns the drafts added after it."""
        return len(self._drafts)

    def written_since(self, mark: int) -> list[EventDraft]:
        return self._drafts[mark:]

    def _add(
        self, account_id: str, ts: datetime, event_type: EventType, access: Access | None, **fields: str | None
    ) -> EventDraft:
        if not self.contains(ts):
            raise ValueError(f"{event_type} at {ts.isoformat()} is outside the simulated window")
        # Whole seconds, as event logs record them.
        draft = EventDraft(len(self._drafts), account_id, ts.replace(microsecond=0), event_type, **fields)
        if access is not None:
            draft.device_id = access.device.device_id
            draft.ip = access.ip
            draft.ip_country = access.ip_country
        self._drafts.append(draft)
        return draft

    def login(self, account_id: str, ts: datetime, access: Access, *, failed: bool = False) -> EventDraft:
        return self._add(account_id, ts, EventType.login, access, status="failed" if failed else "success")

    def credential_change(self, account_id: str, ts: datetime, event_type: EventType, access: Access) -> EventDraft:
        return self._add(account_id, ts, event_type, access, status="success")

    def charge(
        self,
        account_id: str,
        ts: datetime,
        event_type: EventType,
        product: Product,
        currency: str,
        access: Access,
        instrument: Instrument | None,
        *,
        status: str = "settled",
        text: str | None = None,
    ) -> EventDraft:
        """A purchase, subscription, top-up or gift-card purchase; no instrument means store balance."""
        return self._add(
            account_id,
            ts,
            event_type,
            access,
            amount=product_amount(product, currency),
            currency=currency,
            sku=product.sku,
            category=product.category,
            instrument_id=instrument.instrument_id if instrument else None,
            instrument_type=instrument.instrument_type if instrument else STORE_BALANCE,
            bin_country=instrument.bin_country if instrument else None,
            status=status,
            text=text,
        )

    def redeem(self, account_id: str, ts: datetime, gift: EventDraft, access: Access) -> EventDraft:
        """Redemption of the gift card bought in `gift`, credited to `account_id`'s balance."""
        return self._add(
            account_id,
            ts,
            EventType.gift_card_redeem,
            access,
            amount=gift.amount,
            currency=gift.currency,
            sku=gift.sku,
            category="gift_card",
            status="settled",
        )

    def refund_request(
        self, original: EventDraft, ts: datetime, access: Access, *, status: str, text: str | None
    ) -> EventDraft:
        return self._add(
            original.account_id, ts, EventType.refund_request, access, status=status, text=text, **_money_of(original)
        )

    def refund(self, original: EventDraft, ts: datetime) -> EventDraft:
        """The store paying money back; issued by the back office, so no device or network."""
        return self._add(original.account_id, ts, EventType.refund, None, status="settled", **_money_of(original))

    def chargeback(self, original: EventDraft, ts: datetime, *, text: str | None) -> EventDraft:
        """A dispute raised through the card network; it arrives without device or network."""
        return self._add(
            original.account_id, ts, EventType.chargeback, None, status="received", text=text, **_money_of(original)
        )

    def support(self, account_id: str, ts: datetime, access: Access | None, *, text: str | None) -> EventDraft:
        return self._add(account_id, ts, EventType.support_contact, access, text=text)

    def seal(self) -> list[Event]:
        """Sort by time, assign ids in that order and freeze the drafts into events."""
        ordered = sorted(self._drafts, key=lambda d: (d.ts, d.seq))
        width = max(7, len(str(len(ordered))))
        events: list[Event] = []
        for number, draft in enumerate(ordered, start=1):
            draft.event_id = f"E-{number:0{width}d}"
            events.append(_freeze(draft))
        return events


def _money_of(original: EventDraft) -> dict[str, str | None]:
    return {
        "amount": original.amount,
        "currency": original.currency,
        "sku": original.sku,
        "category": original.category,
        "instrument_id": original.instrument_id,
        "instrument_type": original.instrument_type,
        "bin_country": original.bin_country,
    }


def _freeze(draft: EventDraft) -> Event:
    return Event(
        event_id=draft.event_id,
        account_id=draft.account_id,
        ts=draft.ts,
        type=draft.type,
        amount=draft.amount,
        currency=draft.currency,
        sku=draft.sku,
        category=draft.category,
        device_id=draft.device_id,
        ip=draft.ip,
        ip_country=draft.ip_country,
        instrument_id=draft.instrument_id,
        instrument_type=draft.instrument_type,
        bin_country=draft.bin_country,
        status=draft.status,
        text=draft.text,
    )
