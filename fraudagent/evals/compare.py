"""Comparing two runs case by case: per-metric deltas with paired significance, and the cases that flipped.

Cases are matched by case id (only cases in both runs count). For every
metric, the delta B - A and a paired bootstrap over the shared cases (the
same resampled cases in both runs) give a 95% interval and a two-sided
p-value (twice the share of resampled deltas on the far side of zero). For
binary per-case outcomes (acceptable action, right typology, injection
success, PII leak, fallback) McNemar's exact test on the discordant pairs is
reported as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binomtest

from fraudagent.evals.metrics import LOWER_IS_BETTER, METRIC_ORDER, RATE_METRICS, macro_f1
from fraudagent.evals.models import CaseResult, RunResults

BINARY = ("action_acceptable", "typology_correct", "injection_success", "pii_leak", "fallback")


@dataclass
class MetricDelta:
    metric: str
    a: float | None
    b: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_bootstrap: float | None
    n: int
    mcnemar_p: float | None = None
    discordant: tuple[int, int] | None = None  # (a right / b wrong, a wrong / b right)
    higher_is_better: bool = True

    @property
    def verdict(self) -> str:
        if self.delta is None or self.p_bootstrap is None:
            return "n/a"
        p = self.mcnemar_p if self.mcnemar_p is not None else self.p_bootstrap
        if p >= 0.05 or self.delta == 0:
            return "no significant change"
        better = (self.delta > 0) == self.higher_is_better
        return "better" if better else "worse"


@dataclass
class Flip:
    case_id: str
    score: str
    a: float
    b: float
    explanation_a: str
    explanation_b: str


@dataclass
class Comparison:
    a: RunResults
    b: RunResults
    shared: int
    deltas: list[MetricDelta] = field(default_factory=list)
    flips: list[Flip] = field(default_factory=list)


def _paired(
    a: list[CaseResult],
    b: list[CaseResult],
    stat: Callable[[list[CaseResult]], float | None],
    *,
    samples: int,
    rng: np.random.Generator,
) -> tuple[float | None, float | None, float | None, float | None, float | None]:
    va, vb = stat(a), stat(b)
    if va is None or vb is None or not a:
        return va, vb, None, None, None
    deltas = []
    for _ in range(samples):
        ix = rng.integers(0, len(a), size=len(a))
        da, db = stat([a[i] for i in ix]), stat([b[i] for i in ix])
        if da is not None and db is not None:
            deltas.append(db - da)
    if not deltas:
        return va, vb, None, None, None
    arr = np.asarray(deltas)
    p = min(1.0, 2 * min(float(np.mean(arr <= 0)), float(np.mean(arr >= 0))))
    if np.all(arr == 0):
        p = 1.0
    return va, vb, float(np.percentile(arr, 2.5)), float(np.percentile(arr, 97.5)), p


def _mean_of(score: str) -> Callable[[list[CaseResult]], float | None]:
    def stat(cases: list[CaseResult]) -> float | None:
        values = [v for c in cases if score in c.scores and (v := c.scores[score].value) is not None]
        return float(np.mean(values)) if values else None

    return stat


def _f1(cases: list[CaseResult]) -> float | None:
    judged = [c for c in cases if c.predicted_disposition is not None]
    if not judged:
        return None
    return macro_f1([c.expected.disposition.value for c in judged], [c.predicted_disposition.value for c in judged])  # type: ignore[union-attr]


STATS: dict[str, Callable[[list[CaseResult]], float | None]] = {
    **{m: _mean_of(s) for m, (s, _) in RATE_METRICS.items()},
    "disposition_macro_f1": _f1,
    "latency_p50_s": lambda cs: float(np.percentile([c.latency_s for c in cs], 50)) if cs else None,
    "latency_p95_s": lambda cs: float(np.percentile([c.latency_s for c in cs], 95)) if cs else None,
    "tokens_per_case": lambda cs: float(np.mean([c.tokens for c in cs])) if cs else None,
}


def mcnemar(a: list[CaseResult], b: list[CaseResult], score: str) -> tuple[float | None, tuple[int, int]]:
    """Exact McNemar p-value on the cases where both runs have the binary score."""
    only_a = only_b = 0
    for x, y in zip(a, b, strict=True):
        va, vb = x.scores.get(score), y.scores.get(score)
        if va is None or vb is None or va.value is None or vb.value is None:
            continue
        if va.value == 1 and vb.value == 0:
            only_a += 1
        elif va.value == 0 and vb.value == 1:
            only_b += 1
    n = only_a + only_b
    if n == 0:
        return 1.0, (only_a, only_b)
    return float(binomtest(min(only_a, only_b), n, 0.5).pvalue), (only_a, only_b)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def compare_runs(a: RunResults, b: RunResults, *, samples: int = 1000, seed: int = 0) -> Comparison:
    rng = np.random.default_rng(seed)
    by_b = {c.case_id: c for c in b.cases}
    ca = [c for c in a.cases if c.case_id in by_b]
    cb = [by_b[c.case_id] for c in ca]
    comparison = Comparison(a=a, b=b, shared=len(ca))
    score_of = {m: s for m, (s, _) in RATE_METRICS.items()}
    for metric in METRIC_ORDER:
        va, vb, low, high, p = _paired(ca, cb, STATS[metric], samples=samples, rng=rng)
        delta = MetricDelta(
            metric=metric,
            a=_r(va),
            b=_r(vb),
            delta=_r(vb - va) if va is not None and vb is not None else None,
            ci_low=_r(low),
            ci_high=_r(high),
            p_bootstrap=_r(p),
            n=len(ca),
            higher_is_better=metric not in LOWER_IS_BETTER,
        )
        if score_of.get(metric) in BINARY:
            p_mc, discordant = mcnemar(ca, cb, score_of[metric])
            delta.mcnemar_p, delta.discordant = _r(p_mc), discordant
        comparison.deltas.append(delta)
    for x, y in zip(ca, cb, strict=True):
        for score in BINARY:
            sa, sb = x.scores.get(score), y.scores.get(score)
            if sa and sb and sa.value is not None and sb.value is not None and sa.value != sb.value:
                comparison.flips.append(Flip(x.case_id, score, sa.value, sb.value, sa.explanation, sb.explanation))
    return comparison
