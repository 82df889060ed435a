"""Cases: the bundle's case plus what the service adds (status, assignee, the latest typology, the decision).

A case's status and decision survive reloading its bundle (`if_not_exists`); closing and assigning are
conditional writes made atomically with their audit record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from fraudagent.core.errors import Conflict, NotFound
from fraudagent.core.models import Action, Case, Disposition, Priority, Typology, sort_key_ts
from fraudagent.store import audit, dynamo
from fraudagent.store.tables import Tables

CaseStatus = Literal["open", "closed"]
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
    alert_id: str | None = Field(default=None, description="the alert that opened the case (alert intake)")
    alert_event_ids: list[str] = Field(default=[], description="the scored events the alert named")


# Set by the service, never by a bundle: a reload keeps them.
_SERVICE_FIELDS = {"status", "assignee", "suggested_typology", "decision", "alert_id", "alert_event_ids"}


def put_case(history: Tables, record: CaseRecord) -> None:
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


def _new_item(record: CaseRecord) -> dict[str, Any]:
    item = record.model_dump(mode="json")
    fields = {**item.pop("case"), **item, "opened_sk": f"{sort_key_ts(record.case.opened_at)}#{record.case.case_id}"}
    return dynamo.to_item({k: v for k, v in fields.items() if v is not None})


def create_case(
    history: Tables, record: CaseRecord, *, event: audit.AuditEvent, with_writes: Sequence[dict[str, Any]] = ()
) -> bool:
    """Insert a new case with its audit record and `with_writes` (unconditional TransactWriteItems entries on other
    items, e.g. its first report: `reports.report_writes`), atomically; False (and nothing written) when the case id
    exists."""
    try:
        dynamo.call(
            history.client.transact_write_items,
            TransactItems=[
                {
                    "Put": {
                        "TableName": history.cases,
                        "Item": _new_item(record),
                        "ConditionExpression": "attribute_not_exists(case_id)",
                    }
                },
                audit.put_request(history, event),
                *with_writes,
            ],
        )
    except ClientError as error:
        if not dynamo.conditional_check_failed(error):
            raise
        return False
    return True


def close_case(
    history: Tables,
    *,
    case_id: str,
    decision: CaseDecision,
    event: audit.AuditEvent,
    also: list[dict[str, Any]] | None = None,
) -> None:
    """Close an open case with the analyst's decision and its audit record (and `also`: more writes, such as the
    decision's agreement with the latest report), atomically.

    NotFound for an unknown case; Conflict when the case is already closed (a decision is made once).
    """
    transact(
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
            *(also or []),
        ],
        case_id=case_id,
        conflict="the case is closed; a decision is made once",
    )


def assign_case(history: Tables, *, case_id: str, assignee: str, event: audit.AuditEvent) -> None:
    """Set who works an open case, with its audit record."""
    transact(
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


def transact(
    history: Tables, items: list[dict[str, Any]], *, case_id: str, conflict: str = "changed meanwhile"
) -> None:
    try:
        dynamo.call(history.client.transact_write_items, TransactItems=items)
    except ClientError as error:
        if not dynamo.conditional_check_failed(error):
            raise
        get_case(history, case_id)  # NotFound when the case does not exist
        raise Conflict("case", case_id, conflict) from None


def _case_record(item: dict[str, Any]) -> CaseRecord:
    case_fields = {k: item[k] for k in Case.model_fields if k in item}
    rest = {k: item[k] for k in CaseRecord.model_fields if k in item and k != "case"}
    return CaseRecord(case=Case.model_validate(case_fields), **rest)


def get_case(history: Tables, case_id: str) -> CaseRecord:
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
    opened_after: datetime | None = Field(
        default=None, description="opened at or after (the case's age); a key condition"
    )
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
    history: Tables,
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
