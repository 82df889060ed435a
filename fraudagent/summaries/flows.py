"""Summary workers: claim a job with a lease, render it (drafting a report if needed), deliver the callback.

Delivery guarantee (precisely):
- At most one worker works a job at a time: claiming is a conditional write (queued, or running with an
  expired lease -> running with this worker's lease), and every later write of the worker is conditional
  on still holding that lease. A heartbeat thread extends the lease while a report is drafted.
- Before each callback attempt the worker appends the attempt as `sending` with a conditional write that
  also requires that nothing was delivered yet and that no other attempt was appended since it read the
  job; the same write extends the lease past the attempt's timeout. After the response it records the
  outcome; a 2xx also sets `delivered_at` and `done` in the same write. So no two workers send at the
  same time, and nothing is sent once a delivery is recorded.
- The one window left: a worker that dies (or stalls past its lease) after the receiver accepted the POST
  and before the outcome was recorded. The attempt then stays `sending`; the next worker records it as
  `unknown` and sends again, with the same `X-Delivery-Id` (the job id) and the same body. Delivery is
  therefore at-least-once, and exactly-once for a receiver that drops a repeated X-Delivery-Id (and exactly
  once whenever no worker dies inside that window). A job is never lost: an expired lease is re-claimed.
- After FRAUDAGENT_CALLBACK_MAX_ATTEMPTS failed attempts (counted across workers) the job is `dead`;
  after FRAUDAGENT_SUMMARY_MAX_ATTEMPTS claims without finishing it is `dead` too. Dead jobs keep their
  result and every attempt, and are listed by GET /v1/summaries?status=dead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from fraudagent import store
from fraudagent.agent.pipeline import Investigator, draft_and_store
from fraudagent.core.errors import InvalidInput, NotFound
from fraudagent.core.settings import Settings
from fraudagent.store import audit
from fraudagent.store import jobs as job_store
from fraudagent.store.jobs import LeaseLost
from fraudagent.store.tables import Tables
from fraudagent.summaries import callbacks
from fraudagent.summaries.models import DeliveryAttempt, SummaryJob, SummaryResult
from fraudagent.summaries.render import MEDIA_TYPES, render, summary_content

log = logging.getLogger(__name__)


class _NotDelivered(Exception):
    pass


_case_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_case_locks_guard = threading.Lock()


def _current_report(investigator: Investigator, case_id: str, *, model_drafted: bool) -> dict[str, Any] | None:
    history = investigator.history
    record = store.cases.get_case(history, case_id)
    latest = store.reports.reports(history, case_id, limit=1)
    if latest and model_drafted and latest[0].get("path") == "policy":
        return None  # the report on arrival: the model has not drafted this case yet
    newest_event = store.events.newest_event_ts(history, record.case.account_id)
    if latest and (newest_event is None or datetime.fromisoformat(latest[0]["created_at"]) >= newest_event):
        return latest[0]
    return None


def latest_or_new_report(
    investigator: Investigator, case_id: str, *, requested_by: str, model_drafted: bool = False
) -> dict[str, Any]:
    """The case's newest stored report, or a new one (drafted and stored) if there is none or events arrived after it;
    with `model_drafted`, a report from the policy alone (intake's triage on arrival) does not count.

    Workers of one process draft a case one at a time, so a burst of jobs for a case drafts it once.
    """
    current = _current_report(investigator, case_id, model_drafted=model_drafted)
    if current is not None:
        return current
    with _case_locks_guard:
        lock = _case_locks[case_id]
    with lock:
        current = _current_report(investigator, case_id, model_drafted=model_drafted)  # drafted meanwhile?
        if current is not None:
            return current
        return draft_and_store(investigator, case_id, requested_by=requested_by, priority="background").model_dump(
            mode="json"
        )


def build_result(investigator: Investigator, job: SummaryJob, *, fields: list[str], redact_pii: bool) -> SummaryResult:
    report = latest_or_new_report(
        investigator,
        job.case_id,
        requested_by=f"summary job {job.job_id} for {job.requested_by}",
        model_drafted=job.draft,
    )
    record = store.cases.get_case(investigator.history, job.case_id)
    lines = None
    if "evidence" in fields:
        lines = {i.id: i.line for i in investigator.evidence(job.case_id).items.values()}
    content = summary_content(report=report, record=record, fields=fields, redact_pii=redact_pii, evidence_lines=lines)
    return SummaryResult(
        format=job.format,
        media_type=MEDIA_TYPES[job.format],
        body=render(job.format, content, job.case_id),
        report_id=report["report_id"],
        report_path=report["path"],
        fields=list(content),
    )


class Heartbeat:
    """Extends the lease every third of it until stopped, or until the lease is lost."""

    def __init__(self, tables: Tables, *, job_id: str, worker: str, lease_s: float) -> None:
        self.tables, self.job_id, self.worker, self.lease_s = tables, job_id, worker, lease_s
        self.stopped = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(self.lease_s / 3):
            try:
                job_store.extend_lease(self.tables, job_id=self.job_id, worker=self.worker, lease_s=self.lease_s)
            except LeaseLost:
                self.lost = True
                return
            except Exception as error:  # a missed beat is retried at the next one
                log.warning("heartbeat for job %s failed: %s", self.job_id, type(error).__name__)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()


@dataclass
class WorkerContext:
    settings: Settings
    investigator: Investigator
    tables: Tables
    http: httpx.Client = field(default_factory=lambda: httpx.Client(follow_redirects=False))
    stop: threading.Event = field(default_factory=threading.Event)


def process(ctx: WorkerContext, job: SummaryJob, worker: str) -> SummaryJob | None:
    """Work one claimed job to its end (done, failed, dead) or give it back; None if the lease was lost.

    The job's own `events` record every step; its end also goes to the case's audit trail.
    """
    ended = _process(ctx, job, worker)
    if ended is not None and ended.status in ("done", "failed", "dead"):
        try:
            audit.record(
                ctx.investigator.history,
                subject=audit.case_subject(ended.case_id),
                action=f"summary.{ended.status}",
                actor=f"summary worker {worker}",
                details={"job_id": ended.job_id, "deliveries": len(ended.deliveries)},
            )
        except Exception as error:  # the job's state is already committed and carries its own trail
            log.warning("audit record for job %s failed: %s", ended.job_id, type(error).__name__)
    return ended


def _process(ctx: WorkerContext, job: SummaryJob, worker: str) -> SummaryJob | None:
    s = ctx.settings
    item = job_store.get_item(ctx.tables, job.job_id)
    try:
        with Heartbeat(ctx.tables, job_id=job.job_id, worker=worker, lease_s=s.summary_lease_s):
            if job.attempts > s.summary_max_attempts:
                return job_store.finish(
                    ctx.tables,
                    job_id=job.job_id,
                    worker=worker,
                    status="dead",
                    error=f"claimed {job.attempts - 1} times without finishing",
                )
            if job.result is None:
                result = build_result(
                    ctx.investigator,
                    job,
                    fields=list(item.get("fields", [])),
                    redact_pii=bool(item.get("redact_pii", True)),
                )
                job = job_store.save_result(
                    ctx.tables, job_id=job.job_id, worker=worker, result=result, done=job.callback_url is None
                )
            if job.callback_url:
                return deliver(ctx, job, worker)
            return job
    except LeaseLost:
        log.warning("job %s: lease lost to another worker; stopping work on it", job.job_id)
        return None
    except NotFound as error:
        return _end(ctx, job, worker, "failed", str(error))
    except Exception as error:  # transient (a store or the model down): back to the queue, or dead when out of claims
        log.warning("job %s failed on attempt %d: %s", job.job_id, job.attempts, type(error).__name__)
        log.debug("job %s failure", job.job_id, exc_info=True)
        if job.attempts >= s.summary_max_attempts:
            return _end(ctx, job, worker, "dead", f"{type(error).__name__} on the last of {job.attempts} attempts")
        try:
            job_store.release(ctx.tables, job_id=job.job_id, worker=worker, error=type(error).__name__)
        except LeaseLost:
            pass
        return None


def _end(ctx: WorkerContext, job: SummaryJob, worker: str, status: Any, error: str) -> SummaryJob | None:
    try:
        return job_store.finish(ctx.tables, job_id=job.job_id, worker=worker, status=status, error=error)
    except LeaseLost:
        return None


def callback_body(job: SummaryJob) -> bytes:
    assert job.result is not None
    payload = {
        "job_id": job.job_id,
        "case_id": job.case_id,
        "status": "done",
        "format": job.format,
        "result": job.result.model_dump(mode="json"),
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def deliver(ctx: WorkerContext, job: SummaryJob, worker: str) -> SummaryJob | None:
    """Send the signed callback, retrying with backoff; record every attempt; dead after the last failure."""
    s = ctx.settings
    assert job.callback_url is not None
    if s.callback_secret is None:
        return job_store.finish(
            ctx.tables, job_id=job.job_id, worker=worker, status="failed", error="no callback secret is configured"
        )
    sent = len(job.deliveries)
    if job.deliveries and job.deliveries[-1].outcome == "sending":
        # A worker stopped between sending and recording: the receiver may or may not have it.
        job_store.end_delivery(
            ctx.tables,
            job_id=job.job_id,
            worker=worker,
            attempt=sent,
            outcome="unknown",
            status_code=None,
            error="the previous worker stopped while sending",
        )
    remaining = s.callback_max_attempts - sent
    if remaining <= 0:
        return job_store.finish(
            ctx.tables, job_id=job.job_id, worker=worker, status="dead", error=f"callback failed {sent} times"
        )
    body = callback_body(job)
    timeout = min(s.callback_timeout_s, s.summary_lease_s / 2)
    state: dict[str, Any] = {"attempt": sent, "job": job}

    def _sleep(seconds: float) -> None:  # a stopping worker wakes at once
        ctx.stop.wait(seconds)

    def attempt_once() -> None:
        state["attempt"] += 1
        n = state["attempt"]
        attempt = DeliveryAttempt(attempt=n, started_at=datetime.now(timezone.utc), worker=worker, outcome="sending")
        job_store.begin_delivery(
            ctx.tables, job_id=job.job_id, worker=worker, attempt=attempt, lease_s=s.summary_lease_s
        )
        try:
            callbacks.check_callback_url(job.callback_url, production=s.environment == "production")  # type: ignore[arg-type]
        except InvalidInput as error:
            job_store.end_delivery(
                ctx.tables,
                job_id=job.job_id,
                worker=worker,
                attempt=n,
                outcome="refused",
                status_code=None,
                error=str(error),
            )
            raise
        try:
            response = callbacks.post(
                ctx.http,
                url=job.callback_url or "",
                body=body,
                secret=s.callback_secret.get_secret_value(),  # type: ignore[arg-type, union-attr]
                delivery_id=job.job_id,
                attempt=n,
                timeout=timeout,
            )
        except httpx.HTTPError as error:
            job_store.end_delivery(
                ctx.tables,
                job_id=job.job_id,
                worker=worker,
                attempt=n,
                outcome="failed",
                status_code=None,
                error=type(error).__name__,
            )
            raise _NotDelivered from None
        if 200 <= response.status_code < 300:
            state["job"] = job_store.end_delivery(
                ctx.tables,
                job_id=job.job_id,
                worker=worker,
                attempt=n,
                outcome="delivered",
                status_code=response.status_code,
                error=None,
            )
            return
        job_store.end_delivery(
            ctx.tables,
            job_id=job.job_id,
            worker=worker,
            attempt=n,
            outcome="failed",
            status_code=response.status_code,
            error=None,
        )
        raise _NotDelivered

    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(_NotDelivered),
            stop=stop_after_attempt(remaining),
            wait=wait_exponential(multiplier=s.callback_backoff_s, max=60),
            sleep=_sleep,
            reraise=True,
        ):
            with attempt:
                attempt_once()
    except _NotDelivered:
        return job_store.finish(
            ctx.tables,
            job_id=job.job_id,
            worker=worker,
            status="dead",
            error=f"callback failed {state['attempt']} times",
        )
    except InvalidInput as error:
        return job_store.finish(ctx.tables, job_id=job.job_id, worker=worker, status="dead", error=str(error))
    return state["job"]


def worker_id(n: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:w{n}:{uuid.uuid4().hex[:6]}"


class SummaryWorkers:
    """N worker threads that claim jobs from DynamoDB; `wake()` after queuing a job cuts the wait."""

    def __init__(
        self, *, settings: Settings, investigator: Investigator, tables: Tables, count: int | None = None
    ) -> None:
        self.ctx = WorkerContext(settings=settings, investigator=investigator, tables=tables)
        self.count = settings.summary_workers if count is None else count
        self.woken = threading.Event()
        self.threads: list[threading.Thread] = []
        self.processed = 0

    def wake(self) -> None:
        self.woken.set()

    def start(self) -> None:
        for n in range(self.count):
            thread = threading.Thread(target=self._run, args=(worker_id(n),), name=f"summary-worker-{n}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the workers to stop after their current step; a job left mid-way is re-claimed when its lease expires."""
        self.ctx.stop.set()
        self.woken.set()
        for thread in self.threads:
            thread.join(timeout=timeout)
        self.ctx.http.close()

    def work_one(self, worker: str) -> bool:
        """Claim and work one job if there is one; True if a job was worked."""
        ids = job_store.claimable(self.ctx.tables, limit=8)  # by priority, shuffled within one
        for job_id in ids:
            if self.ctx.stop.is_set():
                return False
            job = job_store.claim(
                self.ctx.tables, job_id=job_id, worker=worker, lease_s=self.ctx.settings.summary_lease_s
            )
            if job is not None:
                process(self.ctx, job, worker)
                self.processed += 1
                return True
        return False

    def _run(self, worker: str) -> None:
        poll = self.ctx.settings.summary_poll_s
        while not self.ctx.stop.is_set():
            try:
                if self.work_one(worker):
                    continue
            except Exception as error:  # the store unreachable: wait and look again
                log.warning("summary worker %s: %s", worker, type(error).__name__)
            self.woken.wait(poll)
            self.woken.clear()


@asynccontextmanager
async def running_workers(
    app: Any, *, settings: Settings, investigator: Investigator, tables: Tables
) -> AsyncIterator[SummaryWorkers]:
    """The API process's workers, started with the app and stopped with it."""
    from starlette.concurrency import run_in_threadpool

    workers = SummaryWorkers(settings=settings, investigator=investigator, tables=tables)
    workers.start()
    app.state.summary_workers = workers
    try:
        yield workers
    finally:
        await run_in_threadpool(workers.stop)


def queue_depth_reader(tables: Tables) -> Callable[[], int]:
    return lambda: job_store.queue_depth(tables)
