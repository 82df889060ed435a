"""Running a suite: isolated stores, the solver on every case, scores, metrics, the files of a run.

Each run loads the suite's bundles (with `expected` removed) into stores of its
own: DynamoDB tables under a fresh prefix and a fresh Chroma folder and
collection; the bundles' past cases go to that past-case store. The stores are
removed when the run ends. Files written to the output folder:

    results.json   the public contract (evals.models.RunResults)
    report.html    self-contained, with charts
    junit.xml      one test case per bundle, for CI systems
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fraudagent.agent.pipeline import Investigator
from fraudagent.agent.prompts import PROMPT_VERSION
from fraudagent.agent.report import InvestigationReport
from fraudagent.bootstrap import build_investigator
from fraudagent.bundles.flows import LoadPlan, write_plan
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.evals import reports
from fraudagent.evals.metrics import compute_metrics
from fraudagent.evals.models import CaseResult, RunMeta, RunResults, SolverName
from fraudagent.evals.numbers import evidence_vocabulary
from fraudagent.evals.scorers import (
    FAILING,
    CaseContext,
    InjectionView,
    bundle_evidence_ids,
    derive_disposition,
    injection_success,
    score_case,
)
from fraudagent.evals.solvers import SOLVERS
from fraudagent.evals.suites import Suite, agent_bundles, select
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables
from fraudagent.tools.scores import StoredScores

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
PROMPT_VERSIONS = {"agent": PROMPT_VERSION, "naive": "naive-1", "policy": "none"}


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def isolated_settings(settings: Settings, run_id: str, chroma_dir: Path) -> Settings:
    """The run's own stores: a fresh table prefix, Chroma folder and collection."""
    return settings.model_copy(
        update={
            "table_prefix": f"{settings.table_prefix}-eval-{run_id}"[:64],
            "chroma_path": chroma_dir,
            "chroma_collection": f"eval_{run_id}",
        }
    )


def _drop_tables(history: Tables, prefix: str) -> None:
    """Delete every table of the run (all of them carry its own prefix)."""
    try:
        names = [n for page in history.client.get_paginator("list_tables").paginate() for n in page["TableNames"]]
    except Exception as error:  # cleanup must not hide the run's result
        log.warning("could not list eval tables: %s", type(error).__name__)
        return
    for table in names:
        if table.startswith(f"{prefix}-"):
            try:
                history.client.delete_table(TableName=table)
            except Exception as error:
                log.warning("could not delete eval table %s: %s", table, type(error).__name__)


def _solve(
    investigator: Investigator, solver: SolverName, bundle: CaseBundle, model: str | None, past_case_ids: set[str]
) -> CaseResult:
    case_id = bundle.case.case_id
    report: InvestigationReport | None = None
    error: str | None = None
    tokens = 0
    started = time.perf_counter()
    try:
        report = SOLVERS[solver](investigator, case_id, model)
        tokens = report.usage.prompt_tokens + report.usage.completion_tokens
    except Exception as failure:  # a solver failure is a scored failure, not a crash of the run
        error = str(failure) or type(failure).__name__
        usage = getattr(failure, "usage", None)
        tokens = (usage.prompt_tokens + usage.completion_tokens) if usage else 0
    latency = time.perf_counter() - started
    evidence_ids = bundle_evidence_ids(bundle, past_case_ids)
    pack = None
    try:
        pack = investigator.evidence(case_id)
        evidence_ids |= set(pack.items)
    except Exception as failure:
        log.warning("evidence for scoring %s failed: %s", case_id, type(failure).__name__)
    lines = (pack.cuts + [f"{len(pack.events)} events in the window"]) if pack else []
    known = evidence_vocabulary(bundle, pack, lines)
    ctx = CaseContext(bundle=bundle, report=report, evidence_ids=evidence_ids, known=known, error=error)
    return CaseResult(
        case_id=case_id,
        expected=bundle.expected,  # type: ignore[arg-type]
        report=report.model_dump(mode="json") if report else None,
        error=error,
        predicted_typology=report.typology.value if report else None,
        predicted_disposition=derive_disposition(report) if report else None,
        scores=score_case(ctx),
        latency_s=round(latency, 3),
        tokens=tokens,
        path=report.path if report else None,
    )


def finish_cases(results: list[CaseResult], twins: dict[str, tuple[str, str]]) -> None:
    """Injection scores (which need the clean twin) and each case's pass/fail."""
    by_id = {r.case_id: r for r in results}

    def view(r: CaseResult, attacked: bool) -> InjectionView:
        return InjectionView(
            expected=r.expected,
            report=InvestigationReport.model_validate(r.report) if r.report else None,
            attacked=attacked,
            must_cite_recall=r.scores["must_cite_recall"].value,
            action_acceptable=r.scores["action_acceptable"].value,
        )

    for r in results:
        twin_id, role = twins.get(r.case_id, (None, None))
        r.twin, r.kind = twin_id, role or r.kind
        twin = by_id.get(twin_id) if role == "attacked" and twin_id else None
        r.scores["injection_success"] = injection_success(
            view(r, role == "attacked"), view(twin, False) if twin else None
        )
        failures = [f"error: {r.error}"] if r.error else []
        failures += [
            f"{name}: {r.scores[name].explanation}"
            for name, bad in FAILING.items()
            if name in r.scores and r.scores[name].value == bad
        ]
        validity = r.scores["citation_validity"].value
        if validity is not None and validity < 1:
            failures.append(f"citation_validity: {r.scores['citation_validity'].explanation}")
        r.failures = failures
        r.passed = not failures


def run_suite(
    *,
    suite: Suite,
    settings: Settings,
    out_dir: Path,
    solver: SolverName,
    model: str | None = None,
    concurrency: int = 1,
    limit: int | None = None,
    seed: int = 0,
    samples: int = 1000,
    embedder: Any | None = None,
    model_factory: Any | None = None,
    scheduler: Any | None = None,
    judge_model: str | None = None,
    on_progress: Progress | None = None,
    run_id: str | None = None,
) -> RunResults:
    progress = on_progress or (lambda *_: None)
    run_id = run_id or uuid.uuid4().hex[:8]
    started = datetime.now(timezone.utc)
    bundles = select(suite, limit)
    meta = RunMeta(
        run_id=run_id,
        suite=suite.spec.name,
        suite_path=str(suite.path),
        solver=solver,
        model=model or settings.llm_model if solver != "policy" else "none",
        prompt_version=PROMPT_VERSIONS[solver],
        git_commit=git_commit(),
        seed=seed,
        started_at=started,
        cases=len(bundles),
        concurrency=concurrency,
        limit=limit,
        bootstrap_samples=samples,
        judge_model=judge_model,
    )
    chroma_dir = Path(tempfile.mkdtemp(prefix=f"fraudagent-eval-{run_id}-"))
    iso = isolated_settings(settings, run_id, chroma_dir)
    history = Tables.connect(iso)
    try:
        dynamo.create_tables(history.client, iso)
        past_store = PastCaseStore.from_settings(iso, embedder=embedder)
        # Bundles without their past cases, then every past case in one batched upsert (one embedding pass).
        plain = [b.model_copy(update={"past_cases": []}) for b in agent_bundles(bundles)]
        write_plan(
            history,
            LoadPlan(bundles=plain),
            past_case_store=None,
            scorer=None,
            on_progress=lambda what, done, total: progress(f"loading {what}", done, total),
        )
        past = list({p.case_id: p for b in bundles for p in b.past_cases}.values())
        if past:
            progress("loading past cases", 0, len(past))
            past_store.upsert(past)
            progress("loading past cases", len(past), len(past))
        past_ids = {p.case_id for p in past}
        # `scheduler`: the serving process's, so a run started through the API queues behind analysts' chat turns
        investigator = build_investigator(
            iso,
            tables=history,
            past_cases=past_store,
            model_factory=model_factory,
            scheduler=scheduler,
            scores=StoredScores(),
        )  # a suite is judged on the scores its bundles carry
        results: list[CaseResult] = []
        progress("cases", 0, len(bundles))
        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            futures = [pool.submit(_solve, investigator, solver, b, model, past_ids) for b in bundles]
            for done, future in enumerate(futures, start=1):
                results.append(future.result())
                progress("cases", done, len(bundles))
        for r in results:
            r.kind = suite.spec.kinds.get(r.case_id)
        finish_cases(results, suite.twin_of())
        judge = None
        if judge_model:
            from fraudagent.evals.judge import judge_run

            judge = judge_run(
                results,
                investigator=investigator,
                judge_model=judge_model,
                model_factory=model_factory,
                on_progress=lambda done, total: progress("judging", done, total),
            )
    finally:
        _drop_tables(history, iso.table_prefix)
        shutil.rmtree(chroma_dir, ignore_errors=True)
    versions = [r.report.get("policy_version") for r in results if r.report and r.report.get("policy_version")]
    meta.policy_version = versions[0] if versions else None
    meta.finished_at = datetime.now(timezone.utc)
    run = RunResults(
        meta=meta, metrics=compute_metrics(results, samples=samples, seed=seed), cases=results, judge=judge
    )
    write_run(run, out_dir)
    return run


def write_run(run: RunResults, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(run.model_dump_json(indent=2) + "\n", encoding="utf-8")
    (out_dir / "report.html").write_text(reports.run_html(run), encoding="utf-8")
    (out_dir / "junit.xml").write_text(reports.junit_xml(run), encoding="utf-8")


def read_run(path: Path) -> RunResults:
    """A run folder (or its results.json)."""
    from fraudagent.core.errors import InvalidInput

    file = path / "results.json" if path.is_dir() else path
    try:
        return RunResults.model_validate_json(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInput(f"cannot read {file}: {error.strerror}", []) from None
    except ValueError as error:
        raise InvalidInput(f"{file} is not an eval results file: {str(error).splitlines()[0]}", []) from None
