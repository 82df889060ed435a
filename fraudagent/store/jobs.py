"""Summary jobs in DynamoDB: plain functions over the `Tables` handle.

Every state change is one conditional write, and every write a worker makes is
fenced by its lease (`lease_owner` = the worker and the job still `running`), so
a worker that lost its lease (stalled past it, or was presumed dead) can no
longer change the job. Every change appends to the job's `events` (its audit trail).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from fraudagent.core.errors import FraudAgentError, NotFound
from fraudagent.core.models import sort_key_ts, utc_iso
from fraudagent.core.settings import PRIORITIES
from fraudagent.store import audit, dynamo
from fraudagent.store.tables import Tables
from fraudagent.summaries.models import (
    DeliveryAttempt,
    JobPage,
    JobStatus,
    SummaryJob,
    SummaryRequest,
    SummaryResult,
)

IDEMPOTENCY_PREFIX = "idem#"


class LeaseLost(FraudAgentError):
    """The worker no longer holds the job's lease: another worker may own it now."""


class IdempotencyKeyReused(FraudAgentError):
    """The same Idempotency-Key came with a different request body."""


def _now() -> float:
    return time.time()


def _iso(epoch: float) -> str:
    return utc_iso(datetime.fromtimestamp(epoch, timezone.utc))


def _event(what: str, worker: str | None = None) -> list[dict[str, Any]]:
    return [{"at": _iso(_now()), "what": what, **({"worker": worker} if worker else {})}]


_NAME = re.compile(r"#\w+")
_VALUE = re.compile(r":\w+")


def _update(
    tables: Tables, job_id: str, *, update: str, condition: str | None, values: Mapping[str, Any]
) -> dict[str, Any]:
    """One UpdateItem; `#name` placeholders stand for the attribute `name`. Raises LeaseLost when the condition
    fails."""
    text = update + " " + (condition or "")
    kwargs: dict[str, Any] = {
        "TableName": tables.jobs,
        "Key": dynamo.to_item({"job_id": job_id}),
        "UpdateExpression": update,
        "ExpressionAttributeNames": {n: n[1:] for n in set(_NAME.findall(text))},
        "ReturnValues": "ALL_NEW",
    }
    used = set(_VALUE.findall(text))
    if used:
        kwargs["ExpressionAttributeValues"] = dynamo.to_item({k: v for k, v in values.items() if k in used})
    if condition:
        kwargs["ConditionExpression"] = condition
    try:
        return dynamo.from_item(dynamo.call(tables.client.update_item, **kwargs)["Attributes"])
    except ClientError as error:
        if dynamo.conditional_check_failed(error):
            raise LeaseLost(f"job {job_id}: the write's condition failed") from None
        raise


def _job(item: Mapping[str, Any]) -> SummaryJob:
    fields = dict(item)
    for key in ("lease_until",):
        if fields.get(key) is not None:
            fields[key] = datetime.fromtimestamp(float(fields[key]), timezone.utc)
    if fields.get("result"):
        fields["result"] = SummaryResult.model_validate_json(fields["result"])
    return SummaryJob.model_validate({k: v for k, v in fields.items() if k in SummaryJob.model_fields})


# --- creating and reading ----------------------------------------------------------


def request_hash(request: SummaryRequest) -> str:
    return hashlib.sha256(json.dumps(request.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def remember_idempotency_key(tables: Tables, *, caller_key_id: str, key: str, body_hash: str, job_id: str) -> str:
    """Map (caller, key) -> job id with a conditional put; returns the job id the key maps to (maybe an earlier one).

    The same key with a different body raises IdempotencyKeyReused.
    """
    record_id = IDEMPOTENCY_PREFIX + hashlib.sha256(f"{caller_key_id}\x00{key}".encode()).hexdigest()
    item = {"job_id": record_id, "target_job_id": job_id, "body_hash": body_hash, "created_at": _iso(_now())}
    try:
        dynamo.call(
            tables.client.put_item,
            TableName=tables.jobs,
            Item=dynamo.to_item(item),
            ConditionExpression="attribute_not_exists(job_id)",
        )
        return job_id
    except ClientError as error:
        if not dynamo.conditional_check_failed(error):
            raise
    existing = dynamo.from_item(
        dynamo.call(
            tables.client.get_item,
            TableName=tables.jobs,
            Key=dynamo.to_item({"job_id": record_id}),
            ConsistentRead=True,
        )["Item"]
    )
    if existing["body_hash"] != body_hash:
        raise IdempotencyKeyReused("this Idempotency-Key was used with a different request body")
    return str(existing["target_job_id"])


def create_job(
    tables: Tables,
    *,
    job_id: str,
    request: SummaryRequest,
    fields: list[str],
    redact_pii: bool,
    requested_by: str,
    caller_key_id: str,
    priority: str = "medium",
    draft: bool = False,
    event: audit.AuditEvent | None = None,
) -> tuple[SummaryJob, bool]:
    """Queue a job under `job_id` unless it exists already (a retried request); returns it and whether it was
    created. Workers take queued jobs by `priority` (the case's: critical first), then oldest first. A `draft` job
    drafts a model report even when the case has a report from the policy alone (triage on arrival). With `event`,
    the job and that audit record are written in one transaction (neither when the job exists)."""
    now = _now()
    created_sk = f"{sort_key_ts(datetime.fromtimestamp(now, timezone.utc))}#{job_id}"
    item = {
        "job_id": job_id,
        "kind": "draft" if draft else "summary",
        "status": "queued",
        "created_sk": created_sk,
        "queue_sk": f"{PRIORITIES.index(priority)}#{created_sk}",
        "priority": priority,
        "draft": draft,
        "created_at": _iso(now),
        "updated_at": _iso(now),
        "case_id": request.case_id,
        "format": request.format,
        "callback_url": request.callback_url,
        "fields": fields,
        "redact_pii": redact_pii,
        "requested_by": requested_by,
        "caller_key_id": caller_key_id,
        "attempts": 0,
        "deliveries": [],
        "events": _event(f"queued by {requested_by}"),
    }
    put = {
        "TableName": tables.jobs,
        "Item": dynamo.to_item(item),
        "ConditionExpression": "attribute_not_exists(job_id)",
    }
    try:
        if event is None:
            dynamo.call(tables.client.put_item, **put)
        else:
            dynamo.call(
                tables.client.transact_write_items, TransactItems=[{"Put": put}, audit.put_request(tables, event)]
            )
        return _job(item), True
    except ClientError as error:
        if not dynamo.conditional_check_failed(error):  # not a transaction cancelled for another reason
            raise
    return get_job(tables, job_id), False


def get_item(tables: Tables, job_id: str) -> dict[str, Any]:
    response = dynamo.call(
        tables.client.get_item, TableName=tables.jobs, Key=dynamo.to_item({"job_id": job_id}), ConsistentRead=True
    )
    if "Item" not in response or job_id.startswith(IDEMPOTENCY_PREFIX):
        raise NotFound("summary job", job_id)
    return dynamo.from_item(response["Item"])


def get_job(tables: Tables, job_id: str) -> SummaryJob:
    return _job(get_item(tables, job_id))


def list_jobs(
    tables: Tables, *, status: JobStatus, limit: int = 50, cursor: str | None = None, caller_key_id: str | None = None
) -> JobPage:
    """Jobs with a status, oldest first (`dead` is the dead-letter list); only the caller's unless caller_key_id is
    None."""
    page = dynamo.query_page(
        tables.client,
        table=tables.jobs,
        index="by_status",
        key_condition="#s = :s",
        names={"#s": "status"},
        values={":s": status},
        limit=limit,
        start_token=cursor,
    )
    items = [i for i in page.items if caller_key_id is None or i.get("caller_key_id") == caller_key_id]
    # The index holds a projection that may lag the table; read each job consistently.
    return JobPage(items=[get_job(tables, i["job_id"]) for i in items], next_cursor=page.next_token)


def queue_depth(tables: Tables) -> int:
    """Jobs waiting or being worked (status queued or running): the number /metrics exports."""
    total = 0
    for status in ("queued", "running"):
        kwargs: dict[str, Any] = {
            "TableName": tables.jobs,
            "IndexName": "by_status",
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": dynamo.to_item({":s": status}),
            "Select": "COUNT",
        }
        while True:
            response = dynamo.call(tables.client.query, **kwargs)
            total += int(response["Count"])
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return total


# --- the worker's side: claim, heartbeat, result, delivery, end -------------------


def claimable(tables: Tables, *, limit: int = 10) -> list[str]:
    """Job ids a worker may try to claim: queued ones by priority (critical first), shuffled within a priority so
    that workers lose fewer races on the same head of the queue; then running ones whose lease expired."""
    queued = dynamo.query_page(
        tables.client,
        table=tables.jobs,
        index="by_queue",
        key_condition="#s = :s",
        names={"#s": "status"},
        values={":s": "queued"},
        limit=limit,
    )
    ranks: dict[str, list[str]] = {}
    for item in queued.items:
        ranks.setdefault(str(item["queue_sk"]).split("#", 1)[0], []).append(item["job_id"])
    ids: list[str] = []
    for rank in sorted(ranks):
        group = ranks[rank]
        random.shuffle(group)
        ids += group
    if len(ids) < limit:
        now = _now()
        running = dynamo.query_page(
            tables.client,
            table=tables.jobs,
            index="by_status",
            key_condition="#s = :s",
            names={"#s": "status"},
            values={":s": "running"},
            limit=100,
        )
        ids += [i["job_id"] for i in running.items if float(i.get("lease_until", 0)) < now][: limit - len(ids)]
    return ids


def claim(tables: Tables, *, job_id: str, worker: str, lease_s: float) -> SummaryJob | None:
    """Take the job if it is queued or its lease expired: one conditional write; None if another worker won."""
    now = _now()
    try:
        item = _update(
            tables,
            job_id,
            update=(
                "SET #status = :running, #lease_owner = :me, #lease_until = :until, #updated_at = :at, "
                "#attempts = if_not_exists(#attempts, :zero) + :one, #events = list_append(#events, :ev)"
            ),
            condition="#status = :queued OR (#status = :running AND #lease_until < :now)",
            values={
                ":running": "running",
                ":queued": "queued",
                ":me": worker,
                ":until": now + lease_s,
                ":now": now,
                ":at": _iso(now),
                ":zero": 0,
                ":one": 1,
                ":ev": _event("claimed", worker),
            },
        )
    except LeaseLost:
        return None
    return _job(item)


_MINE = "#status = :running AND #lease_owner = :me"


def extend_lease(tables: Tables, *, job_id: str, worker: str, lease_s: float) -> None:
    """Heartbeat: push the lease forward; LeaseLost if the worker no longer holds it."""
    _update(
        tables,
        job_id,
        update="SET #lease_until = :until",
        condition=_MINE,
        values={":running": "running", ":me": worker, ":until": _now() + lease_s},
    )


def save_result(tables: Tables, *, job_id: str, worker: str, result: SummaryResult, done: bool) -> SummaryJob:
    """Store the rendered summary; without a callback the job is done with it."""
    now = _now()
    update = "SET #result = :result, #updated_at = :at, #events = list_append(#events, :ev)"
    if done:
        update += ", #status = :done REMOVE #lease_owner, #lease_until"
    item = _update(
        tables,
        job_id,
        update=update,
        condition=_MINE,
        values={
            ":running": "running",
            ":me": worker,
            ":result": result.model_dump_json(),
            ":at": _iso(now),
            ":done": "done",
            ":ev": _event("summary rendered" + (", done" if done else ""), worker),
        },
    )
    return _job(item)


def begin_delivery(tables: Tables, *, job_id: str, worker: str, attempt: DeliveryAttempt, lease_s: float) -> None:
    """Record an attempt as `sending` before the request goes out, and extend the lease to cover it.

    Fenced three ways: the worker holds the lease, nothing was delivered yet, and no other attempt was
    appended since the worker read the job (the list still has attempt.attempt - 1 entries).
    """
    now = _now()
    _update(
        tables,
        job_id,
        update="SET #deliveries = list_append(#deliveries, :attempt), #lease_until = :until, #updated_at = :at",
        condition=_MINE + " AND attribute_not_exists(#delivered_at) AND size(#deliveries) = :before",
        values={
            ":running": "running",
            ":me": worker,
            ":attempt": [attempt.model_dump(mode="json")],
            ":until": now + lease_s,
            ":at": _iso(now),
            ":before": attempt.attempt - 1,
        },
    )


def end_delivery(
    tables: Tables, *, job_id: str, worker: str, attempt: int, outcome: str, status_code: int | None, error: str | None
) -> SummaryJob:
    """Record an attempt's outcome; a delivered one also finishes the job (done, delivered_at, lease released)."""
    now = _now()
    index = attempt - 1
    update = f"SET #deliveries[{index}].#outcome = :outcome, #updated_at = :at"
    values: dict[str, Any] = {":running": "running", ":me": worker, ":outcome": outcome, ":at": _iso(now)}
    if status_code is not None:
        update += f", #deliveries[{index}].#status_code = :code"
        values[":code"] = status_code
    if error is not None:
        update += f", #deliveries[{index}].#error = :error"
        values[":error"] = error[:300]
    if outcome == "delivered":
        update += (
            ", #status = :done, #delivered_at = :at, #events = list_append(#events, :ev) REMOVE #lease_owner,"
            " #lease_until"
        )
        values |= {":done": "done", ":ev": _event(f"callback delivered on attempt {attempt}", worker)}
    return _job(_update(tables, job_id, update=update, condition=_MINE, values=values))


def finish(tables: Tables, *, job_id: str, worker: str, status: JobStatus, error: str) -> SummaryJob:
    """End the job as failed (nothing to retry) or dead (retries exhausted): visible in GET and the dead list."""
    now = _now()
    item = _update(
        tables,
        job_id,
        update=(
            "SET #status = :status, #error = :error, #updated_at = :at, #events = list_append(#events, :ev) "
            "REMOVE #lease_owner, #lease_until"
        ),
        condition=_MINE,
        values={
            ":running": "running",
            ":me": worker,
            ":status": status,
            ":error": error[:500],
            ":at": _iso(now),
            ":ev": _event(f"{status}: {error[:200]}", worker),
        },
    )
    return _job(item)


def release(tables: Tables, *, job_id: str, worker: str, error: str) -> None:
    """Give the job back to the queue after a transient error, for the next claim."""
    now = _now()
    _update(
        tables,
        job_id,
        update=(
            "SET #status = :queued, #error = :error, #updated_at = :at, #events = list_append(#events, :ev) "
            "REMOVE #lease_owner, #lease_until"
        ),
        condition=_MINE,
        values={
            ":running": "running",
            ":queued": "queued",
            ":me": worker,
            ":error": error[:500],
            ":at": _iso(now),
            ":ev": _event(f"released after an error: {error[:200]}", worker),
        },
    )
