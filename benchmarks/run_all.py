"""Every benchmark in one command: a markdown table and PNG charts in benchmarks/results/<date>/.

    .venv/bin/python benchmarks/run_all.py [--only evidence,reports,chat,summaries,api] [--quick]
                                           [--cases 6] [--out DIR]

Sections (each reuses the benchmark module or eval runner that owns the measurement):

- `evidence`: gathering the evidence pack of one case whose account has 100, 1,000 and 10,000 events
  (DynamoDB Local in memory, no past-case store), p50/p95 over repeated calls, with the default
  bound on events read (FRAUDAGENT_EVIDENCE_MAX_EVENTS) and without it (10,000);
- `reports`: the eval runner (fraudagent.evals.flows.run_suite) on the same `--cases` cases of the
  `core` suite with the `agent` solver (our pipeline) and the `naive` solver (a plain LangChain agent),
  case by case (agent then naive on each, so an interrupted run holds complete pairs), on the same
  llama.cpp server: time per report split into evidence / drafting / verification, prompt and
  completion tokens, action_acceptable_rate, and the naive/agent ratios;
- `chat`: time to the first streamed chat token over the API (bench_summaries.chat_first_token);
- `summaries`: a burst of ticketing summary jobs with signed callbacks, 1, 2 and 4 workers
  (bench_summaries.burst): jobs per minute, duplicates, missing;
- `api`: locust, headless, in its own process, against the API served on loopback (uvicorn in a thread):
  throughput and p50/p95/p99 of the queue, case detail (with its evidence pack) and report history.

`reports` and `chat` start the packaged llama.cpp model (0.5B, about 30-60 s per report on 2 cores);
the rest needs no model. `--quick`: fewer repetitions, 1 case, a 20-job burst, 8 s of load (for
development, not for figures). The machine's load average is recorded at the start and the end: the
timings mean little when other jobs share the cores.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from random import Random
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules

import bench_summaries

from fraudagent.api.app import create_app
from fraudagent.bootstrap import build_investigator
from fraudagent.bundles.service import load_bundle
from fraudagent.cli.services import ManagedProcess, free_port, start_dynamodb_local, start_llama_server
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.evals.flows import read_run, run_suite
from fraudagent.evals.generate import _big_history
from fraudagent.evals.suites import load_suite, select
from fraudagent.retrieval.past_cases import embedding_function
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTIONS = ("evidence", "summaries", "api", "chat", "reports")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [
            (
                "–"
                if isinstance(v, float) and v != v
                else (
                    f"{v:.3g}"
                    if isinstance(v, float) and abs(v) < 10
                    else f"{v:,.0f}"
                    if isinstance(v, float)
                    else str(v)
                )
            )
            for v in (row.get(k, "") for k in keys)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


class Context:
    """Servers shared by the sections, started on first use and stopped at the end."""

    def __init__(self, stack: ExitStack, base: Path) -> None:
        self.stack, self.base = stack, base
        self._ddb: ManagedProcess | None = None
        self._llm: ManagedProcess | None = None

    @property
    def ddb(self) -> ManagedProcess:
        if self._ddb is None:
            self._ddb = start_dynamodb_local(Settings(), port=free_port(), log_dir=self.base / "logs", timeout=240)
            self.stack.callback(self._ddb.stop)
        return self._ddb

    @property
    def llm(self) -> ManagedProcess:
        if self._llm is None:
            self._llm = start_llama_server(Settings(), port=free_port(), log_dir=self.base / "logs", timeout=600)
            self.stack.callback(self._llm.stop)
        return self._llm

    def settings(self, **changes: Any) -> Settings:
        return Settings(
            ddb_endpoint_url=self.ddb.url,
            table_prefix="ra" + uuid.uuid4().hex[:10],
            chroma_path=self.base / uuid.uuid4().hex,
            **changes,
        )


# --- evidence gathering against history size -------------------------------------------------------------


def bench_evidence(ctx: Context, quick: bool) -> dict[str, Any]:
    sizes = (100, 1_000) if quick else (100, 1_000, 10_000)
    settings = ctx.settings()
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    rows: list[dict[str, Any]] = []
    for n, size in enumerate(sizes):
        base = CaseBundle.model_validate(bench_summaries.bundle(f"C-EV{size}", f"A-EV{size}", 10 + n))
        doc = _big_history(Random(size), base, size)
        t0 = time.perf_counter()
        load_bundle(history, doc, past_case_store=None, scorer=None)
        load_s = time.perf_counter() - t0
        for label, cap in (("default", settings.evidence_max_events), ("uncapped", 10_000)):
            # uncapped: the per-source timeouts raised too, so the whole history is read however long it takes
            timeouts = (
                settings.evidence_timeouts_s if label == "default" else {k: 300.0 for k in settings.evidence_timeouts_s}
            )
            bounded = settings.model_copy(update={"evidence_max_events": cap, "evidence_timeouts_s": timeouts})
            investigator = build_investigator(bounded, tables=history, similar_cases=False)
            pack = investigator.evidence(doc.case.case_id)  # warm-up (connections, policy)
            reps = (3 if quick else 5) if min(size, cap) >= 10_000 else (5 if quick else 20)
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                investigator.evidence(doc.case.case_id)
                times.append(time.perf_counter() - t)
            rows.append(
                {
                    "events on the account": size,
                    "bound": f"{label} ({cap})",
                    "events read": len(pack.events),
                    "cut": "yes" if any(c.startswith("events:") for c in pack.cuts) else "no",
                    "sources": (
                        "ok"
                        if all(v == "ok" for v in pack.sources.values())
                        else "; ".join(f"{k}: {v}" for k, v in pack.sources.items() if v != "ok")
                    ),
                    "calls": reps,
                    "p50 ms": 1000 * pct(times, 0.5),
                    "p95 ms": 1000 * pct(times, 0.95),
                    "load s": load_s,
                }
            )
            print(f"  evidence {size} events, {label}: p50 {rows[-1]['p50 ms']:.0f} ms", file=sys.stderr)
    return {"rows": rows}


def chart_evidence(result: dict[str, Any], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, color in (("default", "tab:blue"), ("uncapped", "tab:orange")):
        rows = [r for r in result["rows"] if r["bound"].startswith(label)]
        xs = [r["events on the account"] for r in rows]
        ax.plot(xs, [r["p50 ms"] for r in rows], marker="o", color=color, label=f"p50, {rows[0]['bound']}")
        ax.plot(
            xs, [r["p95 ms"] for r in rows], marker="x", color=color, linestyle="--", label=f"p95, {rows[0]['bound']}"
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="events on the account",
        ylabel="evidence gathering (ms)",
        title="Evidence pack for one case",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "evidence.png", dpi=110)
    plt.close(fig)


# --- reports: our pipeline against the naive agent -------------------------------------------------------


def _solver_row(solver: str, cases: list[Any]) -> dict[str, Any]:
    reports = [c.report for c in cases if c.report]
    mean = lambda xs: statistics.fmean(xs) if xs else float("nan")  # noqa: E731
    paths = [f"{p} {sum(c.path == p for c in cases)}" for p in sorted({c.path for c in cases if c.path})]
    if any(c.report is None for c in cases):
        paths.append(f"no report {sum(c.report is None for c in cases)}")
    return {
        "solver": solver,
        "cases": len(cases),
        "reports": len(reports),
        "paths": ", ".join(paths),
        "wall s / case (mean)": mean([c.latency_s for c in cases]),
        "wall s p50": pct([c.latency_s for c in cases], 0.5),
        "evidence s": mean([r["timings"]["evidence_s"] for r in reports]),
        "drafting s": mean([r["timings"]["drafting_s"] for r in reports]),
        "verification s": mean([r["timings"]["verification_s"] for r in reports]),
        "prompt tokens / report": mean([r["usage"]["prompt_tokens"] for r in reports]),
        "completion tokens / report": mean([r["usage"]["completion_tokens"] for r in reports]),
        "tokens / case (all)": mean([c.tokens for c in cases]),
        "LLM calls / report": mean([r["usage"]["llm_calls"] for r in reports]),
        # the eval's metric: every recommended action acceptable; a case without a report scores 0
        "action_acceptable_rate": mean([c.scores["action_acceptable"].value or 0.0 for c in cases]),
    }


def reports_result(done: dict[str, list[Any]]) -> dict[str, Any]:
    rows = [_solver_row(s, done[s]) for s in ("agent", "naive") if done[s]]
    ratios: dict[str, float] = {}
    if len(rows) == 2:
        a, b = rows
        ratio = lambda key: b[key] / a[key] if a[key] and a[key] == a[key] else float("nan")  # noqa: E731
        ratios = {
            "prompt tokens per report naive/agent": ratio("prompt tokens / report"),
            "tokens per case naive/agent": ratio("tokens / case (all)"),
            "wall time naive/agent": ratio("wall s / case (mean)"),
            "action_acceptable_rate agent - naive": a["action_acceptable_rate"] - b["action_acceptable_rate"],
        }
    per_case = [
        {
            "case": c.case_id,
            "expected": c.expected.typology.value,
            "solver": s,
            "path": c.path or "no report",
            "typology": c.predicted_typology or "-",
            "actions": ",".join(c.report["recommended_actions"]) if c.report else "-",
            "acceptable": c.scores["action_acceptable"].value,
            "wall s": c.latency_s,
            "tokens": c.tokens,
            "error": (c.error or "")[:80],
        }
        for s, cases in done.items()
        for c in cases
    ]
    return {"rows": rows, "ratios": ratios, "per_case": per_case}


def bench_reports(ctx: Context, quick: bool, cases: int, on_partial: Any = None) -> dict[str, Any]:
    """Case by case, agent then naive on the same case, each in the eval runner's own isolated stores, so an
    interrupted run still holds complete pairs (written after every case by `on_partial`)."""
    n = 1 if quick else cases
    settings = ctx.settings(llm_base_url=ctx.llm.url, llm_timeout_s=900)
    embedder = embedding_function(settings)
    suite = load_suite("core")
    chosen = select(suite, n)
    done: dict[str, list[Any]] = {"agent": [], "naive": []}
    for i, bundle in enumerate(chosen, start=1):
        one = dataclasses.replace(suite, bundles=[bundle])
        for solver in ("agent", "naive"):
            t0 = time.perf_counter()
            run = run_suite(
                suite=one,
                settings=settings,
                out_dir=ctx.base / f"run-{solver}-{i}",
                solver=solver,
                samples=50,
                embedder=embedder,
            )
            done[solver].extend(run.cases)
            c = run.cases[0]
            print(
                f"  [{i}/{len(chosen)}] {c.case_id} {solver}: {c.path or 'no report'} {c.latency_s:.0f} s, {c.tokens}"
                f" tokens ({time.perf_counter() - t0:.0f} s with loading)",
                file=sys.stderr,
            )
        if on_partial:
            on_partial(reports_result(done))
    return reports_result(done)


def reports_from(paths: list[Path]) -> dict[str, Any]:
    """The `reports` section from two finished eval runs (`fraudagent eval run --solver agent|naive`), on the cases
    both hold: for when the model runs were made apart from this command (e.g. on a quieter machine)."""
    runs = {run.meta.solver: run for run in (read_run(p) for p in paths)}
    if set(runs) != {"agent", "naive"}:
        raise SystemExit(f"--reports-from needs one agent and one naive run, got {sorted(runs)}")
    common = {c.case_id for c in runs["agent"].cases} & {c.case_id for c in runs["naive"].cases}
    done = {s: [c for c in runs[s].cases if c.case_id in common] for s in ("agent", "naive")}
    source = ", ".join(
        f"{s}: {paths[i]} (started {runs[s].meta.started_at:%Y-%m-%d %H:%M} UTC)" for i, s in enumerate(runs)
    )
    return reports_result(done) | {"source": source}


def chart_reports(result: dict[str, Any], out: Path) -> None:
    rows = result["rows"]
    names = [r["solver"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    bottom = [0.0] * len(rows)
    for part in ("evidence s", "drafting s", "verification s"):
        values = [0.0 if r[part] != r[part] else r[part] for r in rows]
        ax1.bar(names, values, bottom=bottom, label=part.replace(" s", ""))
        bottom = [b + v for b, v in zip(bottom, values)]
    ax1.set(ylabel="seconds per report (mean)", title="Time per report")
    ax1.legend(fontsize=8)
    prompt = [r["prompt tokens / report"] for r in rows]
    completion = [r["completion tokens / report"] for r in rows]
    ax2.bar(names, prompt, label="prompt")
    ax2.bar(names, completion, bottom=prompt, label="completion")
    ax2.set(ylabel="tokens per report (mean)", title="Tokens per report")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "reports.png", dpi=110)
    plt.close(fig)


# --- chat, summaries ----------------------------------------------------------------------------------------


def bench_chat(ctx: Context, quick: bool) -> dict[str, Any]:
    rows = bench_summaries.chat_first_token(ctx.ddb, ctx.base, ctx.llm.url, questions=1 if quick else 3)
    return {"rows": rows}


def bench_bursts(ctx: Context, quick: bool) -> dict[str, Any]:
    jobs = 20 if quick else 100
    rows = []
    for workers in (1, 2, 4):
        r = bench_summaries.burst(ctx.ddb, ctx.base, jobs=jobs, workers=workers)
        rows.append(
            {
                "workers": workers,
                "jobs": jobs,
                "done": r["done"],
                "duplicates": r["duplicates"],
                "missing": r["missing"],
                "all delivered s": r["all_delivered_s"],
                "jobs / min": 60 * r["jobs_per_s"],
                "p50 job s": r["p50_s"],
                "p95 job s": r["p95_s"],
            }
        )
        print(f"  summaries: {workers} worker(s): {rows[-1]['jobs / min']:.0f} jobs/min", file=sys.stderr)
    for r in rows:
        r["speed-up"] = f"{r['jobs / min'] / rows[0]['jobs / min']:.2f}x"
    return {"rows": rows}


def chart_bursts(result: dict[str, Any], out: Path) -> None:
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.bar([str(r["workers"]) for r in rows], [r["jobs / min"] for r in rows])
    ax.set(xlabel="summary workers", ylabel="jobs per minute", title=f"Burst of {rows[0]['jobs']} summary jobs")
    fig.tight_layout()
    fig.savefig(out / "summaries.png", dpi=110)
    plt.close(fig)


# --- API under load (locust) ------------------------------------------------------------------------------


def bench_api(ctx: Context, quick: bool) -> dict[str, Any]:
    settings, investigator = bench_summaries.stores(ctx.ddb, ctx.base, summary_workers=0, api_rate_limit_per_minute=0)
    case_ids = [f"C-B{n}" for n in range(3)]
    for n in range(3, 200):  # a queue of 200 open cases
        load_bundle(
            investigator.history,
            CaseBundle.model_validate(bench_summaries.bundle(f"C-B{n}", f"A-B{n}", 1 + n % 28)),
            past_case_store=None,
            scorer=None,
        )
        case_ids.append(f"C-B{n}")
    users, seconds = (4, 8) if quick else (8, 30)
    prefix = ctx.base / "locust"
    with bench_summaries.Api(create_app(settings, investigator)) as client:
        env = os.environ | {"BENCH_API_KEY": bench_summaries.KEY, "BENCH_CASE_IDS": ",".join(case_ids)}
        cmd = [
            str(Path(sys.executable).with_name("locust")),
            "-f",
            str(HERE / "locustfile.py"),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--host",
            str(client.base_url).rstrip("/"),
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
        if done.returncode not in (0, 1):  # 1: some requests failed (reported below)
            raise RuntimeError(f"locust failed ({done.returncode}): {done.stderr[-500:]}")
    rows = []
    with open(f"{prefix}_stats.csv", newline="") as f:
        for r in csv.DictReader(f):
            rows.append(
                {
                    "route": r["Name"],
                    "requests": int(r["Request Count"]),
                    "failures": int(r["Failure Count"]),
                    "req/s": float(r["Requests/s"]),
                    "p50 ms": float(r["50%"]),
                    "p95 ms": float(r["95%"]),
                    "p99 ms": float(r["99%"]),
                    "max ms": float(r["Max Response Time"]),
                }
            )
    return {"rows": rows, "users": users, "seconds": seconds}


def chart_api(result: dict[str, Any], out: Path) -> None:
    rows = [r for r in result["rows"] if r["route"] != "Aggregated"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.27
    xs = range(len(rows))
    for i, key in enumerate(("p50 ms", "p95 ms", "p99 ms")):
        ax.bar([x + (i - 1) * width for x in xs], [r[key] for r in rows], width, label=key.replace(" ms", ""))
    ax.set_xticks(list(xs), [r["route"].replace("GET ", "") for r in rows], fontsize=8)
    ax.set(ylabel="ms", title=f"API latency, {result['users']} concurrent users, {result['seconds']} s (locust)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "api.png", dpi=110)
    plt.close(fig)


# --- the run -----------------------------------------------------------------------------------------------


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def write_markdown(results: dict[str, Any], meta: dict[str, Any], out: Path) -> str:
    parts = [
        f"# Benchmarks {meta['date']}",
        "",
        (
            f"commit {meta['commit']}, {meta['cpus']} CPUs ({meta['machine']}), load average {meta['load_start']} at"
            f" the start and {meta['load_end']} at the end;"
            f" {'--quick (development run, not figures)' if meta['quick'] else 'full run'}; {meta['seconds']:.0f} s in"
            " all."
        ),
        "",
    ]
    if "evidence" in results:
        parts += [
            "## Evidence gathering against history size",
            "",
            (
                "One case; its account has N events (logins in the 90-day window). No past-case store. `events read`:"
                " what the pack holds; `cut`: the bound stopped the read (the pack says so); `uncapped` also raises the"
                " per-source timeouts (FRAUDAGENT_EVIDENCE_TIMEOUTS_S) to 300 s so the whole history is read;"
                " `sources`: any source that failed or timed out."
            ),
            "",
            table(results["evidence"]["rows"]),
            "",
            "![evidence](evidence.png)",
            "",
        ]
    if "reports" in results:
        r = results["reports"]
        how = (
            f"read from two eval runs, on the cases both hold ({r['source']}). "
            if r.get("source")
            else (
                "case by case in this run, agent then naive on each (the eval runner, each time in isolated stores"
                " holding the case's bundle and its past cases; scored against the suite's ground truth). "
            )
        )
        parts += [
            "## Reports: our pipeline (`agent`) against the `naive` solver",
            "",
            f"The same {r['rows'][0]['cases'] if r['rows'] else 0} case(s) of the `core` suite"
            + (
                " (each run's model as recorded in its results.json), "
                if r.get("source")
                else ", the same llama.cpp server (packaged 0.5B model), "
            )
            + how
            + "The naive agent's evidence reads happen inside its model loop, so its evidence time is part of"
            " drafting.",
            "",
            table(r["rows"]),
            "",
            "Ratios: "
            + ", ".join(
                f"{k} **{v:.2f}**" if v == v else f"{k} **undefined** (no naive report)" for k, v in r["ratios"].items()
            ),
            "",
            "<details><summary>per case</summary>",
            "",
            table(r["per_case"]),
            "",
            "</details>",
            "",
            "![reports](reports.png)",
            "",
        ]
    if "chat" in results:
        parts += [
            "## Chat: time to first token",
            "",
            "Over the API (SSE), the packaged model, one new session per question.",
            "",
            table(results["chat"]["rows"]),
            "",
        ]
    if "summaries" in results:
        parts += [
            "## Summary jobs: burst with 1, 2 and 4 workers",
            "",
            (
                "Reports drafted beforehand (the deterministic path); each job renders, signs and delivers a callback"
                " to a loopback receiver (bench_summaries.py)."
            ),
            "",
            table(results["summaries"]["rows"]),
            "",
            "![summaries](summaries.png)",
            "",
        ]
    if "api" in results:
        a = results["api"]
        parts += [
            "## API throughput on the non-LLM routes",
            "",
            (
                f"locust headless, {a['users']} users without think time for {a['seconds']} s, against one uvicorn"
                " process on loopback (a thread of the benchmark process; locust in its own process on the same 2"
                " cores); 200 open cases."
            ),
            "",
            table(a["rows"]),
            "",
            "![api](api.png)",
            "",
        ]
    for name, error in results.get("errors", {}).items():
        parts += [f"## {name}: FAILED", "", f"    {error}", ""]
    text = "\n".join(parts)
    (out / "results.md").write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes and short loads, for development")
    parser.add_argument("--cases", type=int, default=6, help="core-suite cases for the agent vs naive comparison")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/<UTC date>")
    parser.add_argument(
        "--reports-from",
        default=None,
        metavar="AGENT_RUN,NAIVE_RUN",
        help="build `reports` from two finished `fraudagent eval run` folders instead of running the model",
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)} (known: {', '.join(SECTIONS)})", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so every server started here is stopped
    started = time.time()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = args.out or HERE / "results" / date
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": date,
        "commit": git_commit(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "quick": args.quick,
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "sections": only,
    }
    results: dict[str, Any] = {"errors": {}}

    def save(partial: dict[str, Any] | None = None) -> str:
        """results.json and results.md as they stand (after every section, and every case of `reports`)."""
        current = results | (partial or {})
        meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        meta["seconds"] = time.time() - started
        (out / "results.json").write_text(
            json.dumps({"meta": meta, **current}, indent=1, default=str) + "\n", encoding="utf-8"
        )
        return write_markdown(current, meta, out)

    runners = {
        "evidence": (lambda c: bench_evidence(c, args.quick), chart_evidence),
        "reports": (
            (
                (lambda c: reports_from([Path(x) for x in args.reports_from.split(",")]))
                if args.reports_from
                else (lambda c: bench_reports(c, args.quick, args.cases, on_partial=lambda r: save({"reports": r})))
            ),
            chart_reports,
        ),
        "chat": (lambda c: bench_chat(c, args.quick), None),
        "summaries": (lambda c: bench_bursts(c, args.quick), chart_bursts),
        "api": (lambda c: bench_api(c, args.quick), chart_api),
    }
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="fraudagent-bench-") as tmp:
        ctx = Context(stack, Path(tmp))
        for name in SECTIONS:
            if name not in only:
                continue
            print(f"[{name}]", file=sys.stderr)
            run, chart = runners[name]
            try:
                results[name] = run(ctx)
                if chart:
                    chart(results[name], out)
            except Exception as error:  # one failed section must not lose the others' figures
                results["errors"][name] = f"{type(error).__name__}: {error}"
                print(f"  {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
            save()
    print(save())
    print(f"\nwritten: {out / 'results.md'}", file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
