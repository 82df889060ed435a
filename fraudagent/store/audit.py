"""The audit trail: one item per state change (key created or revoked, report drafted, case assigned or decided).

Items live in `<prefix>-audit`, keyed by subject (`case#C-1`, `key#k-…`) and a time-ordered sort key, so a
subject's history is one Query. Details hold ids, enums and counts, never secrets or customer text.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from fraudagent.core.models import sort_key_ts, utc_iso
from fraudagent.store import dynamo

if TYPE_CHECKING:  # history writes audit events itself
    from fraudagent.store.tables import Tables


class AuditEvent(BaseModel):
    audit_id: str
    at: datetime
    subject: str = Field(description="what changed: case#<id>, key#<id>")
    action: str = Field(description="e.g. key.created, key.revoked, report.drafted, case.assigned, case.decided")
    actor: str = Field(description="who did it: an API key's name, or cli")
    details: dict[str, Any] = Field(default_factory=dict)


class AuditPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None = None


def case_subject(case_id: str) -> str:
    return f"case#{case_id}"


def key_subject(key_id: str) -> str:
    return f"key#{key_id}"


def new_event(*, subject: str, action: str, actor: str, details: dict[str, Any] | None = None) -> AuditEvent:
    return AuditEvent(
        audit_id=f"au-{uuid.uuid4().hex[:16]}",
        at=datetime.now(timezone.utc),
        subject=subject,
        action=action,
        actor=actor,
        details=details or {},
    )


def put_request(history: Tables, event: AuditEvent) -> dict[str, Any]:
    """The event as a `Put` for TransactWriteItems, so a state change and its audit record commit together."""
    return {"Put": {"TableName": history.audit, "Item": _item(event)}}


def _item(event: AuditEvent) -> dict[str, Any]:
    return dynamo.to_item(
        {
            "subject": event.subject,
            "at_sk": f"{sort_key_ts(event.at)}#{event.audit_id}",
            "audit_id": event.audit_id,
            "at": utc_iso(event.at),
            "action": event.action,
            "actor": event.actor,
            "details": json.dumps(event.details, sort_keys=True),
        }
    )


def record(
    history: Tables, *, subject: str, action: str, actor: str, details: dict[str, Any] | None = None
) -> AuditEvent:
    event = new_event(subject=subject, action=action, actor=actor, details=details)
    dynamo.call(history.client.put_item, TableName=history.audit, Item=_item(event))
    return event


def events_for(history: Tables, *, subject: str, limit: int = 50, cursor: str | None = None) -> AuditPage:
    """A subject's audit events, newest first, paged."""
    page = dynamo.query_page(
        history.client,
        table=history.audit,
        key_condition="#s = :s",
        names={"#s": "subject"},
        values={":s": subject},
        limit=limit,
        start_token=cursor,
        forward=False,
    )
    items = [
        AuditEvent(
            audit_id=i["audit_id"],
            at=datetime.fromisoformat(i["at"]),
            subject=i["subject"],
            action=i["action"],
            actor=i["actor"],
            details=json.loads(i.get("details") or "{}"),
        )
        for i in page.items
    ]
    return AuditPage(items=items, next_cursor=page.next_token)
