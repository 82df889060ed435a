"""The quality figures drawn: a server-rendered SVG bar chart of one figure over a grouping (no script, no styles
beyond presentation attributes, so it shows under the console's strict CSP)."""

from __future__ import annotations

from html import escape
from typing import Literal

from fraudagent.feedback.models import QualityReport, QualityRow

Figure = Literal["agreement_rate", "verdict_rate", "useful_rate", "fallback_rate", "mean_latency_s", "mean_tokens"]
Grouping = Literal["day", "model", "prompt_version", "policy_version", "typology"]
FIGURES: dict[str, str] = {
    "agreement_rate": "agreement with analysts' decisions",
    "verdict_rate": "reports with a verdict",
    "useful_rate": "verdicts saying useful",
    "fallback_rate": "reports on the fallback path",
    "mean_latency_s": "seconds per report",
    "mean_tokens": "tokens per report",
}
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 260, 56, 64, 28


def rows_of(report: QualityReport, by: Grouping) -> list[QualityRow]:
    return {
        "day": report.by_day,
        "model": report.by_model,
        "prompt_version": report.by_prompt_version,
        "policy_version": report.by_policy_version,
        "typology": report.by_typology,
    }[by]


def _fmt(value: float, rate: bool) -> str:
    return f"{value * 100:.0f}%" if rate else (f"{value:.1f}" if value < 100 else f"{value:.0f}")


def bar_chart(report: QualityReport, *, figure: Figure, by: Grouping) -> str:
    """One bar per group (a group without a value shows 'n/a'), the value over each bar, the count under it."""
    rows = rows_of(report, by)
    rate = figure.endswith("_rate")
    values = [getattr(r, figure) for r in rows]
    top = 1.0 if rate else max([v for v in values if v is not None] + [1e-9]) * 1.15
    plot_w, plot_h = WIDTH - LEFT - 16, HEIGHT - BOTTOM - TOP
    title = f"{FIGURES[figure]} by {by.replace('_', ' ')}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
        f' role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold" fill="#222">{escape(title)}</text>',
    ]
    for tick in range(5):  # axis with four steps
        value = top * tick / 4
        y = TOP + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 16}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_fmt(value, rate)}</text>')
    if not rows:
        parts.append(f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" fill="#555">')
        parts.append("no reports in this period</text>")
    step = plot_w / max(len(rows), 1)
    bar_w = max(min(step * 0.7, 60), 2)
    for n, (row, value) in enumerate(zip(rows, values, strict=True)):
        x = LEFT + step * n + (step - bar_w) / 2
        label = escape(row.key[-10:] if by == "day" else row.key[:18])
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" fill="#333">{label}</text>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h + 28}" text-anchor="middle" fill="#777">'
            f"n={row.reports}</text>"
        )
        if value is None:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h - 4}" text-anchor="middle" fill="#999">n/a</text>'
            )
            continue
        h = plot_h * min(value / top, 1.0) if top else 0
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}"'
            f' fill="#3b6ea8"><title>{label}: {_fmt(value, rate)}</title></rect>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{TOP + plot_h - h - 4:.1f}" text-anchor="middle" fill="#222">'
            f"{_fmt(value, rate)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
