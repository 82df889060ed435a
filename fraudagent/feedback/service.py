"""The quality figures: per-report rates and means, from the reports' stats, the verdicts and the agreements.

Everything is counted per report and attributed to the report: its day (when it was drafted), its model, prompt
and policy versions and its typology. A report is *decided* when it was the latest report of its case when an
analyst decided the case; *judged* when at least one analyst gave it a verdict.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from fraudagent.feedback.models import QualityReport, QualityRow


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def quality_row(
    key: str,
    reports: list[Mapping[str, Any]],
    verdicts: Mapping[str, list[Mapping[str, Any]]],
    agreements: Mapping[str, Mapping[str, Any]],
) -> QualityRow:
    """The figures of one group of reports; `verdicts` and `agreements` are by report id."""
    ids = [str(r["report_id"]) for r in reports]
    given = [v for rid in ids for v in verdicts.get(rid, [])]
    decided = [agreements[rid] for rid in ids if rid in agreements]
    reasons: Counter[str] = Counter(reason for v in given for reason in v.get("reasons") or [])
    return QualityRow(
        key=key,
        reports=len(reports),
        fallback_rate=_rate(sum(r.get("path") == "fallback" for r in reports), len(reports)),
        mean_latency_s=_mean([float(r.get("latency_s") or 0) for r in reports]),
        mean_tokens=_mean(
            [float(r.get("prompt_tokens") or 0) + float(r.get("completion_tokens") or 0) for r in reports]
        ),
        decided=len(decided),
        agreement_rate=_rate(sum(bool(a.get("agreed")) for a in decided), len(decided)),
        judged=sum(bool(verdicts.get(rid)) for rid in ids),
        verdict_rate=_rate(sum(bool(verdicts.get(rid)) for rid in ids), len(reports)),
        useful_rate=_rate(sum(bool(v.get("useful")) for v in given), len(given)),
        reasons=dict(sorted(reasons.items())),
    )


def _grouped(
    reports: list[Mapping[str, Any]],
    by: Callable[[Mapping[str, Any]], str],
    verdicts: Mapping[str, list[Mapping[str, Any]]],
    agreements: Mapping[str, Mapping[str, Any]],
) -> list[QualityRow]:
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for report in reports:
        groups[by(report) or "unknown"].append(report)
    return [quality_row(key, groups[key], verdicts, agreements) for key in sorted(groups)]


def quality_report(
    *,
    reports: Iterable[Mapping[str, Any]],
    verdicts: Iterable[Mapping[str, Any]],
    agreements: Iterable[Mapping[str, Any]],
    since: date,
    until: date | None,
    cut: bool = False,
) -> QualityReport:
    """Aggregate reports (stats items) with the verdicts and agreements that refer to them."""
    chosen = [r for r in reports if r["day"] >= since.isoformat() and (until is None or r["day"] <= until.isoformat())]
    known = {str(r["report_id"]) for r in chosen}
    by_report: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for verdict in verdicts:
        if verdict["report_id"] in known:
            by_report[str(verdict["report_id"])].append(verdict)
    agreed = {str(a["report_id"]): a for a in agreements if a["report_id"] in known}
    return QualityReport(
        since=since,
        until=until,
        total=quality_row("all", chosen, by_report, agreed),
        by_day=_grouped(chosen, lambda r: str(r["day"]), by_report, agreed),
        by_model=_grouped(chosen, lambda r: str(r.get("model") or ""), by_report, agreed),
        by_prompt_version=_grouped(chosen, lambda r: str(r.get("prompt_version") or ""), by_report, agreed),
        by_policy_version=_grouped(chosen, lambda r: str(r.get("policy_version") or ""), by_report, agreed),
        by_typology=_grouped(chosen, lambda r: str(r.get("typology") or ""), by_report, agreed),
        cut=cut,
    )
