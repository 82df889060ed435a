"""A run as people and CI systems read it: report.html (self-contained, charts as embedded PNGs,
Jinja2 template) and junit.xml (one test case per bundle; a failed case is a <failure>)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader, select_autoescape

from fraudagent.core.models import Typology

if TYPE_CHECKING:
    from fraudagent.evals.compare import Comparison
    from fraudagent.evals.models import RunResults

_env = Environment(loader=PackageLoader("fraudagent.evals", "templates"), autoescape=select_autoescape(["html", "j2"]))


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def typology_bars(run: RunResults) -> str:
    metrics = ("action_acceptable_rate", "typology_accuracy", "must_cite_recall")
    types = sorted({t for m in metrics for t in run.metrics[m].by_typology})
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(metrics)
    for k, m in enumerate(metrics):
        values = [run.metrics[m].by_typology.get(t) or 0.0 for t in types]
        ax.bar([i + k * width for i in range(len(types))], values, width=width, label=m)
    ax.set_xticks([i + width for i in range(len(types))], types, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("rate")
    ax.set_title("per expected typology")
    ax.legend(fontsize=7)
    return _png(fig)


def confusion(run: RunResults) -> str:
    labels = [t.value for t in Typology] + ["(no report)"]
    index = {t: i for i, t in enumerate(labels)}
    grid = [[0] * len(labels) for _ in labels]
    for c in run.cases:
        grid[index[c.expected.typology.value]][index[c.predicted_typology or "(no report)"]] += 1
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels) - 1), labels[:-1], fontsize=7)
    ax.set_ylim(len(labels) - 1.5, -0.5)
    for i in range(len(labels) - 1):
        for j in range(len(labels)):
            if grid[i][j]:
                ax.text(j, i, str(grid[i][j]), ha="center", va="center", fontsize=7)
    ax.set_xlabel("reported typology")
    ax.set_ylabel("expected typology")
    ax.set_title("typology confusion matrix")
    return _png(fig)


def latency_histogram(run: RunResults) -> str:
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist([c.latency_s for c in run.cases], bins=min(30, max(5, len(run.cases) // 4)))
    for name, style in (("latency_p50_s", "--"), ("latency_p95_s", ":")):
        value = run.metrics[name].value
        if value is not None:
            ax.axvline(value, color="k", linestyle=style, label=f"{name} {value:.2f}s")
    ax.set_xlabel("seconds per case")
    ax.set_ylabel("cases")
    ax.legend(fontsize=7)
    ax.set_title("latency")
    return _png(fig)


def run_html(run: RunResults) -> str:
    charts = {"typology": typology_bars(run), "confusion": confusion(run), "latency": latency_histogram(run)}
    return _env.get_template("run.html.j2").render(run=run, charts=charts)


def compare_html(comparison: Comparison) -> str:
    return _env.get_template("compare.html.j2").render(c=comparison)


def junit_xml(run: RunResults) -> str:
    failed = sum(not c.passed for c in run.cases)
    suite = ET.Element(
        "testsuite",
        name=f"fraudagent-eval.{run.meta.suite}.{run.meta.solver}",
        tests=str(len(run.cases)),
        failures=str(failed),
        errors="0",
        time=f"{sum(c.latency_s for c in run.cases):.3f}",
        timestamp=run.meta.started_at.isoformat(),
    )
    for c in run.cases:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{run.meta.suite}.{c.expected.typology.value}",
            name=c.case_id,
            time=f"{c.latency_s:.3f}",
        )
        if not c.passed:
            failure = ET.SubElement(case, "failure", message=c.failures[0][:300] if c.failures else "failed")
            failure.text = "\n".join(c.failures)
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(f"{k}={v.value}: {v.explanation}" for k, v in c.scores.items())
    root = ET.Element("testsuites")
    root.append(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
