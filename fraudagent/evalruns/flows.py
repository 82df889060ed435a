"""Executing eval runs for the API: a small pool in the app process, a heartbeat, and recovery at start-up.

A run is queued in DynamoDB first, then claimed with a conditional write (queued -> running), so two app
processes never execute the same run. While it runs it writes a heartbeat and its progress; a run whose
process died stops beating and is marked `interrupted` by the next process that starts. Runs still queued
when a process stops are picked up by the next one. The files (results.json, report.html, junit.xml) go to
FRAUDAGENT_EVAL_RUNS_DIR/<run_id> on the machine that ran it; the record keeps the metrics and the gate.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from fraudagent.agent.pipeline import Investigator
from fraudagent.core.errors import FraudAgentError
from fraudagent.core.settings import Settings
from fraudagent.evalruns.models import EvalRunRequest
from fraudagent.evals.flows import run_suite
from fraudagent.evals.metrics import gate
from fraudagent.evals.suites import load_suite, locate_by_name
from fraudagent.store import audit
from fraudagent.store import evalruns as run_store
from fraudagent.store.evalruns import StatusChanged
from fraudagent.store.tables import Tables

log = logging.getLogger(__name__)


def subject(run_id: str) -> str:
    return f"evalrun#{run_id}"


class EvalRunner:
    """Runs queued eval runs on a few daemon threads; stopping leaves queued runs to the next process."""

    def __init__(self, *, settings: Settings, investigator: Investigator, tables: Tables) -> None:
        self.settings = settings
        self.investigator = investigator
        self.tables = tables
        # Daemon threads, not a pool: stopping the service must not wait for a run that may last hours; a run cut
        # off that way stops beating and is marked `interrupted` by the next process.
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, name=f"eval-run-{n}", daemon=True)
            for n in range(settings.eval_api_parallel_runs)
        ]

    def run_dir(self, run_id: str) -> Path:
        return self.settings.eval_runs_path / run_id

    def start(self) -> None:
        """With the app: start the workers, then recover (runs of a dead process become `interrupted`; queued
        runs are submitted again)."""
        for worker in self._workers:
            worker.start()
        try:
            self._recover()
        except Exception as error:  # the API must start even when DynamoDB is down; the next start recovers
            log.warning("eval runs not recovered at start-up: %s", type(error).__name__)

    def _recover(self) -> None:
        for run in run_store.stale_runs(self.tables, heartbeat_s=self.settings.eval_heartbeat_s):
            try:
                run_store.finish(
                    self.tables,
                    run.run_id,
                    status="interrupted",
                    values={"error": "the service stopped during the run; start a new run"},
                )
            except StatusChanged:
                continue
            audit.record(
                self.investigator.history, subject=subject(run.run_id), action="evalrun.interrupted", actor="system"
            )
        for run in run_store.queued_runs(self.tables):
            self.submit(run.run_id)

    def submit(self, run_id: str) -> None:
        self._queue.put(run_id)

    def stop(self) -> None:
        """Queued runs stay queued (for the next process); a run in progress is abandoned with the process."""
        self._stopping.set()

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                run_id = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._execute(run_id)
            except Exception as error:  # e.g. DynamoDB down at claim time: the run stays queued for the next start
                log.warning("eval run %s not executed: %s", run_id, type(error).__name__)

    def _execute(self, run_id: str) -> None:
        if self._stopping.is_set() or not run_store.claim(self.tables, run_id):
            return
        request = run_store.request_of(run_store.get_item(self.tables, run_id))
        beat = _Heartbeat(self.tables, run_id, every_s=self.settings.eval_heartbeat_s)
        beat.start()
        try:
            values, status = self._run(run_id, request, beat), "succeeded"
        except FraudAgentError as error:  # a suite that does not load, a store that is down: said in the record
            values, status = {"error": str(error)}, "failed"
        except Exception as error:  # the record must never stay "running" for a failure
            log.exception("eval run %s failed", run_id)
            values, status = {"error": f"internal error: {type(error).__name__}"}, "failed"
        finally:
            beat.stop()
        try:
            run_store.finish(self.tables, run_id, status=status, values=values)  # type: ignore[arg-type]
        except StatusChanged:
            log.warning("eval run %s changed status while running; result kept on disk only", run_id)
            return
        audit.record(
            self.investigator.history,
            subject=subject(run_id),
            action=f"evalrun.{status}",
            actor="system",
            details={"cases": values.get("cases"), "gate_passed": (values.get("gate") or {}).get("passed")},
        )

    def _run(self, run_id: str, request: EvalRunRequest, beat: _Heartbeat) -> dict[str, Any]:
        suite = load_suite(str(locate_by_name(request.suite, extra=self.settings.eval_suites_dir)))
        past = self.investigator.past_cases
        results = run_suite(
            suite=suite,
            settings=self.settings,
            out_dir=self.run_dir(run_id),
            solver=request.solver,
            model=request.model,
            concurrency=request.concurrency,
            limit=request.limit,
            seed=self.settings.eval_seed,
            samples=self.settings.eval_bootstrap_samples,
            embedder=past.embedder if past is not None else None,
            model_factory=self.investigator.model_factory,
            scheduler=self.investigator.scheduler,
            run_id=run_id,
            on_progress=lambda stage, done, total: beat.progress(stage, done, total),
        )
        broken = gate(results.metrics, minimum=suite.thresholds.min, maximum=suite.thresholds.max)
        return {
            "cases": len(results.cases),
            "cases_passed": sum(c.passed for c in results.cases),
            "metrics": {
                name: m.model_dump(include={"value", "ci_low", "ci_high", "n"}) for name, m in results.metrics.items()
            },
            "gate": {"passed": not broken, "broken": broken},
            "progress": None,
        }


class _Heartbeat:
    """Writes the run's heartbeat (and latest progress) every `every_s` seconds from its own thread."""

    def __init__(self, tables: Tables, run_id: str, *, every_s: float) -> None:
        self.tables, self.run_id, self.every_s = tables, run_id, every_s
        self._latest: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"eval-heartbeat-{run_id}", daemon=True)
        self._last_write = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def progress(self, stage: str, done: int, total: int) -> None:
        self._latest = {"stage": stage, "done": done, "total": total}
        # Progress shows up within a second or two, without a write per case on big suites.
        if time.monotonic() - self._last_write >= 1.0:
            self._write()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self._write()

    def _write(self) -> None:
        self._last_write = time.monotonic()
        try:
            run_store.heartbeat(self.tables, self.run_id, progress=self._latest)
        except Exception as error:  # a missed beat is retried on the next one
            log.warning("eval run %s heartbeat failed: %s", self.run_id, type(error).__name__)
