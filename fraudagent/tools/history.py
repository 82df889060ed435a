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

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from fraudagent.core.errors import Conflict, NotFound
from fraudagent.core.models import (
    Account,
    Action,
    Case,
    Disposition,
    Event,
    Priority,
    Score,
    Typology,
    sort_key_ts,
    utc_iso,
)
from fraudagent.core.settings import Settings
from fraudagent.tools import audit, dynamo

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
    keys: str
    audit: str

    @classmethod
    def connect(cls, settings: Settings) -> History:
        name = lambda spec: dynamo.table_name(settings, spec)  # noqa: E731
        return cls(
            client=dynamo.make_client(settings),
            accounts=name(dynamo.ACCOUNTS),
            events=name(dynamo.EVENTS),
            cases=name(dynamo.CASES),
            reports=name(dynamo.REPORTS),
            keys=name(dynamo.KEYS),
            audit=name(dynamo.AUDIT),
        )


class ScoredEvent(BaseModel):
    """An event as stored: the event plus the model score it got when it was scored."""

    model_config = ConfigDict(frozen=True)
    event: Event
    score: Score | None = None


NOTES_MAX_CHARS = 2000


class CaseDecision(BaseModel):
    """What an analyst decided when closing a case. `notes` is free text: data, never instructions."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    disposition: Disposition
    typology: Typology
    actions: list[Action] = Field(min_length=1, max_length=len(Action))
    notes: str = Field(default="", max_length=NOTES_MAX_CHARS)
    analyst: str
    decided_at: datetime


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
    assignee: str | None = Field(default=None, description="the analyst working the case")
    suggested_typology: Typology | None = Field(default=None, description="the typology of the latest report")
    decision: CaseDecision | None = Field(default=None, description="set when an analyst closed the case")


# Set by the service, never by a bundle: a reload keeps them.
_SERVICE_FIELDS = {"status", "assignee", "suggested_typology", "decision"}


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
    item = record.model_dump(mode="json", exclude=_SERVICE_FIELDS)
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
    """Store a report (with `snapshot`, the evidence pack as JSON, compressed beside it so the report can be
    replayed), note its typology on the case and write the audit record, in one transaction."""
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
    event = audit.new_event(
        subject=audit.case_subject(case_id),
        action="report.drafted",
        actor=report.get("requested_by") or "unknown",
        details={k: report.get(k) for k in ("report_id", "path", "model", "typology", "prompt_version", "evidence_hash")},
    )
    items: list[dict[str, Any]] = [{"Put": {"TableName": history.reports, "Item": item}}, audit.put_request(history, event)]
    if report.get("typology"):
        items.append(
            {
                "Update": {
                    "TableName": history.cases,
                    "Key": dynamo.to_item({"case_id": case_id}),
                    "UpdateExpression": "SET suggested_typology = :t",
                    "ConditionExpression": "attribute_exists(case_id)",
                    "ExpressionAttributeValues": dynamo.to_item({":t": report["typology"]}),
                }
            }
        )
    _transact(history, items, case_id=case_id)
    return created_sk


def close_case(history: History, *, case_id: str, decision: CaseDecision, event: audit.AuditEvent) -> None:
    """Close an open case with the analyst's decision and its audit record, atomically.

    NotFound for an unknown case; Conflict when the case is already closed (a decision is made once).
    """
    _transact(
        history,
        [
            {
                "Update": {
                    "TableName": history.cases,
                    "Key": dynamo.to_item({"case_id": case_id}),
                    "UpdateExpression": "SET #status = :closed, decision = :d",
                    "ConditionExpression": "attribute_exists(case_id) AND #status = :open",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": dynamo.to_item(
                        {":closed": "closed", ":open": "open", ":d": decision.model_dump(mode="json")}
                    ),
                }
            },
            audit.put_request(history, event),
        ],
        case_id=case_id,
        conflict="the case is closed; a decision is made once",
    )


def assign_case(history: History, *, case_id: str, assignee: str, event: audit.AuditEvent) -> None:
    """Set who works an open case, with its audit record."""
    _transact(
        history,
        [
            {
                "Update": {
                    "TableName": history.cases,
                    "Key": dynamo.to_item({"case_id": case_id}),
                    "UpdateExpression": "SET assignee = :a",
                    "ConditionExpression": "attribute_exists(case_id) AND #status = :open",
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": dynamo.to_item({":a": assignee, ":open": "open"}),
                }
            },
            audit.put_request(history, event),
        ],
        case_id=case_id,
        conflict="the case is closed",
    )


def _transact(history: History, items: list[dict[str, Any]], *, case_id: str, conflict: str = "changed meanwhile") -> None:
    try:
        dynamo.call(history.client.transact_write_items, TransactItems=items)
    except ClientError as error:
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
        if "ConditionalCheckFailed" not in reasons:
            raise
        get_case(history, case_id)  # NotFound when the case does not exist
        raise Conflict("case", case_id, conflict) from None


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


class CaseFilters(BaseModel):
    """Filters of the case list, applied to the status partition of `by_status` (newest first)."""

    priority: Priority | None = None
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)
    max_score: float | None = Field(default=None, ge=0.0, le=1.0)
    typology: Typology | None = Field(default=None, description="the latest report's typology, or the decided one")
    assignee: str | None = Field(default=None, max_length=200)
    opened_after: datetime | None = Field(default=None, description="opened at or after (the case's age); a key condition")
    opened_before: datetime | None = Field(default=None, description="opened before; a key condition")

    def key_condition(self) -> tuple[str, dict[str, Any]]:
        """The index's key condition: the status, and the opening time range (read cost only for what is in it)."""
        after = sort_key_ts(self.opened_after) if self.opened_after is not None else None
        before = sort_key_ts(self.opened_before) if self.opened_before is not None else None
        if after is not None and before is not None:
            return "#s = :s AND opened_sk BETWEEN :after AND :before", {":after": after, ":before": before}
        if after is not None:
            return "#s = :s AND opened_sk >= :after", {":after": after}
        if before is not None:
            return "#s = :s AND opened_sk < :before", {":before": before}
        return "#s = :s", {}

    def expression(self) -> tuple[str | None, dict[str, str], dict[str, Any]]:
        parts: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if self.priority is not None:
            parts.append("#priority = :priority")
            names["#priority"] = "priority"
            values[":priority"] = self.priority.value
        # Scores compare at 6 decimals: DynamoDB numbers refuse values such as 5e-324.
        if self.min_score is not None:
            parts.append("max_score >= :min_score")
            values[":min_score"] = round(self.min_score, 6)
        if self.max_score is not None:
            parts.append("max_score <= :max_score")
            values[":max_score"] = round(self.max_score, 6)
        if self.typology is not None:
            parts.append("(suggested_typology = :typology OR #decision.typology = :typology)")
            names["#decision"] = "decision"
            values[":typology"] = self.typology.value
        if self.assignee is not None:
            parts.append("assignee = :assignee")
            values[":assignee"] = self.assignee
        return (" AND ".join(parts) or None), names, values


def list_cases(
    history: History,
    *,
    status: CaseStatus = "open",
    limit: int = 50,
    cursor: str | None = None,
    filters: CaseFilters | None = None,
    max_scanned: int = 1000,
) -> tuple[list[CaseRecord], str | None]:
    """A page of cases with a status, newest first, optionally filtered.

    Without filters a page is one Query of `limit` items. With filters DynamoDB reads the status partition
    in order and drops what does not match (read cost is per item read, not per item returned), so a page
    reads at most `max_scanned` cases: a sparse filter can return a short page (even an empty one) with a
    cursor to continue from.
    """
    filters = filters or CaseFilters()
    condition, filter_names, filter_values = filters.expression()
    key_condition, key_values = filters.key_condition()
    names = {"#s": "status"} | filter_names
    values: dict[str, Any] = {":s": status} | key_values | filter_values
    found: list[dict[str, Any]] = []
    token, scanned = cursor, 0
    while True:
        kwargs: dict[str, Any] = {
            "TableName": history.cases,
            "IndexName": "by_status",
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": dynamo.to_item(values),
            "ScanIndexForward": False,
            "Limit": limit - len(found),
        }
        if condition:  # read ahead: most items read may not match
            kwargs["FilterExpression"] = condition
            kwargs["Limit"] = min(max(limit * 4, 50), max_scanned - scanned)
        response = dynamo.query_from(history.client, kwargs, token)
        scanned += int(response.get("ScannedCount", 0))
        items = [dynamo.from_item(i) for i in response.get("Items", [])]
        last_key = response.get("LastEvaluatedKey")
        if len(found) + len(items) > limit:  # more matched than fit: continue after the last one returned
            items = items[: limit - len(found)]
            found += items
            last = found[-1]
            return [_case_record(i) for i in found], dynamo.encode_token(
                dynamo.to_item({k: last[k] for k in ("case_id", "status", "opened_sk")})
            )
        found += items
        token = dynamo.encode_token(last_key)
        if token is None or len(found) == limit or (condition and scanned >= max_scanned):
            return [_case_record(i) for i in found], token


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
    return report_page(history, case_id, limit=limit)[0]


def report_page(
    history: History, case_id: str, *, limit: int = 20, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the case's reports, newest first, and the cursor of the next page."""
    page = dynamo.query_page(
        history.client,
        table=history.reports,
        key_condition="case_id = :c",
        values={":c": case_id},
        limit=limit,
        start_token=cursor,
        forward=False,
    )
    return [json.loads(i["report"]) for i in page.items], page.next_token


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
