"""Summary jobs: the request, the job as stored and returned, its delivery attempts and its result."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SummaryFormat = Literal["markdown", "jira", "servicenow"]
JobStatus = Literal["queued", "running", "done", "failed", "dead"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "done", "failed", "dead")


class SummaryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    callback_url: str | None = Field(
        default=None, max_length=2000, description="POSTed the result, signed (X-Signature, X-Timestamp); http(s) only"
    )
    format: SummaryFormat = Field(
        default="markdown", description="markdown, jira (Atlassian Document Format), servicenow (work-note HTML)"
    )


class DeliveryAttempt(BaseModel):
    attempt: int
    started_at: datetime
    worker: str
    outcome: Literal["sending", "delivered", "failed", "refused", "unknown"] = Field(
        description="sending: in flight; unknown: the worker stopped while sending (the receiver may have it); "
        "refused: the URL failed the address check"
    )
    status_code: int | None = None
    error: str | None = None


class JobEvent(BaseModel):
    """One state change of the job (its audit trail)."""

    at: datetime
    what: str
    worker: str | None = None


class SummaryResult(BaseModel):
    format: SummaryFormat
    media_type: str = Field(description="text/markdown, application/json (ADF) or text/html (work note)")
    body: str | dict[str, Any] = Field(description="the rendered summary; an ADF document (JSON) for jira")
    report_id: str
    report_path: str
    fields: list[str] = Field(description="the summary fields the caller was allowed")


class SummaryJob(BaseModel):
    job_id: str
    status: JobStatus
    case_id: str
    format: SummaryFormat
    callback_url: str | None = None
    created_at: datetime
    updated_at: datetime
    requested_by: str
    attempts: int = Field(description="times a worker claimed the job")
    priority: str | None = Field(default=None, description="the case's priority: workers take critical jobs first")
    draft: bool = Field(default=False, description="an automatic draft queued by intake on the case's arrival")
    lease_owner: str | None = None
    lease_until: datetime | None = None
    result: SummaryResult | None = None
    error: str | None = None
    deliveries: list[DeliveryAttempt] = Field(default_factory=list, description="every callback attempt, in order")
    delivered_at: datetime | None = None
    events: list[JobEvent] = Field(default_factory=list)


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus
    created: bool = Field(
        description="false when an Idempotency-Key matched an earlier request: the same job is returned"
    )


class JobPage(BaseModel):
    items: list[SummaryJob]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")
