"""The report pipeline's progress as server-sent events (POST /v1/cases/{case_id}/report/stream).

`draft_and_store` runs in a worker thread (starlette's threadpool, like the POST route), started from a task of
its own and not from the request's: a client that goes away stops receiving events, but the report is still
drafted, checked, stored with its audit record and counted in the metrics, exactly as through
POST /v1/cases/{case_id}/report. The pipeline's
progress callbacks (called in that thread) reach the event loop through `call_soon_threadsafe` onto an
asyncio queue that the SSE generator reads, so events arrive in the order the pipeline made them, and the
final `report` (or `error`) event is put there by the same thread after the report is stored.

Events: `evidence` {items, events, seconds}; `drafting` {attempt}; `token` {attempt, narrative} (the narrative
so far, or null while the model writes other fields; at most one per TOKEN_INTERVAL_S, and the last one held
back is sent before the next stage so the final narrative of an attempt is never lost); `checks` {attempt, ok,
problems}; then `report` (the InvestigationReport) or `error` (problem+json), and the stream ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from fraudagent.agent.pipeline import draft_and_store
from fraudagent.agent.report import InvestigationReport
from fraudagent.agent.scheduler import ModelBusy
from fraudagent.core.errors import Conflict, DependencyUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)

TOKEN_INTERVAL_S = 0.2  # at most 5 token events a second
STAGES = ("evidence", "drafting", "token", "checks")  # what the pipeline reports; anything else is not forwarded
FINAL = ("report", "error")

EVENT_NAMES = [*STAGES, *FINAL]
_RUNNING: set[asyncio.Task[None]] = set()  # the pipelines still running, kept referenced until they end


def problem_body(error: Exception) -> dict[str, Any]:
    """The problem+json body the API's handlers (api/problems.py) answer for `error`, for an `error` event."""
    if isinstance(error, NotFound):
        return {
            "type": "/problems/not-found",
            "title": f"{error.kind.capitalize()} not found",
            "status": 404,
            "detail": str(error),
        }
    if isinstance(error, Conflict):
        return {"type": "/problems/conflict", "title": "Conflict", "status": 409, "detail": str(error)}
    if isinstance(error, InvalidInput):
        return {
            "type": "/problems/invalid-input",
            "title": "Invalid input",
            "status": 422,
            "detail": str(error),
            "errors": [{"pointer": p.path, "detail": p.message} for p in error.problems],
        }
    if isinstance(error, ModelBusy):  # no Retry-After header once the stream has started: the hint is in the body
        return {
            "type": "/problems/model-busy",
            "title": "Model busy",
            "status": 503,
            "detail": str(error),
            "retry_after_s": error.retry_after_s,
        }
    if isinstance(error, DependencyUnavailable):
        return {
            "type": "/problems/unavailable",
            "title": "Service unavailable",
            "status": 503,
            "detail": f"{error.service} is unavailable; retry later",
        }
    return {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "an unexpected error; it was logged",
    }


class Relay:
    """Carries (event, data) pairs from the pipeline thread to the event loop; throttles `token` events.

    `progress` is the pipeline's ProgressFn. Once `close()` is called (the client is gone) nothing more is
    scheduled on the loop; the pipeline goes on regardless.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        interval: float = TOKEN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.interval = interval
        self.clock = clock
        self.closed = False
        self._lock = threading.Lock()
        self._held: dict[str, Any] | None = None  # the newest token event not yet sent
        self._last_token = float("-inf")

    def progress(self, stage: str, data: dict[str, Any]) -> None:
        """Called by the pipeline (in its thread). Never raises: progress must not break a report."""
        try:
            if stage not in STAGES:
                return
            with self._lock:
                if stage == "token":
                    event = {"attempt": data.get("attempt"), "narrative": data.get("narrative")}
                    now = self.clock()
                    if now - self._last_token < self.interval:
                        self._held = event
                        return
                    self._last_token, self._held = now, None
                    self._put("token", event)
                    return
                self._flush()
                self._put(stage, dict(data))
        except Exception:
            log.exception("report progress event %s not relayed", stage)

    def finish(self, name: str, data: Any) -> None:
        """The last event (`report` or `error`), after any token event still held back."""
        with self._lock:
            self._flush()
            self._put(name, data)

    def close(self) -> None:
        self.closed = True

    def _flush(self) -> None:
        if self._held is not None:
            self._last_token = self.clock()
            self._put("token", self._held)
            self._held = None

    def _put(self, name: str, data: Any) -> None:
        if self.closed:
            return
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (name, data))
        except RuntimeError:  # the loop is closed (server shutting down): nobody is listening
            self.closed = True


def _encode(name: str, data: Any) -> str:
    if isinstance(data, InvestigationReport):
        return data.model_dump_json()
    return json.dumps(data, default=str)


def report_events(
    investigator: Any,
    case_id: str,
    *,
    model: str | None,
    requested_by: str,
    observe: Callable[[InvestigationReport], None],
    draft: Callable[..., InvestigationReport] | None = None,
) -> AsyncIterator[dict[str, str]]:
    """The SSE events of one streamed report. The pipeline starts when the stream is first read.

    `observe` records the finished report (the API's metrics); it runs in the pipeline thread, so it is counted
    even when the client has gone. `draft` replaces `draft_and_store` (tests of the plumbing).
    """
    run = draft or draft_and_store

    async def events() -> AsyncIterator[dict[str, str]]:
        loop = asyncio.get_running_loop()
        relay = Relay(loop)

        def work() -> None:
            try:
                report = run(investigator, case_id, model=model, requested_by=requested_by, progress=relay.progress)
            except Exception as error:
                body = problem_body(error)
                if body["status"] == 500:
                    log.error("streamed report for case %s failed: %s", case_id, type(error).__name__, exc_info=error)
                else:
                    log.warning("streamed report for case %s failed: %s", case_id, body["title"])
                relay.finish("error", body)
                return
            try:
                observe(report)
            except Exception:
                log.exception("report metrics not recorded")
            relay.finish("report", report)

        context = contextvars.copy_context()  # the request id on the pipeline's log lines
        task = loop.create_task(run_in_threadpool(context.run, work))  # not cancelled with the request
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)
        try:
            while True:
                name, data = await relay.queue.get()
                yield {"event": name, "data": _encode(name, data)}
                if name in FINAL:
                    return
        finally:
            relay.close()  # the client is gone or the stream is over; the pipeline runs to its end regardless

    return events()
