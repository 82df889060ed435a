"""Eval-run records in DynamoDB: create, read, list, and status changes guarded by conditional writes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from fraudagent.core.errors import NotFound
from fraudagent.core.models import sort_key_ts, utc_iso
from fraudagent.evalruns.models import EvalRun, EvalRunPage, EvalRunRequest, RunStatus
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables

KIND = "evalrun"  # the one partition of the by_created index


class StatusChanged(Exception):
    """The run is no longer in the status a write expected (another process moved it)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def new_run_id() -> str:
    return "ev-" + uuid.uuid4().hex[:12]


def create_run(
    tables: Tables, *, run_id: str, request: EvalRunRequest, requested_by: str, caller_key_id: str
) -> EvalRun:
    now = _now()
    item = {
        "run_id": run_id,
        "kind": KIND,
        "created_sk": f"{sort_key_ts(now)}#{run_id}",
        "status": "queued",
        "created_at": utc_iso(now),
        "requested_by": requested_by,
        "caller_key_id": caller_key_id,
        **request.model_dump(),
    }
    dynamo.call(
        tables.client.put_item,
        TableName=tables.evalruns,
        Item=dynamo.to_item(item),
        ConditionExpression="attribute_not_exists(run_id)",
    )
    return _run(item)


def _run(item: Mapping[str, Any]) -> EvalRun:
    return EvalRun.model_validate({k: v for k, v in item.items() if k in EvalRun.model_fields})


def get_run(tables: Tables, run_id: str) -> EvalRun:
    return _run(get_item(tables, run_id))


def get_item(tables: Tables, run_id: str) -> dict[str, Any]:
    response = dynamo.call(
        tables.client.get_item, TableName=tables.evalruns, Key=dynamo.to_item({"run_id": run_id}), ConsistentRead=True
    )
    if "Item" not in response:
        raise NotFound("eval run", run_id)
    return dynamo.from_item(response["Item"])


def request_of(item: Mapping[str, Any]) -> EvalRunRequest:
    return EvalRunRequest.model_validate({k: item[k] for k in EvalRunRequest.model_fields if item.get(k) is not None})


def list_runs(
    tables: Tables, *, status: RunStatus | None = None, limit: int = 50, cursor: str | None = None
) -> EvalRunPage:
    """Runs newest first; with `status`, only those (filtered on the page, so a page may hold fewer than `limit`)."""
    page = dynamo.query_page(
        tables.client,
        table=tables.evalruns,
        index="by_created",
        key_condition="#k = :k",
        names={"#k": "kind"},
        values={":k": KIND},
        limit=limit,
        start_token=cursor,
        forward=False,
    )
    runs = [_run(i) for i in page.items]
    return EvalRunPage(items=[r for r in runs if status is None or r.status == status], next_cursor=page.next_token)


def update(tables: Tables, run_id: str, *, expect: tuple[RunStatus, ...], values: Mapping[str, Any]) -> None:
    """Set `values` on the run if its status is one of `expect`; otherwise raise StatusChanged."""
    fields = {k: v for k, v in values.items() if v is not None}
    names = {f"#f{i}": k for i, k in enumerate(fields)} | {"#status": "status"}
    placeholders = {f":v{i}": v for i, v in enumerate(fields.values())}
    expected = {f":e{i}": s for i, s in enumerate(expect)}
    try:
        dynamo.call(
            tables.client.update_item,
            TableName=tables.evalruns,
            Key=dynamo.to_item({"run_id": run_id}),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ConditionExpression="#status IN (" + ", ".join(expected) + ")",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=dynamo.to_item(placeholders | expected),
        )
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise StatusChanged(run_id) from None
        raise


def claim(tables: Tables, run_id: str) -> bool:
    """Move a queued run to running; False when another process claimed it first."""
    now = utc_iso(_now())
    try:
        update(tables, run_id, expect=("queued",), values={"status": "running", "started_at": now, "heartbeat_at": now})
    except StatusChanged:
        return False
    return True


def heartbeat(tables: Tables, run_id: str, *, progress: Mapping[str, Any] | None = None) -> None:
    update(tables, run_id, expect=("running",), values={"heartbeat_at": utc_iso(_now()), "progress": progress})


def finish(tables: Tables, run_id: str, *, status: RunStatus, values: Mapping[str, Any]) -> None:
    update(tables, run_id, expect=("running",), values={"status": status, "finished_at": utc_iso(_now()), **values})


def _all(tables: Tables, status: RunStatus) -> list[EvalRun]:
    """Every run with a status (bounded: the 2,000 newest runs are read)."""
    found, cursor = [], None
    for _ in range(20):
        page = list_runs(tables, status=status, limit=100, cursor=cursor)
        found += page.items
        cursor = page.next_cursor
        if not cursor:
            break
    return found


def stale_runs(tables: Tables, *, heartbeat_s: float) -> list[EvalRun]:
    """Running runs whose heartbeat stopped (their process died): four heartbeats missed."""
    cutoff = _now() - timedelta(seconds=4 * heartbeat_s)
    return [r for r in _all(tables, "running") if (r.heartbeat_at or r.created_at) < cutoff]


def queued_runs(tables: Tables) -> list[EvalRun]:
    """Queued runs, oldest first."""
    return sorted(_all(tables, "queued"), key=lambda r: r.created_at)
