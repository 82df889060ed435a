"""A small, hand-written valid bundle (the example of CASE_BUNDLE.md) for tests to vary."""

from __future__ import annotations

import copy
from typing import Any

EXAMPLE: dict[str, Any] = {
    "bundle_version": 1,
    "case": {
        "case_id": "C-000123",
        "account_id": "A-4471",
        "opened_at": "2026-03-02T14:05:00Z",
        "trigger": {"kind": "model", "detail": "score 0.91 on E-99812"},
        "priority": "high",
        "note": "customer says they did not buy these",
    },
    "accounts": [
        {
            "account_id": "A-4471",
            "created_at": "2019-06-01T10:00:00Z",
            "country": "US",
            "email_domain": "example.com",
            "tier": "plus",
            "display_name": "xX_sniper_Xx",
        },
    ],
    "events": [
        {
            "event_id": "E-99790",
            "account_id": "A-4471",
            "ts": "2026-02-10T18:00:00Z",
            "type": "login",
            "device_id": "D-12",
            "ip": "198.51.100.20",
            "ip_country": "US",
        },
        {
            "event_id": "E-99801",
            "account_id": "A-4471",
            "ts": "2026-03-02T13:42:00Z",
            "type": "password_reset",
            "device_id": "D-77",
            "ip": "203.0.113.9",
            "ip_country": "RO",
        },
        {
            "event_id": "E-99812",
            "account_id": "A-4471",
            "ts": "2026-03-02T14:01:10Z",
            "type": "gift_card_purchase",
            "amount": "100.00",
            "currency": "USD",
            "sku": "GC-100",
            "category": "gift_card",
            "device_id": "D-77",
            "ip": "203.0.113.9",
            "ip_country": "RO",
            "instrument_id": "PI-5",
            "instrument_type": "card",
            "bin_country": "US",
            "status": "settled",
            "text": "gift for my brother",
        },
    ],
    "scores": [
        {
            "event_id": "E-99812",
            "model_version": "ref-gbm-1",
            "score": 0.91,
            "reasons": [
                {"feature": "new_device", "value": 1, "contribution": 0.21},
                {"feature": "mins_since_credential_change", "value": 19, "contribution": 0.17},
            ],
        },
    ],
    "past_cases": [
        {
            "case_id": "C-000017",
            "account_id": "A-0912",
            "closed_at": "2025-11-20T09:00:00Z",
            "typology": "account_takeover",
            "disposition": "confirmed_fraud",
            "actions": ["lock_account", "void_gift_cards"],
            "narrative": "Password reset from a new device in a new country, then six gift cards in ten minutes.",
        },
    ],
    "expected": {
        "typology": "account_takeover",
        "disposition": "confirmed_fraud",
        "acceptable_actions": ["lock_account", "step_up_verification"],
        "must_cite": ["E-99801", "E-99812"],
        "must_not_contain": [],
    },
}


def example(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE)
    doc.update(changes)
    return doc
