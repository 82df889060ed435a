"""Chat sessions in DynamoDB: a `meta` item per session and one item per message (sk `msg#<n>`).

A session belongs to the key that started it (`caller_key_id` on the meta item): only that key reads and
continues it; an admin may read any session. For everyone else it does not exist (404), as for another
caller's summary job. A session without an owner (none should exist: the key id has been stored since
sessions were introduced) is readable by admins only.

Messages are appended with a conditional put on their position, so two concurrent turns of one
session never overwrite each other (the loser takes the next position).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from fraudagent.chat.models import ChatMessage, ChatSession
from fraudagent.core.errors import NotFound
from fraudagent.core.models import utc_iso
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables

MAX_MESSAGES = 500


class NotOwner(Exception):
    """An admin tried to continue a session another key started (403)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"chat session {session_id!r} is continued only by the key that started it")


def _msg_sk(n: int) -> str:
    return f"msg#{n:06d}"


def create_session(tables: Tables, *, session_id: str, case_id: str, created_by: str, caller_key_id: str) -> None:
    item = {
        "session_id": session_id,
        "sk": "meta",
        "case_id": case_id,
        "created_at": utc_iso(datetime.now(timezone.utc)),
        "created_by": created_by,
        "caller_key_id": caller_key_id,
    }
    dynamo.call(
        tables.client.put_item,
        TableName=tables.chats,
        Item=dynamo.to_item(item),
        ConditionExpression="attribute_not_exists(sk)",
    )


def session_meta(
    tables: Tables, *, session_id: str, case_id: str, caller_key_id: str, admin: bool, continuing: bool = False
) -> dict[str, Any]:
    """The session's meta item, when the caller may see it.

    A session of another case does not exist for this one, nor another analyst's session for them (404). An
    admin reads any session but continues only their own (403): what is appended enters the owner's prompts.
    """
    response = dynamo.call(
        tables.client.get_item,
        TableName=tables.chats,
        Key=dynamo.to_item({"session_id": session_id, "sk": "meta"}),
        ConsistentRead=True,
    )
    item = dynamo.from_item(response["Item"]) if "Item" in response else None
    if item is None or item["case_id"] != case_id:
        raise NotFound("chat session", session_id)
    owner = item.get("caller_key_id")
    if owner is not None and owner == caller_key_id:
        return item
    if not admin:
        raise NotFound("chat session", session_id)  # another analyst's session does not exist for this one
    if continuing:
        raise NotOwner(session_id)
    return item


def messages(tables: Tables, *, session_id: str) -> list[ChatMessage]:
    items, _ = dynamo.query_all(
        tables.client,
        max_items=MAX_MESSAGES,
        table=tables.chats,
        key_condition="session_id = :s AND begins_with(sk, :m)",
        values={":s": session_id, ":m": "msg#"},
    )
    return [ChatMessage.model_validate(i) for i in items]


def append(tables: Tables, *, session_id: str, message: ChatMessage) -> ChatMessage:
    """Store a message at the next free position (conditional put; retried at the next position on a race)."""
    n = message.n
    for _ in range(20):
        item = {"session_id": session_id, "sk": _msg_sk(n), **message.model_dump(mode="json"), "n": n}
        try:
            dynamo.call(
                tables.client.put_item,
                TableName=tables.chats,
                Item=dynamo.to_item(item),
                ConditionExpression="attribute_not_exists(sk)",
            )
            return message.model_copy(update={"n": n})
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            n += 1
    raise RuntimeError("could not append the chat message")


def get_session(tables: Tables, *, session_id: str, case_id: str, caller_key_id: str, admin: bool) -> ChatSession:
    meta = session_meta(tables, session_id=session_id, case_id=case_id, caller_key_id=caller_key_id, admin=admin)
    return ChatSession(
        session_id=session_id,
        case_id=case_id,
        created_at=meta["created_at"],
        created_by=meta["created_by"],
        messages=messages(tables, session_id=session_id),
    )
