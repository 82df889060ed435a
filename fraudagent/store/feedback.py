"""Feedback on reports: each report's stats, analysts' verdicts on reports, and decisions' agreement with reports.

One table (`<prefix>-feedback`), keyed by `pk` and `sk`:

    report#<report_id>  stats               the report's model, prompt and policy versions, path, typology, latency,
                                            tokens (written with the report, in its transaction)
    report#<report_id>  verdict#<analyst>   one analyst's verdict (useful, reasons); a new verdict replaces it
    case#<case_id>      agreement           the decision compared with the latest report (written once, at decision)

Every item carries `kind` (report, verdict, agreement) and a time-ordered `at_sk`; the `by_kind` index lists a kind
in time order for the quality figures. Items hold ids, enums and numbers; a verdict's note is the analyst's own text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from fraudagent.core.models import sort_key_ts, utc_iso
from fraudagent.store import audit, dynamo
from fraudagent.store.tables import Tables

Kind = Literal["report", "verdict", "agreement"]


def report_pk(report_id: str) -> str:
    return f"report#{report_id}"


def case_pk(case_id: str) -> str:
    return f"case#{case_id}"


def report_stats(report: Mapping[str, Any], *, case_id: str, created: datetime) -> dict[str, Any]:
    """What the quality figures need of a report, taken from the stored report document."""
    timings = report.get("timings") or {}
    usage = report.get("usage") or {}
    return {
        "report_id": report["report_id"],
        "case_id": case_id,
        "day": created.astimezone(timezone.utc).date().isoformat(),
        "created_at": utc_iso(created),
        "model": str(report.get("model") or ""),
        "prompt_version": str(report.get("prompt_version") or ""),
        "policy_version": str(report.get("policy_version") or ""),
        "typology": str(report.get("typology") or ""),
        "path": str(report.get("path") or ""),
        "latency_s": round(sum(float(v) for v in timings.values() if isinstance(v, (int, float))), 6),
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
    }


def stats_put(history: Tables, stats: Mapping[str, Any], *, created: datetime) -> dict[str, Any]:
    """The report's stats item as a `Put` for the report's own transaction."""
    item = {
        "pk": report_pk(stats["report_id"]),
        "sk": "stats",
        "kind": "report",
        "at_sk": f"{sort_key_ts(created)}#{stats['report_id']}",
        **stats,
    }
    return {"Put": {"TableName": history.feedback, "Item": dynamo.to_item(item)}}


def get_stats(history: Tables, report_id: str) -> dict[str, Any] | None:
    response = dynamo.call(
        history.client.get_item,
        TableName=history.feedback,
        Key=dynamo.to_item({"pk": report_pk(report_id), "sk": "stats"}),
        ConsistentRead=True,
    )
    return dynamo.from_item(response["Item"]) if "Item" in response else None


def get_verdict(history: Tables, *, report_id: str, analyst: str) -> dict[str, Any] | None:
    response = dynamo.call(
        history.client.get_item,
        TableName=history.feedback,
        Key=dynamo.to_item({"pk": report_pk(report_id), "sk": f"verdict#{analyst}"}),
        ConsistentRead=True,
    )
    return dynamo.from_item(response["Item"]) if "Item" in response else None


def verdicts_for(history: Tables, *, report_id: str) -> list[dict[str, Any]]:
    items, _ = dynamo.query_all(
        history.client,
        max_items=1000,
        table=history.feedback,
        key_condition="pk = :p AND begins_with(sk, :v)",
        values={":p": report_pk(report_id), ":v": "verdict#"},
    )
    return items


def put_verdict(history: Tables, *, verdict: Mapping[str, Any], at: datetime, event: audit.AuditEvent) -> None:
    """Store (or replace) an analyst's verdict on a report, with its audit record, atomically."""
    item = {
        "pk": report_pk(verdict["report_id"]),
        "sk": f"verdict#{verdict['analyst']}",
        "kind": "verdict",
        "at_sk": f"{sort_key_ts(at)}#{verdict['report_id']}#{verdict['analyst']}",
        "at": utc_iso(at),
        **verdict,
    }
    dynamo.call(
        history.client.transact_write_items,
        TransactItems=[
            {"Put": {"TableName": history.feedback, "Item": dynamo.to_item(item)}},
            audit.put_request(history, event),
        ],
    )


def agreement_put(history: Tables, agreement: Mapping[str, Any], *, at: datetime) -> dict[str, Any]:
    """A decision's agreement item as a `Put`, so it commits with the decision (once: the case closes once)."""
    item = {
        "pk": case_pk(agreement["case_id"]),
        "sk": "agreement",
        "kind": "agreement",
        "at_sk": f"{sort_key_ts(at)}#{agreement['case_id']}",
        "at": utc_iso(at),
        **agreement,
    }
    return {"Put": {"TableName": history.feedback, "Item": dynamo.to_item(item)}}


def get_agreement(history: Tables, case_id: str) -> dict[str, Any] | None:
    response = dynamo.call(
        history.client.get_item,
        TableName=history.feedback,
        Key=dynamo.to_item({"pk": case_pk(case_id), "sk": "agreement"}),
        ConsistentRead=True,
    )
    return dynamo.from_item(response["Item"]) if "Item" in response else None


def items_of_kind(
    history: Tables, *, kind: Kind, since: datetime, until: datetime | None = None, max_items: int
) -> tuple[list[dict[str, Any]], bool]:
    """Every item of a kind from `since` (to `until`), oldest first; and whether `max_items` cut the list."""
    values: dict[str, Any] = {":k": kind, ":since": sort_key_ts(since)}
    condition = "#k = :k AND at_sk >= :since"
    if until is not None:
        condition = "#k = :k AND at_sk BETWEEN :since AND :until"
        values[":until"] = sort_key_ts(until) + "~"
    return dynamo.query_all(
        history.client,
        max_items=max_items,
        table=history.feedback,
        index="by_kind",
        key_condition=condition,
        names={"#k": "kind"},
        values=values,
    )
