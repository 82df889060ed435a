"""Alert intake's tables: a lease per shard of a stream, and the dead letters (records intake could not use).

`<prefix>-intake-leases`, keyed by stream and shard id: who holds the shard (`owner`), until when (`lease_until`,
Unix seconds), the last sequence number whose case is written (`checkpoint`), the shard's parents, and whether the
shard was read to its end (`finished`). Every change is one conditional write, so two workers never both hold a
shard: taking needs the lease free or expired (or, to balance, still held by the worker it is taken from), and every
later write of the holder (renewal, checkpoint, finishing, releasing) needs it to still be the owner. Taking,
releasing and finishing a shard write an audit record in the same transaction; renewals and checkpoints are the
lease row's own state.

`<prefix>-dead-letters`, keyed by stream and `<shard>#<sequence number>` (so a replayed record is dead-lettered
once): the reason, the problems found, and the raw record as it arrived (data, never logged).
"""

from __future__ import annotations

import time
import zlib
from datetime import datetime, timezone
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from fraudagent.core.models import utc_iso
from fraudagent.store import audit, dynamo
from fraudagent.store.tables import Tables

SHARD_END = "SHARD_END"
MAX_RAW_BYTES = 350_000  # a DynamoDB item holds 400 KB; a Kinesis record up to 1 MB

DeadLetterReason = Literal["invalid_json", "invalid_record", "unknown_account", "case_conflict", "processing_failed"]


class Lease(BaseModel):
    stream: str
    shard_id: str
    owner: str | None = None
    lease_until: float = 0.0
    checkpoint: str | None = None
    parents: list[str] = Field(default_factory=list)
    finished: bool = False
    taken: int = 0

    def held(self, now: float) -> bool:
        return self.owner is not None and self.lease_until >= now and not self.finished


class DeadLetter(BaseModel):
    stream: str
    shard_id: str
    sequence_number: str
    partition_key: str
    arrived_at: datetime | None = None
    dead_lettered_at: datetime
    reason: DeadLetterReason
    detail: str = Field(description="one line: what was wrong")
    problems: list[str] = Field(default_factory=list, description="each problem, located by JSON path")
    alert_id: str | None = None
    worker: str
    raw: bytes = Field(description="the record's data as it arrived (cut to MAX_RAW_BYTES when even zlib can't fit)")
    raw_size: int
    raw_truncated: bool = False


def subject(stream: str, shard_id: str) -> str:
    return f"intake#{stream}/{shard_id}"


def _update(
    tables: Tables,
    *,
    stream: str,
    shard_id: str,
    update: str,
    condition: str,
    values: dict[str, Any],
    event: audit.AuditEvent | None = None,
) -> bool:
    names = {
        "#owner": "owner",
        "#until": "lease_until",
        "#finished": "finished",
        "#cp": "checkpoint",
        "#taken": "taken",
    }
    text = update + " " + condition
    request: dict[str, Any] = {
        "TableName": tables.intake_leases,
        "Key": dynamo.to_item({"stream": stream, "shard_id": shard_id}),
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {k: v for k, v in names.items() if k in text},
    }
    if values:
        request["ExpressionAttributeValues"] = dynamo.to_item(values)
    try:
        if event is None:
            dynamo.call(tables.client.update_item, **request)
        else:
            dynamo.call(
                tables.client.transact_write_items,
                TransactItems=[{"Update": request}, audit.put_request(tables, event)],
            )
    except ClientError as error:
        if dynamo.conditional_check_failed(error):
            return False
        raise
    return True


def leases(tables: Tables, *, stream: str) -> list[Lease]:
    """Every shard lease of the stream (consistent reads)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": tables.intake_leases,
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "stream"},
        "ExpressionAttributeValues": dynamo.to_item({":s": stream}),
        "ConsistentRead": True,
    }
    while True:
        response = dynamo.call(tables.client.query, **kwargs)
        items += [dynamo.from_item(i) for i in response.get("Items", [])]
        if "LastEvaluatedKey" not in response:
            return [Lease.model_validate(i) for i in items]
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def ensure_lease(tables: Tables, *, stream: str, shard_id: str, parents: list[str]) -> bool:
    """A free lease row for a shard seen for the first time; False when it exists already."""
    try:
        dynamo.call(
            tables.client.put_item,
            TableName=tables.intake_leases,
            Item=dynamo.to_item(
                {"stream": stream, "shard_id": shard_id, "parents": parents, "finished": False, "lease_until": 0}
            ),
            ConditionExpression="attribute_not_exists(shard_id)",
        )
    except ClientError as error:
        if dynamo.conditional_check_failed(error):
            return False
        raise
    return True


def take_lease(
    tables: Tables, *, stream: str, shard_id: str, worker: str, lease_s: float, from_owner: str | None = None
) -> bool:
    """Take a shard: free or expired, or (`from_owner`, to balance the shards between workers) from that worker,
    which finds out at its next write. False when another worker was first."""
    now = time.time()
    if from_owner is None:
        condition = "#finished = :false AND (attribute_not_exists(#owner) OR #until < :now)"
        values: dict[str, Any] = {":now": now}
        why = "free or expired"
    else:
        condition = "#finished = :false AND #owner = :victim"
        values = {":victim": from_owner}
        why = f"balanced from {from_owner}"
    event = audit.new_event(
        subject=subject(stream, shard_id), action="intake.lease_taken", actor=worker, details={"why": why}
    )
    return _update(
        tables,
        stream=stream,
        shard_id=shard_id,
        update="SET #owner = :me, #until = :until, #taken = if_not_exists(#taken, :zero) + :one",
        condition=condition,
        values=values | {":me": worker, ":until": now + lease_s, ":false": False, ":zero": 0, ":one": 1},
        event=event,
    )


_MINE = "#owner = :me AND #finished = :false"


def renew_lease(tables: Tables, *, stream: str, shard_id: str, worker: str, lease_s: float) -> bool:
    """Push the lease forward; False when the worker no longer holds it."""
    return _update(
        tables,
        stream=stream,
        shard_id=shard_id,
        update="SET #until = :until",
        condition=_MINE,
        values={":me": worker, ":until": time.time() + lease_s, ":false": False},
    )


def checkpoint(
    tables: Tables, *, stream: str, shard_id: str, worker: str, sequence_number: str, lease_s: float
) -> bool:
    """Record the last sequence number whose case is written (and renew the lease); False when the lease was lost:
    the worker must stop reading the shard."""
    return _update(
        tables,
        stream=stream,
        shard_id=shard_id,
        update="SET #cp = :cp, #until = :until",
        condition=_MINE,
        values={":me": worker, ":cp": sequence_number, ":until": time.time() + lease_s, ":false": False},
    )


def finish_shard(tables: Tables, *, stream: str, shard_id: str, worker: str) -> bool:
    """The shard is closed (split or merged) and read to its end: its children may be read now."""
    event = audit.new_event(subject=subject(stream, shard_id), action="intake.shard_finished", actor=worker)
    return _update(
        tables,
        stream=stream,
        shard_id=shard_id,
        update="SET #finished = :true, #cp = :end, #until = :zero REMOVE #owner",
        condition=_MINE,
        values={":me": worker, ":true": True, ":false": False, ":end": SHARD_END, ":zero": 0},
        event=event,
    )


def release_lease(tables: Tables, *, stream: str, shard_id: str, worker: str) -> bool:
    """Give the shard back at once (a worker that stops cleanly), keeping its checkpoint."""
    event = audit.new_event(subject=subject(stream, shard_id), action="intake.lease_released", actor=worker)
    return _update(
        tables,
        stream=stream,
        shard_id=shard_id,
        update="SET #until = :zero REMOVE #owner",
        condition=_MINE,
        values={":me": worker, ":false": False, ":zero": 0},
        event=event,
    )


# --- dead letters --------------------------------------------------------------


def _raw_fields(raw: bytes) -> dict[str, Any]:
    if len(raw) <= MAX_RAW_BYTES:
        return {"raw": raw, "raw_encoding": "plain", "raw_truncated": False}
    packed = zlib.compress(raw, 6)
    if len(packed) <= MAX_RAW_BYTES:
        return {"raw": packed, "raw_encoding": "zlib", "raw_truncated": False}
    return {"raw": raw[:MAX_RAW_BYTES], "raw_encoding": "plain", "raw_truncated": True}


def put_dead_letter(tables: Tables, letter: DeadLetter, *, event: audit.AuditEvent) -> bool:
    """Store a dead letter with its audit record; False (nothing written) when this record is dead-lettered
    already (a replay)."""
    fields = letter.model_dump(mode="json", exclude={"raw", "raw_truncated", "dead_lettered_at", "arrived_at"})
    fields |= {
        "dl_sk": f"{letter.shard_id}#{letter.sequence_number}",
        "dead_lettered_at": utc_iso(letter.dead_lettered_at),
        "arrived_at": utc_iso(letter.arrived_at) if letter.arrived_at else None,
    }
    item = dynamo.to_item(fields)
    for key, value in _raw_fields(letter.raw).items():
        item[key] = {"B": value} if isinstance(value, bytes) else dynamo.to_item({key: value})[key]
    try:
        dynamo.call(
            tables.client.transact_write_items,
            TransactItems=[
                {
                    "Put": {
                        "TableName": tables.dead_letters,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(dl_sk)",
                    }
                },
                audit.put_request(tables, event),
            ],
        )
    except ClientError as error:
        if dynamo.conditional_check_failed(error):
            return False
        raise
    return True


def _dead_letter(raw_item: dict[str, Any]) -> DeadLetter:
    data = raw_item["raw"]["B"]
    encoding = raw_item.get("raw_encoding", {}).get("S", "plain")
    item = dynamo.from_item({k: v for k, v in raw_item.items() if k != "raw"})
    item["raw"] = zlib.decompress(data) if encoding == "zlib" else bytes(data)
    for key in ("dead_lettered_at", "arrived_at"):
        if item.get(key):
            item[key] = datetime.fromisoformat(item[key].replace("Z", "+00:00")).astimezone(timezone.utc)
    return DeadLetter.model_validate({k: v for k, v in item.items() if k in DeadLetter.model_fields})


def dead_letters(
    tables: Tables, *, stream: str, limit: int = 100, cursor: str | None = None
) -> tuple[list[DeadLetter], str | None]:
    """A page of the stream's dead letters, by shard and sequence number."""
    kwargs: dict[str, Any] = {
        "TableName": tables.dead_letters,
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "stream"},
        "ExpressionAttributeValues": dynamo.to_item({":s": stream}),
        "Limit": limit,
        "ConsistentRead": True,
    }
    response = dynamo.query_from(tables.client, kwargs, cursor)
    return [_dead_letter(i) for i in response.get("Items", [])], dynamo.encode_token(response.get("LastEvaluatedKey"))
