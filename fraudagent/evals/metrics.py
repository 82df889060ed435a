"""Metrics over a run's cases: point value, bootstrap 95% interval, per-typology breakdown.

Rates are means of a per-case score over the cases it applies to. The
interval is the 2.5th-97.5th percentile of the statistic over `samples`
bootstrap resamples of those cases (numpy, seeded). `disposition_macro_f1` is
the unweighted mean of the per-class F1 over the dispositions that occur.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import f1_score

from fraudagent.evals.models import CaseResult, MetricValue

# metric -> (per-case score it averages, higher is better)
RATE_METRICS: dict[str, tuple[str, bool]] = {
    "action_acceptable_rate": ("action_acceptable", True),
    "typology_accuracy": ("typology_correct", True),
    "citation_validity": ("citation_validity", True),
    "must_cite_recall": ("must_cite_recall", True),
    "numeric_accuracy": ("numeric_accuracy", True),
    "unsupported_claim_rate": ("unsupported_claims", False),
    "injection_success_rate": ("injection_success", False),
    "pii_leak_rate": ("pii_leak", False),
    "fallback_rate": ("fallback", False),
}
LOWER_IS_BETTER = {m for m, (_, up) in RATE_METRICS.items() if not up} | {
    "latency_p50_s",
    "latency_p95_s",
    "tokens_per_case",
}
METRIC_ORDER = [*RATE_METRICS, "disposition_macro_f1", "latency_p50_s", "latency_p95_s", "tokens_per_case"]


def bootstrap(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float],
    *,
    samples: int,
    rng: np.random.Generator,
) -> tuple[float | None, float | None]:
    arr = np.asarray(values, dtype=float)
    if len(arr) == 0:
        return None, None
    idx = rng.integers(0, len(arr), size=(samples, len(arr)))
    stats = np.array([statistic(arr[row]) for row in idx])
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def macro_f1(expected: Sequence[str], predicted: Sequence[str]) -> float:
    labels = sorted(set(expected) | set(predicted))
    return float(f1_score(list(expected), list(predicted), labels=labels, average="macro", zero_division=0))


def case_values(cases: Sequence[CaseResult], score: str) -> list[tuple[CaseResult, float]]:
    return [(c, c.scores[score].value) for c in cases if score in c.scores and c.scores[score].value is not None]  # type: ignore[misc]


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def compute_metrics(cases: Sequence[CaseResult], *, samples: int = 1000, seed: int = 0) -> dict[str, MetricValue]:
    rng = np.random.default_rng(seed)
    metrics: dict[str, MetricValue] = {}
    for metric, (score, up) in RATE_METRICS.items():
        pairs = case_values(cases, score)
        values = [v for _, v in pairs]
        by_type: dict[str, list[float]] = defaultdict(list)
        for case, v in pairs:
            by_type[case.expected.typology.value].append(v)
        low, high = bootstrap(values, np.mean, samples=samples, rng=rng)
        metrics[metric] = MetricValue(
            value=_r(float(np.mean(values))) if values else None,
            ci_low=_r(low),
            ci_high=_r(high),
            n=len(values),
            by_typology={t: _r(float(np.mean(v))) for t, v in sorted(by_type.items())},
            higher_is_better=up,
        )
    judged = [c for c in cases if c.predicted_disposition is not None]
    exp = [c.expected.disposition.value for c in judged]
    got = [c.predicted_disposition.value for c in judged]  # type: ignore[union-attr]
    if judged:
        index = np.arange(len(judged))
        low, high = bootstrap(
            index, lambda ix: macro_f1([exp[int(i)] for i in ix], [got[int(i)] for i in ix]), samples=samples, rng=rng
        )
        judged_by_type: dict[str, list[int]] = defaultdict(list)
        for i, c in enumerate(judged):
            judged_by_type[c.expected.typology.value].append(i)
        metrics["disposition_macro_f1"] = MetricValue(
            value=_r(macro_f1(exp, got)),
            ci_low=_r(low),
            ci_high=_r(high),
            n=len(judged),
            by_typology={
                t: _r(macro_f1([exp[i] for i in ix], [got[i] for i in ix])) for t, ix in sorted(judged_by_type.items())
            },
        )
    else:
        metrics["disposition_macro_f1"] = MetricValue(value=None, n=0)
    latencies = [c.latency_s for c in cases]
    tokens = [float(c.tokens) for c in cases]
    for name, values, stat in (
        ("latency_p50_s", latencies, lambda a: float(np.percentile(a, 50))),
        ("latency_p95_s", latencies, lambda a: float(np.percentile(a, 95))),
        ("tokens_per_case", tokens, lambda a: float(np.mean(a))),
    ):
        by_type = defaultdict(list)
        for c, v in zip(cases, values, strict=True):
            by_type[c.expected.typology.value].append(v)
        low, high = bootstrap(values, stat, samples=samples, rng=rng)
        metrics[name] = MetricValue(
            value=_r(stat(np.asarray(values))) if values else None,
            ci_low=_r(low),
            ci_high=_r(high),
            n=len(values),
            by_typology={t: _r(stat(np.asarray(v))) for t, v in sorted(by_type.items())},
            higher_is_better=False,
        )
    return {m: metrics[m] for m in METRIC_ORDER}


def gate(metrics: dict[str, MetricValue], *, minimum: dict[str, float], maximum: dict[str, float]) -> list[str]:
    """The thresholds a run breaks, each as 'metric value < threshold' (empty: the run passes)."""
    broken: list[str] = []
    for name, bound in minimum.items():
        value = metrics.get(name)
        if value is None or value.value is None:
            broken.append(f"{name} missing (min {bound:g})")
        elif value.value < bound:
            broken.append(f"{name} {value.value:.3f} < {bound:g}")
    for name, bound in maximum.items():
        value = metrics.get(name)
        if value is None or value.value is None:
            broken.append(f"{name} missing (max {bound:g})")
        elif value.value > bound:
            broken.append(f"{name} {value.value:.3f} > {bound:g}")
    return broken
