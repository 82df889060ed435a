"""The DynamoDB data layer against DynamoDB Local: batch writes, paging, bounds, bad tokens."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fraudagent import store
from fraudagent.core.errors import DependencyUnavailable, InvalidInput
from fraudagent.core.models import Event, EventType
from fraudagent.core.settings import Settings
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables

T0 = datetime(2026, 9, 1, tzinfo=timezone.utc)


def _events(account: str, n: int, device: str = "D-1") -> list[Event]:
    return [
        Event(
            event_id=f"E-{account}-{i:04d}",
            account_id=account,
            ts=T0 + timedelta(minutes=i),
            type=EventType.login,
            device_id=device,
            ip="198.51.100.7",
            ip_country="US",
        )
        for i in range(n)
    ]


def test_create_tables_is_idempotent(history: Tables, settings: Settings) -> None:
    assert dynamo.create_tables(history.client, settings) == []
    # every page: the session's DynamoDB Local holds the tables of every test so far (more than one page of 100)
    names = [n for page in history.client.get_paginator("list_tables").paginate() for n in page["TableNames"]]
    assert {history.accounts, history.events, history.cases, history.reports} <= set(names)


def test_a_table_with_a_ttl_attribute_is_created_with_ttl_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same definition gives the TimeToLiveSpecification of the CDK stack (tests/unit/test_deploy.py).
    expiring = dynamo.TableSpec("expiring", "item_id", ttl_attribute="expires_at")
    monkeypatch.setattr(dynamo, "ALL_TABLES", (*dynamo.ALL_TABLES, expiring))
    client = dynamo.make_client(settings)
    created = dynamo.create_tables(client, settings)
    name = dynamo.table_name(settings, expiring)
    assert name in created
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    events = client.describe_time_to_live(TableName=dynamo.table_name(settings, dynamo.EVENTS))
    assert events["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"


def test_paging_returns_every_event_once_in_time_order(history: Tables) -> None:
    events = _events("A-1", 130)
    assert store.events.put_events(history, events, {}) == 130
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = dynamo.query_page(
            history.client,
            table=history.events,
            key_condition="account_id = :a",
            values={":a": "A-1"},
            limit=25,
            start_token=token,
        )
        seen += [i["event_id"] for i in page.items]
        pages += 1
        token = page.next_token
        if token is None:
            break
    assert pages >= 6
    assert seen == [e.event_id for e in events]


def test_bounded_query_keeps_the_newest_and_says_it_cut(history: Tables) -> None:
    events = _events("A-2", 60)
    store.events.put_events(history, events, {})
    found, cut = store.events.account_events(history, "A-2", start=T0, end=T0 + timedelta(days=1), max_items=20)
    assert cut is True
    assert [s.event.event_id for s in found] == [e.event_id for e in events[-20:]]
    found, cut = store.events.account_events(history, "A-2", start=T0, end=T0 + timedelta(days=1), max_items=100)
    assert cut is False and len(found) == 60
    window, _ = store.events.account_events(
        history, "A-2", start=T0 + timedelta(minutes=10), end=T0 + timedelta(minutes=19), max_items=100
    )
    assert [s.event.event_id for s in window] == [e.event_id for e in events[10:20]]


def test_linked_events_find_other_accounts_on_a_shared_device(history: Tables) -> None:
    store.events.put_events(history, _events("A-3", 3, device="D-shared") + _events("A-4", 2, device="D-shared"), {})
    found, cut = store.events.linked_events(
        history, "device", "D-shared", start=T0, end=T0 + timedelta(days=1), max_items=50
    )
    assert not cut
    assert {s.event.account_id for s in found} == {"A-3", "A-4"}


def test_a_token_we_did_not_issue_is_refused(history: Tables) -> None:
    with pytest.raises(InvalidInput):
        dynamo.query_page(
            history.client,
            table=history.events,
            key_condition="account_id = :a",
            values={":a": "A-1"},
            start_token="not-a-token",
        )


class _ThrottlingClient:
    """Hands back part of each batch as unprocessed, as DynamoDB does under throttling."""

    def __init__(self, real: Any, table: str, refuse_first: int, keep: int = 5) -> None:
        self.real, self.table, self.refuse, self.keep = real, table, refuse_first, keep
        self.calls = 0

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        requests = RequestItems[self.table]
        if self.refuse > 0:
            self.refuse -= 1
            kept, left = requests[: self.keep], requests[self.keep :]
            if kept:
                self.real.batch_write_item(RequestItems={self.table: kept})
            return {"UnprocessedItems": {self.table: left}}
        return self.real.batch_write_item(RequestItems=RequestItems)


def test_unprocessed_items_are_retried_until_written(history: Tables) -> None:
    client = _ThrottlingClient(history.client, history.accounts, refuse_first=3)
    records = [{"account_id": f"A-{i}", "created_at": "2020-01-01T00:00:00Z", "country": "US"} for i in range(25)]
    assert dynamo.batch_put(client, history.accounts, records) == 25
    assert client.calls == 4
    assert len(store.events.get_accounts(history, [r["account_id"] for r in records])) == 25


def test_items_never_processed_raise_instead_of_vanishing(history: Tables) -> None:
    client = _ThrottlingClient(history.client, history.accounts, refuse_first=100, keep=0)
    records = [{"account_id": f"B-{i}", "created_at": "2020-01-01T00:00:00Z", "country": "US"} for i in range(10)]
    with pytest.raises(DependencyUnavailable):
        dynamo.batch_put(client, history.accounts, records, max_attempts=3)
    assert client.calls == 3
    assert store.events.get_accounts(history, [r["account_id"] for r in records]) == {}


def test_a_stopped_server_is_reported_as_unavailable(settings: Settings) -> None:
    dead = Tables.connect(settings.model_copy(update={"ddb_endpoint_url": "http://127.0.0.1:9", "ddb_max_attempts": 1}))
    with pytest.raises(DependencyUnavailable):
        store.cases.list_cases(dead)
