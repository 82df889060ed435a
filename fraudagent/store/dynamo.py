"""DynamoDB access: client, table definitions, batch writes and bounded paged queries.

The same code runs against DynamoDB Local and AWS: only `endpoint_url` differs.
Throttling is retried by botocore's adaptive retry mode; unprocessed batch
items are retried here with exponential backoff.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from fraudagent.core.errors import DependencyUnavailable, InvalidInput, Problem
from fraudagent.core.settings import Settings

log = logging.getLogger(__name__)

BATCH_SIZE = 25  # DynamoDB's BatchWriteItem limit

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class TableSpec:
    suffix: str
    hash_key: str
    range_key: str | None = None
    # (index name, hash key, range key or None)
    indexes: tuple[tuple[str, str, str | None], ...] = ()
    # The number attribute (epoch seconds) after which DynamoDB deletes an item; None: items are kept.
    ttl_attribute: str | None = None


ACCOUNTS = TableSpec("accounts", "account_id")
# Events by account and time; GSIs find the accounts linked by a device, instrument or IP.
EVENTS = TableSpec(
    "events",
    "account_id",
    "sk",
    indexes=(
        ("by_device", "device_id", "sk"),
        ("by_instrument", "instrument_id", "sk"),
        ("by_ip", "ip", "sk"),
    ),
)
# Cases; the status index lists a queue newest first.
CASES = TableSpec("cases", "case_id", indexes=(("by_status", "status", "opened_sk"),))
REPORTS = TableSpec("reports", "case_id", "created_sk")
# API keys by their public id; only the sha256 of the secret is stored.
KEYS = TableSpec("keys", "key_id")
# The audit trail: every state change, by subject ("case#C-1", "key#k-…") and time.
AUDIT = TableSpec("audit", "subject", "at_sk")
# Background jobs (ticketing summaries, automatic drafts) and idempotency keys; by_status lists jobs by age, by_queue
# is the work queue: priority rank, then age (both sparse: idempotency records have neither).
JOBS = TableSpec("jobs", "job_id", indexes=(("by_status", "status", "created_sk"), ("by_queue", "status", "queue_sk")))
# Chat sessions: a meta item (sk "meta") and one item per message (sk "msg#<n>").
CHATS = TableSpec("chats", "session_id", "sk")
# Eval runs started through the API; every item has kind "evalrun", so the index lists them newest first.
EVALRUNS = TableSpec("evalruns", "run_id", indexes=(("by_created", "kind", "created_sk"),))
# Feedback on reports: per report its stats (sk "stats") and each analyst's verdict (sk "verdict#<analyst>");
# per case the agreement of the decision with the latest report (pk "case#<id>", sk "agreement"). The kind index
# lists each kind in time order for the quality figures.
FEEDBACK = TableSpec("feedback", "pk", "sk", indexes=(("by_kind", "kind", "at_sk"),))
# Alert intake: one lease per shard of a stream (owner, expiry, checkpoint), and the records it could not use.
INTAKE_LEASES = TableSpec("intake-leases", "stream", "shard_id")
DEAD_LETTERS = TableSpec("dead-letters", "stream", "dl_sk")
ALL_TABLES = (
    ACCOUNTS,
    EVENTS,
    CASES,
    REPORTS,
    KEYS,
    AUDIT,
    JOBS,
    CHATS,
    EVALRUNS,
    FEEDBACK,
    INTAKE_LEASES,
    DEAD_LETTERS,
)


def conditional_check_failed(error: ClientError) -> bool:
    """Whether a write (or a transaction) was refused by one of its conditions, not by anything else."""
    code = error.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        return "ConditionalCheckFailed" in [r.get("Code") for r in error.response.get("CancellationReasons", [])]
    return False


def make_client(settings: Settings) -> Any:
    config = Config(
        retries={"mode": "adaptive", "max_attempts": settings.ddb_max_attempts},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=16,
    )
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
    if settings.ddb_endpoint_url:
        # DynamoDB Local accepts any credentials; don't require a real AWS profile for it.
        kwargs |= {
            "endpoint_url": settings.ddb_endpoint_url,
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
    return boto3.client("dynamodb", **kwargs)


def table_name(settings: Settings, spec: TableSpec) -> str:
    return table_name_for_prefix(settings.table_prefix, spec)


def table_name_for_prefix(prefix: str, spec: TableSpec) -> str:
    return f"{prefix}-{spec.suffix}"


def table_definition(name: str, spec: TableSpec) -> dict[str, Any]:
    """The CreateTable request for one table: what `create_tables` sends locally and deploy/cdk turns into
    CloudFormation, so the two cannot drift."""
    key_names = {spec.hash_key} | ({spec.range_key} if spec.range_key else set())
    key_schema = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
    if spec.range_key:
        key_schema.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
    gsis = []
    for index, hash_key, range_key in spec.indexes:
        key_names |= {hash_key} | ({range_key} if range_key else set())
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        gsis.append({"IndexName": index, "KeySchema": schema, "Projection": {"ProjectionType": "ALL"}})
    definition: dict[str, Any] = {
        "TableName": name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in sorted(key_names)],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if gsis:
        definition["GlobalSecondaryIndexes"] = gsis
    return definition


def create_tables(client: Any, settings: Settings) -> list[str]:
    """Create the tables that don't exist yet and wait until they are active. Idempotent."""
    existing = set(_list_tables(client))
    created = []
    for spec in ALL_TABLES:
        name = table_name(settings, spec)
        if name in existing:
            continue
        try:
            client.create_table(**table_definition(name, spec))
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
        created.append(name)
    waiter = client.get_waiter("table_exists")
    for name in created:
        waiter.wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    for spec in ALL_TABLES:
        name = table_name(settings, spec)
        if name in created and spec.ttl_attribute:
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
            )
    return created


def _list_tables(client: Any) -> list[str]:
    try:
        return [name for page in client.get_paginator("list_tables").paginate() for name in page["TableNames"]]
    except BotoCoreError as error:  # as `call` does: an unreachable server is DependencyUnavailable, not a traceback
        raise DependencyUnavailable("dynamodb", type(error).__name__) from error


def to_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """Python values -> DynamoDB attribute values; None is dropped, floats become Decimals."""
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in record.items() if v is not None}


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_from_dynamo(v) for v in value]
    return value


class _ItemsLeft(Exception):
    """BatchWriteItem handed items back unprocessed (throttled); try them again."""


def batch_put(client: Any, table: str, records: Iterable[Mapping[str, Any]], *, max_attempts: int = 10) -> int:
    """Put records in batches of 25, retrying unprocessed items with exponential backoff."""
    written = 0
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append({"PutRequest": {"Item": to_item(record)}})
        if len(batch) == BATCH_SIZE:
            written += _write_batch(client, table, batch, max_attempts)
            batch = []
    if batch:
        written += _write_batch(client, table, batch, max_attempts)
    return written


def _write_batch(client: Any, table: str, requests: list[dict[str, Any]], max_attempts: int) -> int:
    pending = requests
    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(_ItemsLeft),
            wait=wait_exponential(multiplier=0.05, max=5),
            stop=stop_after_attempt(max_attempts),
            reraise=True,
        ):
            with attempt:
                response = call(client.batch_write_item, RequestItems={table: pending})
                pending = response.get("UnprocessedItems", {}).get(table, [])
                if pending:
                    raise _ItemsLeft
    except _ItemsLeft:
        raise DependencyUnavailable(
            "dynamodb", f"{len(pending)} items still unprocessed after {max_attempts} attempts"
        ) from None
    return len(requests)


def call(operation: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one DynamoDB call; a server that can't be reached becomes DependencyUnavailable."""
    try:
        return operation(**kwargs)
    except BotoCoreError as error:  # connection refused, timeouts (ClientError is not one of these)
        raise DependencyUnavailable("dynamodb", type(error).__name__) from error


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None


def encode_token(key: Mapping[str, Any] | None) -> str | None:
    if not key:
        return None
    raw = json.dumps(from_item(key), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
        if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
            raise ValueError
    except ValueError:
        raise InvalidInput("bad page token", [Problem("cursor", "not a token this service issued")]) from None
    return to_item(key)


def query_page(
    client: Any,
    *,
    table: str,
    key_condition: str,
    values: Mapping[str, Any],
    names: Mapping[str, str] | None = None,
    index: str | None = None,
    limit: int = 50,
    start_token: str | None = None,
    forward: bool = True,
) -> Page:
    """One page of a Query: at most `limit` items and a token for the next page."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": to_item(values),
        "Limit": limit,
        "ScanIndexForward": forward,
    }
    if names:
        kwargs["ExpressionAttributeNames"] = dict(names)
    if index:
        kwargs["IndexName"] = index
    response = query_from(client, kwargs, start_token)
    return Page([from_item(i) for i in response.get("Items", [])], encode_token(response.get("LastEvaluatedKey")))


def query_from(client: Any, query: dict[str, Any], start_token: str | None) -> dict[str, Any]:
    """Run a Query from a page token; a token that does not fit this query is bad input, not a server error."""
    start = decode_token(start_token)
    if not start:
        return call(client.query, **query)
    try:
        return call(client.query, **query, ExclusiveStartKey=start)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ValidationException":
            raise
        raise InvalidInput("bad page token", [Problem("cursor", "not a token for this list")]) from None


def query_all(client: Any, *, max_items: int, page_size: int = 200, **query: Any) -> tuple[list[dict[str, Any]], bool]:
    """Follow pages until done or max_items; returns the items and whether the result was cut."""
    items: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = query_page(client, limit=min(page_size, max_items - len(items) + 1), start_token=token, **query)
        items.extend(page.items)
        if len(items) > max_items:
            return items[:max_items], True
        if page.next_token is None:
            return items, False
        token = page.next_token
