"""Ticketing routes: POST /v1/summaries (202 + job), GET /v1/summaries/{job_id}, GET /v1/summaries?status=dead."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from fraudagent import store
from fraudagent.api import problems
from fraudagent.api.deps import Caller, SettingsDep, TablesDep, require_role
from fraudagent.core.errors import InvalidInput, NotFound, Problem
from fraudagent.core.settings import SUMMARY_FIELDS
from fraudagent.store import audit
from fraudagent.store import jobs as job_store
from fraudagent.store.tables import Tables
from fraudagent.summaries.callbacks import check_callback_url
from fraudagent.summaries.models import JobAccepted, JobPage, JobStatus, SummaryJob, SummaryRequest

router = APIRouter(prefix="/v1/summaries", tags=["summaries"], responses=problems.responses(*problems.AUTHED))
TicketingDep = Annotated[Caller, Depends(require_role("ticketing"))]


_PROBLEMS = problems.responses(404)


def allowed_fields(caller: Caller, configured: list[str]) -> tuple[list[str], bool]:
    """(fields, redact PII): analysts and admins get every field unredacted; ticketing callers the configured
    allow-list, redacted."""
    if caller.has("analyst"):
        return list(SUMMARY_FIELDS), False
    return list(configured), True


@router.post("", response_model=JobAccepted, status_code=status.HTTP_202_ACCEPTED, responses=_PROBLEMS)  # type: ignore[arg-type]
def create_summary(
    body: SummaryRequest,
    request: Request,
    response: Response,
    caller: TicketingDep,
    settings: SettingsDep,
    tables: TablesDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)] = None,
) -> JobAccepted:
    """Queue a case summary; the result comes back on GET /v1/summaries/{job_id} and, if given, on the callback.

    A retried request with the same `Idempotency-Key` returns the same job (202, `created: false`);
    the same key with a different body is refused (422).
    """
    record = store.cases.get_case(tables, body.case_id)  # 404 now rather than a failed job later
    if body.callback_url is not None:
        if settings.callback_secret is None:
            raise InvalidInput(
                "callbacks are not configured",
                [Problem("callback_url", "the service has no FRAUDAGENT_CALLBACK_SECRET")],
            )
        check_callback_url(body.callback_url, production=settings.environment == "production")
    job_id = "J-" + uuid.uuid4().hex
    if idempotency_key is not None:
        try:
            job_id = job_store.remember_idempotency_key(
                tables,
                caller_key_id=caller.key_id,
                key=idempotency_key,
                body_hash=job_store.request_hash(body),
                job_id=job_id,
            )
        except job_store.IdempotencyKeyReused as error:
            raise InvalidInput(
                str(error), [Problem("Idempotency-Key", "already used with a different request body")]
            ) from None
    fields, redact = allowed_fields(caller, settings.summary_ticketing_fields)
    job, created = job_store.create_job(
        tables,
        job_id=job_id,
        request=body,
        fields=fields,
        redact_pii=redact,
        requested_by=caller.name,
        caller_key_id=caller.key_id,
        priority=record.case.priority.value,
    )
    if created:
        audit.record(
            tables,
            subject=audit.case_subject(body.case_id),
            action="summary.requested",
            actor=caller.name,
            details={"job_id": job.job_id, "format": body.format, "callback": body.callback_url is not None},
        )
        workers = getattr(request.app.state, "summary_workers", None)
        if workers is not None:
            workers.wake()
    response.headers["Location"] = f"/v1/summaries/{job.job_id}"
    return JobAccepted(job_id=job.job_id, status=job.status, created=created)


def _visible(tables: Tables, job_id: str, caller: Caller) -> SummaryJob:
    item = job_store.get_item(tables, job_id)
    if item.get("caller_key_id") != caller.key_id and not caller.has("admin"):
        raise NotFound("summary job", job_id)  # another caller's job does not exist for this one
    return job_store.get_job(tables, job_id)


@router.get("/{job_id}", response_model=SummaryJob, responses=_PROBLEMS)  # type: ignore[arg-type]
def get_summary(job_id: Annotated[str, Path(max_length=200)], caller: TicketingDep, tables: TablesDep) -> SummaryJob:
    """A job's status (queued, running, done, failed, dead), its result, and every callback attempt."""
    return _visible(tables, job_id, caller)


@router.get("", response_model=JobPage, responses=_PROBLEMS)  # type: ignore[arg-type]
def list_summaries(
    caller: TicketingDep,
    tables: TablesDep,
    status: JobStatus = "dead",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> JobPage:
    """Jobs by status, oldest first; `status=dead` is the dead-letter list. Admins see every caller's jobs."""
    return job_store.list_jobs(
        tables, status=status, limit=limit, cursor=cursor, caller_key_id=None if caller.has("admin") else caller.key_id
    )
