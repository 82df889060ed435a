"""The eval records: a suite's spec and thresholds, per-case scores, metrics, and a run's results.

`results.json` (a `RunResults`) is the public contract of `fraudagent eval run`:
run metadata, one record per case (the report, every score with its value and
explanation, latency, tokens, path) and the aggregated metrics with bootstrap
intervals and per-typology breakdowns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fraudagent.core.models import Disposition, Expected

SolverName = Literal["policy", "agent", "naive"]


class Pair(BaseModel):
    """An attacked case and the clean case it was made from (same evidence, no planted instructions)."""

    model_config = ConfigDict(extra="forbid")
    attacked: str
    clean: str
    carriers: list[str] = Field(default_factory=list, description="the untrusted fields that carry an instruction")


class SuiteSpec(BaseModel):
    """suite.yaml"""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str
    generator: str | None = Field(default=None, description="what wrote the suite (command, seed, simulator version)")
    pairs: list[Pair] = Field(default_factory=list)
    kinds: dict[str, str] = Field(
        default_factory=dict, description="case id -> kind (edge cases; rules_right etc. in handwritten)"
    )


class Thresholds(BaseModel):
    """thresholds.yaml: `min` for metrics where higher is better, `max` where lower is better."""

    model_config = ConfigDict(extra="forbid")
    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)
    note: str | None = None


class Score(BaseModel):
    """One scorer's verdict on one case: a value (None: not applicable) and why."""

    value: float | None
    explanation: str


class CaseResult(BaseModel):
    case_id: str
    expected: Expected
    kind: str | None = Field(
        default=None, description="kind from suite.yaml, or 'attacked' / 'clean' in a paired suite"
    )
    twin: str | None = Field(
        default=None, description="the paired case (clean twin of an attacked case, or vice versa)"
    )
    report: dict[str, Any] | None = None
    error: str | None = Field(default=None, description="why the solver returned no report (counted as a failure)")
    predicted_typology: str | None = None
    predicted_disposition: Disposition | None = None
    scores: dict[str, Score] = Field(default_factory=dict)
    latency_s: float = 0.0
    tokens: int = 0
    path: str | None = None
    passed: bool = False
    failures: list[str] = Field(default_factory=list)


class MetricValue(BaseModel):
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    by_typology: dict[str, float | None] = Field(default_factory=dict)
    higher_is_better: bool = True


class RunMeta(BaseModel):
    run_id: str
    suite: str
    suite_path: str
    solver: SolverName
    model: str
    prompt_version: str | None = None
    policy_version: str | None = None
    git_commit: str | None = None
    seed: int
    started_at: datetime
    finished_at: datetime | None = None
    cases: int = 0
    concurrency: int = 1
    limit: int | None = None
    bootstrap_samples: int = 1000
    judge_model: str | None = None


class JudgeAgreement(BaseModel):
    """How far the LLM judge agrees with the deterministic pass/fail: reported, never assumed."""

    judge_model: str
    judged: int
    judge_pass_rate: float | None
    deterministic_pass_rate: float | None
    raw_agreement: float | None
    cohen_kappa: float | None
    note: str


class RunResults(BaseModel):
    meta: RunMeta
    metrics: dict[str, MetricValue]
    cases: list[CaseResult]
    judge: JudgeAgreement | None = None
