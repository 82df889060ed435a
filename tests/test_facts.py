"""Facts and what they cite, on packs built in memory (no servers): the events a finding rests on are the ones an
analyst reads first: where a pattern starts, the latest before the case, the customer's own requests, the payments
that went through amid declines."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fraudagent.agent.evidence import EvidencePack, add_event
from fraudagent.agent.facts import add_facts
from fraudagent.agent.findings import item_finding
from fraudagent.core.models import Case, Event
from fraudagent.tools.history import ScoredEvent

OPENED = datetime(2026, 11, 19, 4, 30, tzinfo=timezone.utc)


def _pack(events: list[dict[str, Any]]) -> EvidencePack:
    case = Case.model_validate({"case_id": "C-1", "account_id": "A-1", "opened_at": OPENED.isoformat(),
                                "trigger": {"kind": "rule", "detail": f"last attempt {events[-1]['event_id']}"}})  # fmt: skip
    scored = [ScoredEvent(event=Event.model_validate({"account_id": "A-1", **e})) for e in events]
    pack = EvidencePack(case=case, status="open", account=None, events=scored, items={})
    for s in scored:
        add_event(pack, s)
    add_facts(pack)
    return pack


def _payment(n: int, minutes_before: int, card: str, status: str, kind: str = "wallet_topup") -> dict[str, Any]:
    return {"event_id": f"E-{n:03d}", "ts": (OPENED - timedelta(minutes=minutes_before)).isoformat(), "type": kind,
            "amount": "5.00", "currency": "USD", "instrument_id": card, "status": status}  # fmt: skip


def test_a_payment_that_went_through_after_declines_on_other_cards_is_a_fact_citing_it() -> None:
    pack = _pack([
        _payment(1, 300, "PI-1", "declined"), _payment(2, 290, "PI-2", "declined"), _payment(3, 280, "PI-3", "settled"),
        _payment(4, 200, "PI-4", "declined"), _payment(5, 100, "PI-4", "settled"),
    ])  # fmt: skip
    fact = pack.items["fact:approved_after_declines"]
    assert fact.rests_on == ["E-003", "E-005"]
    assert fact.data == {"count": 2, "instruments": 2}
    assert "PI-3" in fact.line and "PI-4" in fact.line


def test_declines_on_the_same_card_only_are_no_card_testing_yield() -> None:
    pack = _pack([_payment(1, 300, "PI-1", "declined"), _payment(2, 290, "PI-1", "declined"), _payment(3, 280, "PI-1", "settled")])
    assert "fact:approved_after_declines" not in pack.items


def test_declines_more_than_a_day_before_do_not_count() -> None:
    pack = _pack([_payment(1, 3000, "PI-1", "declined"), _payment(2, 2990, "PI-2", "declined"), _payment(3, 60, "PI-3", "settled")])
    assert "fact:approved_after_declines" not in pack.items


def test_a_refund_pattern_cites_the_customers_requests_from_the_first_to_the_latest() -> None:
    events = []
    for n in range(10):  # ten purchase / request / payout triples, oldest first
        base = 10_000 - n * 900
        events += [
            _payment(3 * n + 1, base, "PI-1", "settled", "purchase"),
            {**_payment(3 * n + 2, base - 60, "PI-1", "approved", "refund_request")},
            {**_payment(3 * n + 3, base - 120, "PI-1", "settled", "refund")},
        ]
    pack = _pack(events)
    fact = pack.items["fact:refunds_chargebacks"]
    requests = [e["event_id"] for e in events if e["type"] == "refund_request"]
    assert set(fact.rests_on) <= set(requests), "payouts only follow requests: the requests are cited"
    assert fact.rests_on[:2] == requests[:2], "where the pattern starts"
    assert fact.rests_on[-1] == requests[-1], "the latest request before the case"
    finding = item_finding(pack, "fact:refunds_chargebacks")
    assert [e for e in finding.evidence_ids if e.startswith("txn:")] == [f"txn:{e}" for e in fact.rests_on]
