"""Evaluator routes: POST /v1/evals/runs (202, runs in the background), GET its status, metrics, results and report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse

from fraudagent.api import problems
from fraudagent.api.deps import Caller, SettingsDep, TablesDep, require_role
from fraudagent.core.errors import NotFound
from fraudagent.evalruns.flows import EvalRunner, subject
from fraudagent.evalruns.models import EvalRun, EvalRunAccepted, EvalRunPage, EvalRunRequest, RunStatus
from fraudagent.evals.flows import read_run
from fraudagent.evals.models import RunResults
from fraudagent.evals.suites import locate_by_name
from fraudagent.store import audit
from fraudagent.store import evalruns as run_store
from fraudagent.store.tables import Tables

router = APIRouter(prefix="/v1/evals/runs", tags=["evals"], responses=problems.responses(*problems.AUTHED))
EvaluatorDep = Annotated[Caller, Depends(require_role("evaluator"))]
RunId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
_PROBLEMS = problems.responses(404)
_REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def get_runner(request: Request) -> EvalRunner:
    return request.app.state.eval_runner


RunnerDep = Annotated[EvalRunner, Depends(get_runner)]


def _store(runner: EvalRunner) -> Tables:
    return runner.tables


def _with_links(run: EvalRun) -> EvalRun:
    if run.status != "succeeded":
        return run
    base = f"/v1/evals/runs/{run.run_id}"
    return run.model_copy(update={"results_url": f"{base}/results", "report_url": f"{base}/report"})


@router.post("", response_model=EvalRunAccepted, status_code=status.HTTP_202_ACCEPTED, responses=_PROBLEMS)  # type: ignore[arg-type]
def start_run(
    body: EvalRunRequest,
    response: Response,
    caller: EvaluatorDep,
    settings: SettingsDep,
    history: TablesDep,
    runner: RunnerDep,
) -> EvalRunAccepted:
    """Queue a suite run with a solver (and optionally a model); it runs in the background in stores of its own.

    Poll `GET /v1/evals/runs/{run_id}` for its progress, then its metrics and the suite's gate.
    """
    locate_by_name(body.suite, extra=settings.eval_suites_dir)  # an unknown suite is a 422 now, not a failed run later
    if len(run_store.queued_runs(runner.tables)) >= settings.eval_api_max_queued:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many eval runs are queued; retry later",
            headers={"Retry-After": "60"},
        )
    run = run_store.create_run(
        runner.tables,
        run_id=run_store.new_run_id(),
        request=body,
        requested_by=caller.name,
        caller_key_id=caller.key_id,
    )
    audit.record(
        history,
        subject=subject(run.run_id),
        action="evalrun.requested",
        actor=caller.name,
        details={"suite": body.suite, "solver": body.solver, "model": body.model, "limit": body.limit},
    )
    runner.submit(run.run_id)
    response.headers["Location"] = f"/v1/evals/runs/{run.run_id}"
    return EvalRunAccepted(run_id=run.run_id, status=run.status)


@router.get("", response_model=EvalRunPage)
def list_runs(
    _: EvaluatorDep,
    runner: RunnerDep,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> EvalRunPage:
    """Eval runs, newest first; `status` keeps only those with that status."""
    page = run_store.list_runs(_store(runner), status=status, limit=limit, cursor=cursor)
    return page.model_copy(update={"items": [_with_links(r) for r in page.items]})


@router.get("/{run_id}", response_model=EvalRun, responses=_PROBLEMS)  # type: ignore[arg-type]
def get_run(run_id: RunId, _: EvaluatorDep, runner: RunnerDep) -> EvalRun:
    """A run's status and progress; once it succeeded, every metric with its 95% interval and the gate."""
    return _with_links(run_store.get_run(_store(runner), run_id))


def _files(runner: EvalRunner, run_id: str) -> RunResults:
    run = run_store.get_run(_store(runner), run_id)
    folder = runner.run_dir(run_id)
    if run.status != "succeeded" or not (folder / "results.json").is_file():
        raise NotFound(
            "eval run results", f"{run_id} (status {run.status}; files are kept on the instance that ran it)"
        )
    return read_run(folder)


@router.get("/{run_id}/results", response_model=RunResults, responses=_PROBLEMS)  # type: ignore[arg-type]
def get_results(run_id: RunId, _: EvaluatorDep, runner: RunnerDep) -> RunResults:
    """results.json of a finished run: metadata, every case with its report and scores, and the metrics."""
    return _files(runner, run_id)


@router.get("/{run_id}/report", response_class=HTMLResponse, responses=_PROBLEMS)  # type: ignore[arg-type]
def get_report(run_id: RunId, _: EvaluatorDep, runner: RunnerDep) -> HTMLResponse:
    """The run's self-contained HTML report (charts inline)."""
    _files(runner, run_id)
    html = (runner.run_dir(run_id) / "report.html").read_text(encoding="utf-8")
    # The report quotes reports (escaped); the policy also keeps any script or remote fetch out of an evaluator's
    # browser.
    return HTMLResponse(html, headers={"Content-Security-Policy": _REPORT_CSP})
