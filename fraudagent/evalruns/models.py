"""Eval runs as the API takes and returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fraudagent.evals.models import SolverName

RunStatus = Literal["queued", "running", "succeeded", "failed", "interrupted"]
RUN_STATUSES: tuple[RunStatus, ...] = ("queued", "running", "succeeded", "failed", "interrupted")
FINISHED: tuple[RunStatus, ...] = ("succeeded", "failed", "interrupted")


class EvalRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suite: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$",
        description=(
            "a shipped suite (core, adversarial, edge, handwritten) or a folder name in FRAUDAGENT_EVAL_SUITES_DIR;"
            " never a path"
        ),
    )
    solver: SolverName = Field(
        default="agent", description="policy (no LLM), agent (our pipeline) or naive (plain LangChain agent)"
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]*$",
        description="model name on the configured endpoint (default FRAUDAGENT_LLM_MODEL)",
    )
    limit: int | None = Field(
        default=None, ge=1, le=100_000, description="only this many cases, round-robin over typologies"
    )
    concurrency: int = Field(default=1, ge=1, le=16, description="cases solved in parallel")


class MetricSummary(BaseModel):
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0


class GateResult(BaseModel):
    passed: bool
    broken: list[str] = Field(
        default_factory=list, description="each threshold the run breaks, e.g. 'typology_accuracy 0.61 < 0.65'"
    )


class RunProgress(BaseModel):
    stage: str = Field(description="what the run is doing: loading, cases, judging")
    done: int
    total: int


class EvalRun(BaseModel):
    run_id: str
    status: RunStatus
    suite: str
    solver: SolverName
    model: str | None = None
    limit: int | None = None
    concurrency: int = 1
    requested_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    progress: RunProgress | None = None
    error: str | None = Field(default=None, description="why the run failed or was interrupted")
    cases: int | None = Field(default=None, description="cases scored")
    cases_passed: int | None = None
    metrics: dict[str, MetricSummary] = Field(
        default_factory=dict, description="every metric with its bootstrap 95% interval"
    )
    gate: GateResult | None = Field(default=None, description="the suite's thresholds against this run")
    results_url: str | None = Field(default=None, description="results.json (the eval runner's public contract)")
    report_url: str | None = Field(default=None, description="the self-contained HTML report")


class EvalRunAccepted(BaseModel):
    run_id: str
    status: RunStatus


class EvalRunPage(BaseModel):
    items: list[EvalRun]
    next_cursor: str | None = None
