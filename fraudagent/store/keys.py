"""API keys with roles, stored hashed in DynamoDB (`<prefix>-keys`).

A key reads `fa_<key_id>_<secret>`: the key id is public (it names the key in lists, logs and the audit
trail) and finds the stored item in one GetItem; the secret is 256 random bits, shown once at creation,
and only its sha256 is stored (a fast hash is enough for a high-entropy secret: nothing to guess).
Creating and revoking a key write an audit event in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timezone
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, computed_field

from fraudagent.core.errors import Conflict, InvalidInput, NotFound, Problem
from fraudagent.core.models import utc_iso
from fraudagent.store import audit, dynamo
from fraudagent.store.tables import Tables

Role = Literal["analyst", "ticketing", "evaluator", "admin"]
ROLES: tuple[Role, ...] = ("analyst", "ticketing", "evaluator", "admin")
KEY_PREFIX = "fa"


class ApiKey(BaseModel):
    """A key as anyone may see it: never the secret, never its hash."""

    model_config = ConfigDict(frozen=True)
    key_id: str
    name: str
    roles: list[Role]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def active(self) -> bool:
        return self.revoked_at is None


class StoredKey(ApiKey):
    secret_sha256: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_key_id(presented: str) -> str | None:
    """The key id of a presented key, or None when it is not shaped like one of ours."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2] or len(presented) > 200:
        return None
    return parts[1]


def matches(stored: StoredKey, presented: str) -> bool:
    return hmac.compare_digest(_sha256(presented), stored.secret_sha256)


def _validate(name: str, roles: list[str]) -> list[Role]:
    problems = []
    if not name or len(name) > 64 or not all((c.isalnum() and c.isascii()) or c in " ._:-" for c in name):
        problems.append(Problem("name", "1-64 characters: letters, digits, space . _ : -"))
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        problems.append(
            Problem(
                "roles", f"one or more of {', '.join(ROLES)}" + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        )
    if problems:
        raise InvalidInput("invalid key request", problems)
    return list(dict.fromkeys(roles))  # type: ignore[arg-type]


def create_key(history: Tables, *, name: str, roles: list[str], created_by: str) -> tuple[ApiKey, str]:
    """Create a key; returns it and the full secret key, which is never stored or shown again."""
    valid_roles = _validate(name, roles)
    key_id = "k" + secrets.token_hex(5)
    presented = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    key = StoredKey(
        key_id=key_id,
        name=name,
        roles=valid_roles,
        created_at=datetime.now(timezone.utc),
        created_by=created_by,
        secret_sha256=_sha256(presented),
    )
    event = audit.new_event(
        subject=audit.key_subject(key_id),
        action="key.created",
        actor=created_by,
        details={"name": name, "roles": valid_roles},
    )
    item = key.model_dump(mode="json", exclude_none=True, exclude={"active"}) | {"created_at": utc_iso(key.created_at)}
    dynamo.call(
        history.client.transact_write_items,
        TransactItems=[
            {
                "Put": {
                    "TableName": history.keys,
                    "Item": dynamo.to_item(item),
                    "ConditionExpression": "attribute_not_exists(key_id)",
                }
            },
            audit.put_request(history, event),
        ],
    )
    return ApiKey.model_validate(key.model_dump(exclude={"secret_sha256", "active"})), presented


def find_key(history: Tables, key_id: str) -> StoredKey | None:
    response = dynamo.call(
        history.client.get_item, TableName=history.keys, Key=dynamo.to_item({"key_id": key_id}), ConsistentRead=True
    )
    return StoredKey.model_validate(dynamo.from_item(response["Item"])) if "Item" in response else None


def list_keys(history: Tables) -> list[ApiKey]:
    """Every key, oldest first. A Scan: the table holds one small item per key ever made."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": history.keys}
    while True:
        response = dynamo.call(history.client.scan, **kwargs)
        items += [dynamo.from_item(i) for i in response.get("Items", [])]
        if "LastEvaluatedKey" not in response:
            break
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    keys = [ApiKey.model_validate({k: v for k, v in i.items() if k != "secret_sha256"}) for i in items]
    return sorted(keys, key=lambda k: (k.created_at, k.key_id))


def revoke_key(history: Tables, *, key_id: str, revoked_by: str) -> ApiKey:
    """Revoke a key for good (services notice within FRAUDAGENT_API_KEY_CACHE_S); revoking twice is a conflict."""
    now = datetime.now(timezone.utc)
    event = audit.new_event(subject=audit.key_subject(key_id), action="key.revoked", actor=revoked_by)
    try:
        dynamo.call(
            history.client.transact_write_items,
            TransactItems=[
                {
                    "Update": {
                        "TableName": history.keys,
                        "Key": dynamo.to_item({"key_id": key_id}),
                        "UpdateExpression": "SET revoked_at = :at, revoked_by = :by",
                        "ConditionExpression": "attribute_exists(key_id) AND attribute_not_exists(revoked_at)",
                        "ExpressionAttributeValues": dynamo.to_item({":at": utc_iso(now), ":by": revoked_by}),
                    }
                },
                audit.put_request(history, event),
            ],
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "TransactionCanceledException":
            raise
        if find_key(history, key_id) is None:
            raise NotFound("key", key_id) from None
        raise Conflict("key", key_id, "already revoked") from None
    stored = find_key(history, key_id)
    assert stored is not None
    return ApiKey.model_validate(stored.model_dump(exclude={"secret_sha256", "active"}))
