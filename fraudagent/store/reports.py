"""Reports: every report drafted for a case (JSON), newest first, with the evidence snapshot it was drafted from."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from fraudagent.core.errors import NotFound
from fraudagent.core.models import sort_key_ts, utc_iso
from fraudagent.store import audit, dynamo, feedback
from fraudagent.store.cases import transact
from fraudagent.store.tables import Tables

MAX_SNAPSHOT_BYTES = 300_000  # compressed; a DynamoDB item holds at most 400 KB


def put_report(
    history: Tables,
    *,
    case_id: str,
    report: Mapping[str, Any],
    snapshot: str | None = None,
    created: datetime | None = None,
) -> str:
    """Store a report (with `snapshot`, the evidence pack as JSON, compressed beside it so the report can be
    replayed), its stats for the quality figures, note its typology on the case and write the audit record, in one
    transaction. `created` is now unless given (imports of older history)."""
    created = created or datetime.now(timezone.utc)
    items = report_writes(history, case_id=case_id, report=report, snapshot=snapshot, created=created)
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
    transact(history, items, case_id=case_id)
    return created_sort_key(report, created)


def created_sort_key(report: Mapping[str, Any], created: datetime) -> str:
    return f"{sort_key_ts(created)}#{report['report_id']}"


def report_writes(
    history: Tables, *, case_id: str, report: Mapping[str, Any], snapshot: str | None, created: datetime
) -> list[dict[str, Any]]:
    """A report's writes for TransactWriteItems: the report (and its snapshot), its audit record, its stats. The
    case's `suggested_typology` is the caller's to set (`put_report` updates it; a case opened with its report
    carries it)."""
    item = dynamo.to_item(
        {
            "case_id": case_id,
            "created_sk": created_sort_key(report, created),
            "created_at": utc_iso(created),
            "report_id": report["report_id"],
            "report": json.dumps(report),
        }
    )
    if snapshot is not None:
        packed = zlib.compress(snapshot.encode(), 6)
        if len(packed) <= MAX_SNAPSHOT_BYTES:
            item["snapshot"] = {"B": packed}
    event = audit.new_event(
        subject=audit.case_subject(case_id),
        action="report.drafted",
        actor=report.get("requested_by") or "unknown",
        details={
            k: report.get(k) for k in ("report_id", "path", "model", "typology", "prompt_version", "evidence_hash")
        },
    )
    return [
        {"Put": {"TableName": history.reports, "Item": item}},
        audit.put_request(history, event),
        feedback.stats_put(history, feedback.report_stats(report, case_id=case_id, created=created), created=created),
    ]


def _report_item(history: Tables, *, case_id: str, report_id: str) -> dict[str, Any]:
    """The stored item of one of the case's reports (a case has few reports: a filtered Query); NotFound if none."""
    kwargs: dict[str, Any] = {
        "TableName": history.reports,
        "KeyConditionExpression": "case_id = :c",
        "FilterExpression": "report_id = :r",
        "ExpressionAttributeValues": dynamo.to_item({":c": case_id, ":r": report_id}),
    }
    while True:
        response = dynamo.call(history.client.query, **kwargs)
        for raw in response.get("Items", []):
            return dict(raw)
        if "LastEvaluatedKey" not in response:
            raise NotFound(f"report of case {case_id}", report_id)
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def report_with_snapshot(history: Tables, *, case_id: str, report_id: str) -> tuple[dict[str, Any], str]:
    """A stored report and the evidence snapshot it was drafted from."""
    raw = _report_item(history, case_id=case_id, report_id=report_id)
    if "snapshot" not in raw:
        raise NotFound("evidence snapshot of report", report_id)
    return json.loads(raw["report"]["S"]), zlib.decompress(raw["snapshot"]["B"]).decode()


def reports(history: Tables, case_id: str, *, limit: int = 20) -> list[dict[str, Any]]:
    """The case's reports, newest first."""
    return report_page(history, case_id, limit=limit)[0]


def report_page(
    history: Tables, case_id: str, *, limit: int = 20, cursor: str | None = None
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


def get_report(history: Tables, *, case_id: str, report_id: str) -> dict[str, Any]:
    """One of the case's reports; NotFound when the case has no report with that id."""
    report: dict[str, Any] = json.loads(_report_item(history, case_id=case_id, report_id=report_id)["report"]["S"])
    return report
