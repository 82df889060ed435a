"""The store's history in DynamoDB: accounts, events with their scores, cases and reports.

Plain functions over a `History` handle (client + table names). Reads are
paged and bounded; every bound that cut a result says so.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from fraudagent.core.errors import NotFound
from fraudagent.core.models import Account, Case, Event, Score, sort_key_ts, utc_iso
from fraudagent.core.settings import Settings
from fraudagent.tools import dynamo

CaseStatus = Literal["open", "closed"]
LinkKind = Literal["device", "instrument", "ip"]
_LINK_INDEX = {"device": ("by_device", "device_id"), "instrument": ("by_instrument", "instrument_id"), "ip": ("by_ip", "ip")}
_SCORE_FIELDS = ("score", "model_version", "reasons")


@dataclass(frozen=True)
class History:
    client: Any
    accounts: str
    events: str
    cases: str
    reports: str

    @classmethod
    def connect(cls, settings: Settings) -> History:
        name = lambda spec: dynamo.table_name(settings, spec)  # noqa: E731
        return cls(
            client=dynamo.make_client(settings),
            accounts=name(dynamo.ACCOUNTS),
            events=name(dynamo.EVENTS),
            cases=name(dynamo.CASES),
            reports=name(dynamo.REPORTS),
        )


class ScoredEvent(BaseModel):
    """An event as stored: the event plus the model score it got when it was scored."""

    model_config = ConfigDict(frozen=True)
    event: Event
    score: Score | None = None


class CaseRecord(BaseModel):
    """A case as stored: the bundle's case plus what the store needs to serve and export it."""

    model_config = ConfigDict(frozen=True)
    case: Case
    status: CaseStatus = "open"
    account_ids: list[str]
    past_case_ids: list[str] = []
    window_start: datetime | None = None
    window_end: datetime | None = None
    max_score: float | None = None


# --- writes -------------------------------------------------------------------


def put_accounts(history: History, accounts: Iterable[Account]) -> int:
    return dynamo.batch_put(history.client, history.accounts, (a.model_dump(mode="json") for a in accounts))


def _event_item(event: Event, score: Score | None) -> dict[str, Any]:
    item = event.model_dump(mode="json")
    item["ts"] = utc_iso(event.ts)
    item["sk"] = f"{sort_key_ts(event.ts)}#{event.event_id}"
    if score is not None:
        item |= score.model_dump(mode="json", include=set(_SCORE_FIELDS))
    return item


def put_events(
    history: History,
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


def put_case(history: History, record: CaseRecord) -> None:
    """Insert or refresh a case from a bundle; a case's status and decisions survive a reload."""
    item = record.model_dump(mode="json", exclude={"status"})
    fields = {**item.pop("case"), **item, "opened_sk": f"{sort_key_ts(record.case.opened_at)}#{record.case.case_id}"}
    fields = {k: v for k, v in fields.items() if v is not None and k != "case_id"}
    names = {f"#f{i}": k for i, k in enumerate(fields)} | {"#status": "status"}
    values = {f":v{i}": v for i, v in enumerate(fields.values())} | {":open": "open"}
    sets = [f"#f{i} = :v{i}" for i in range(len(fields))] + ["#status = if_not_exists(#status, :open)"]
    dynamo.call(
        history.client.update_item,
        TableName=history.cases,
        Key=dynamo.to_item({"case_id": record.case.case_id}),
        UpdateExpression="SET " + ", ".join(sets),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=dynamo.to_item(values),
    )


MAX_SNAPSHOT_BYTES = 300_000  # compressed; a DynamoDB item holds at most 400 KB


def put_report(history: History, *, case_id: str, report: Mapping[str, Any], snapshot: str | None = None) -> str:
    """Store a report; with `snapshot` (the evidence pack as JSON), compressed beside it so the report can be replayed."""
    created = datetime.now(timezone.utc)
    created_sk = f"{sort_key_ts(created)}#{report['report_id']}"
    item = dynamo.to_item(
        {"case_id": case_id, "created_sk": created_sk, "created_at": utc_iso(created), "report_id": report["report_id"],
         "report": json.dumps(report)}
    )  # fmt: skip
    if snapshot is not None:
        packed = zlib.compress(snapshot.encode(), 6)
        if len(packed) <= MAX_SNAPSHOT_BYTES:
            item["snapshot"] = {"B": packed}
    dynamo.call(history.client.put_item, TableName=history.reports, Item=item)
    return created_sk


def report_with_snapshot(history: History, *, case_id: str, report_id: str) -> tuple[dict[str, Any], str]:
    """A stored report and the evidence snapshot it was drafted from (a case has few reports: filtered Query)."""
    kwargs: dict[str, Any] = {
        "TableName": history.reports,
        "KeyConditionExpression": "case_id = :c",
        "FilterExpression": "report_id = :r",
        "ExpressionAttributeValues": dynamo.to_item({":c": case_id, ":r": report_id}),
    }
    while True:
        response = dynamo.call(history.client.query, **kwargs)
        for raw in response.get("Items", []):
            if "snapshot" not in raw:
                raise NotFound("evidence snapshot of report", report_id)
            snapshot = zlib.decompress(raw["snapshot"]["B"]).decode()
            return json.loads(raw["report"]["S"]), snapshot
        if "LastEvaluatedKey" not in response:
            raise NotFound("report", report_id)
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# --- reads --------------------------------------------------------------------


def _case_record(item: dict[str, Any]) -> CaseRecord:
    case_fields = {k: item[k] for k in Case.model_fields if k in item}
    rest = {k: item[k] for k in CaseRecord.model_fields if k in item and k != "case"}
    return CaseRecord(case=Case.model_validate(case_fields), **rest)


def get_case(history: History, case_id: str) -> CaseRecord:
    response = dynamo.call(
        history.client.get_item, TableName=history.cases, Key=dynamo.to_item({"case_id": case_id}), ConsistentRead=True
    )
    if "Item" not in response:
        raise NotFound("case", case_id)
    return _case_record(dynamo.from_item(response["Item"]))


def list_cases(
    history: History, *, status: CaseStatus = "open", limit: int = 50, cursor: str | None = None
) -> tuple[list[CaseRecord], str | None]:
    """A page of cases with a status, newest first."""
    page = dynamo.query_page(
        history.client,
        table=history.cases,
        index="by_status",
        key_condition="#s = :s",
        names={"#s": "status"},
        values={":s": status},
        limit=limit,
        start_token=cursor,
        forward=False,
    )
    return [_case_record(i) for i in page.items], page.next_token


def get_accounts(history: History, account_ids: Iterable[str]) -> dict[str, Account]:
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
    history: History, account_id: str, *, start: datetime, end: datetime, max_items: int
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
    history: History, kind: LinkKind, value: str, *, start: datetime, end: datetime, max_items: int
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


def reports(history: History, case_id: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The case's reports, newest first."""
    page = dynamo.query_page(
        history.client,
        table=history.reports,
        key_condition="case_id = :c",
        values={":c": case_id},
        limit=limit,
        forward=False,
    )
    return [json.loads(i["report"]) for i in page.items]


def newest_event_ts(history: History, account_id: str) -> datetime | None:
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
