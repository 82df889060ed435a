"""Accounts and their events (with the model score each got when it was scored).

Reads are paged and bounded; every bound that cut a result says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from fraudagent.core.models import Account, Event, Score, sort_key_ts, utc_iso
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables

LinkKind = Literal["device", "instrument", "ip"]
_LINK_INDEX = {
    "device": ("by_device", "device_id"),
    "instrument": ("by_instrument", "instrument_id"),
    "ip": ("by_ip", "ip"),
}
_SCORE_FIELDS = ("score", "model_version", "reasons")


class ScoredEvent(BaseModel):
    """An event as stored: the event plus the model score it got when it was scored."""

    model_config = ConfigDict(frozen=True)
    event: Event
    score: Score | None = None


def put_accounts(history: Tables, accounts: Iterable[Account]) -> int:
    return dynamo.batch_put(history.client, history.accounts, (a.model_dump(mode="json") for a in accounts))


def _event_item(event: Event, score: Score | None) -> dict[str, Any]:
    item = event.model_dump(mode="json")
    item["ts"] = utc_iso(event.ts)
    item["sk"] = f"{sort_key_ts(event.ts)}#{event.event_id}"
    if score is not None:
        item |= score.model_dump(mode="json", include=set(_SCORE_FIELDS))
    return item


def put_events(
    history: Tables,
    events: Sequence[Event],
    scores: Mapping[str, Score],
    *,
    workers: int = 8,
    chunk: int = 500,
) -> int:
    """Write events (with their scores) in parallel batches; idempotent by (account, time, id)."""
    chunks = [events[i : i + chunk] for i in range(0, len(events), chunk)]

    def write(part: Sequence[Event]) -> int:
        return dynamo.batch_put(history.client, history.events, (_event_item(e, scores.get(e.event_id)) for e in part))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(write, chunks))


def get_accounts(history: Tables, account_ids: Iterable[str]) -> dict[str, Account]:
    ids = sorted(set(account_ids))
    found: dict[str, Account] = {}
    for i in range(0, len(ids), 100):  # BatchGetItem's limit
        keys = [dynamo.to_item({"account_id": a}) for a in ids[i : i + 100]]
        request: dict[str, Any] = {history.accounts: {"Keys": keys}}
        while request:
            response = dynamo.call(history.client.batch_get_item, RequestItems=request)
            for item in response["Responses"].get(history.accounts, []):
                account = Account.model_validate(dynamo.from_item(item))
                found[account.account_id] = account
            request = response.get("UnprocessedKeys") or {}
    return found


def _scored_event(item: dict[str, Any]) -> ScoredEvent:
    score_fields = {k: item.pop(k) for k in _SCORE_FIELDS if k in item}
    item.pop("sk", None)
    event = Event.model_validate(item)
    score = Score(event_id=event.event_id, **score_fields) if "score" in score_fields else None
    return ScoredEvent(event=event, score=score)


def account_events(
    history: Tables, account_id: str, *, start: datetime, end: datetime, max_items: int
) -> tuple[list[ScoredEvent], bool]:
    """The account's events in [start, end], oldest first, at most max_items (the newest kept)."""
    items, cut = dynamo.query_all(
        history.client,
        max_items=max_items,
        table=history.events,
        key_condition="account_id = :a AND sk BETWEEN :s AND :e",
        values={":a": account_id, ":s": sort_key_ts(start), ":e": sort_key_ts(end) + "~"},
        forward=False,  # newest first, so a cut drops the oldest
    )
    return [_scored_event(i) for i in reversed(items)], cut


def linked_events(
    history: Tables, kind: LinkKind, value: str, *, start: datetime, end: datetime, max_items: int
) -> tuple[list[ScoredEvent], bool]:
    """Events on a device, instrument or IP in [start, end] across all accounts, newest first."""
    index, key = _LINK_INDEX[kind]
    items, cut = dynamo.query_all(
        history.client,
        max_items=max_items,
        table=history.events,
        index=index,
        key_condition="#k = :v AND sk BETWEEN :s AND :e",
        names={"#k": key},
        values={":v": value, ":s": sort_key_ts(start), ":e": sort_key_ts(end) + "~"},
        forward=False,
    )
    return [_scored_event(i) for i in items], cut


def newest_event_ts(history: Tables, account_id: str) -> datetime | None:
    """When the account's newest stored event happened (None without events): one item, newest first."""
    page = dynamo.query_page(
        history.client,
        table=history.events,
        key_condition="account_id = :a",
        values={":a": account_id},
        limit=1,
        forward=False,
    )
    return datetime.fromisoformat(page.items[0]["ts"]) if page.items else None
