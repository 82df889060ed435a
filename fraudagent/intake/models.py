"""The alert record (version 1): one JSON document per Kinesis record; and what became of a record."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fraudagent.core.models import Id, Priority, Trigger, UntrustedText


class AlertRecord(BaseModel):
    """An alert from the scoring pipeline. Without `bundle` the account (and its events) must be in the store
    already; with one, the bundle (CASE_BUNDLE.md) brings the accounts, events, scores and past cases, and names the
    case. `note` is customer-facing text: untrusted, evidence, never instructions."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    record_version: int = Field(ge=1, le=1)
    alert_id: Id = Field(description="unique per alert: a replayed record with this id creates nothing")
    account_id: Id
    raised_at: AwareDatetime = Field(description="when the alert was raised: the case's opened_at")
    trigger: Trigger
    event_ids: list[Id] = Field(min_length=1, max_length=100, description="the scored events that raised the alert")
    priority: Priority = Priority.medium
    note: UntrustedText | None = None
    bundle: dict[str, Any] | None = Field(default=None, description="a whole case bundle, version 1")


Outcome = Literal["created", "replayed", "dead_letter"]


class RecordResult(BaseModel):
    """What intake did with one record."""

    outcome: Outcome
    sequence_number: str
    shard_id: str
    alert_id: str | None = None
    case_id: str | None = None
    reason: str | None = None
    report_path: str | None = Field(default=None, description="the report written on arrival (policy)")
    draft_job_id: str | None = Field(default=None, description="the automatic draft queued, if any")
