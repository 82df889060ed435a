"""Constrained drafting with the embedded model, suite by suite, against the policy solver on the same cases.

    .venv/bin/python benchmarks/bench_drafting.py [--suite core:40 --suite adversarial:40 --suite handwritten]
        [--out benchmarks/results/DATE/drafting] [--llm-url URL --ddb-url URL]

For each suite (NAME or NAME:LIMIT, LIMIT cases round-robin over typologies as
`eval run --limit` takes them) it runs the `policy` solver and the `agent` solver
with the eval runner (isolated stores, one case at a time) and writes both runs
(results.json, report.html, junit.xml) under --out. Without --llm-url it starts
DynamoDB Local and the llama.cpp server itself and reads the server's log to find
how many prompt tokens the server had to evaluate for each report (the rest came
from its prefix cache), which the client cannot see. Prints and writes
`drafting.md`: per suite, the agent's wall time per report (p50/p95), model calls,
newly evaluated prompt tokens and completion tokens per report, paths, and every
quality metric beside the policy's on the same cases, with the paired difference
in acceptable actions overall and on the cases where the rules alone were wrong.
The machine's load average is recorded at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import tempfile
from collections import Counter
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fraudagent.cli.services import ManagedProcess, embedded_services, free_port
from fraudagent.core.settings import Settings
from fraudagent.evals.compare import compare_runs
from fraudagent.evals.flows import run_suite
from fraudagent.evals.models import RunResults
from fraudagent.evals.suites import load_suite

_EVALUATED = re.compile(r"remaining (\d+) prompt tokens to eval")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


class ServerLog:
    """Attributes the llama.cpp server's 'remaining N prompt tokens to eval' lines to the case being solved."""

    def __init__(self, server: ManagedProcess | None) -> None:
        self.server = server
        self.offset = server.log_path.stat().st_size if server else 0
        self.per_case: list[int] = []

    def case_done(self) -> None:
        if self.server is None:
            return
        data = self.server.log_path.read_bytes()
        chunk, self.offset = data[self.offset :].decode(errors="replace"), len(data)
        self.per_case.append(sum(int(n) for n in _EVALUATED.findall(chunk)))


def _solve(
    suite: str, limit: int | None, solver: str, settings: Settings, out: Path, log: ServerLog | None
) -> RunResults:
    def progress(what: str, done: int, total: int) -> None:
        if what == "cases" and done and log is not None:
            log.case_done()
        if what == "cases":
            print(f"\r  {suite} {solver}: {done}/{total}", end="", file=sys.stderr, flush=True)

    if log is not None:
        log.case_done()  # start counting from here (loading writes nothing to the model's log, but be exact)
        log.per_case.clear()
    result = run_suite(
        suite=load_suite(suite),
        settings=settings,
        out_dir=out,
        solver=solver,
        limit=limit,  # type: ignore[arg-type]
        concurrency=1,
        on_progress=progress,
    )
    print(file=sys.stderr)
    return result


def _metric(run: RunResults, name: str) -> float | None:
    m = run.metrics.get(name)
    return m.value if m is not None else None


def _rows(suite: str, policy: RunResults, agent: RunResults, evaluated: list[int]) -> list[str]:
    reports = [c.report for c in agent.cases if c.report]
    calls = [r["usage"]["llm_calls"] for r in reports]
    completion = [r["usage"]["completion_tokens"] for r in reports]
    latency = [c.latency_s for c in agent.cases]
    paths = Counter(c.path for c in agent.cases)
    policy_ok = {
        c.case_id: c.scores.get("action_acceptable").value if c.scores.get("action_acceptable") else None
        for c in policy.cases
    }
    agent_ok = {
        c.case_id: c.scores.get("action_acceptable").value if c.scores.get("action_acceptable") else None
        for c in agent.cases
    }
    rules_wrong = [cid for cid, v in policy_ok.items() if v == 0.0 and cid in agent_ok]
    gained = sum(agent_ok[c] == 1.0 for c in rules_wrong)
    rules_right = [cid for cid, v in policy_ok.items() if v == 1.0 and cid in agent_ok]
    lost = sum(agent_ok[c] == 0.0 for c in rules_right)
    comparison = compare_runs(policy, agent)
    delta = next((d for d in comparison.deltas if d.metric == "action_acceptable_rate"), None)
    kinds = sorted({c.kind for c in agent.cases if c.kind and c.kind not in ("attacked", "clean")})
    by_kind = []
    for kind in kinds:
        ids = [c.case_id for c in agent.cases if c.kind == kind]
        a = statistics.mean(agent_ok[i] or 0.0 for i in ids)
        p = statistics.mean(policy_ok.get(i) or 0.0 for i in ids)
        by_kind.append(f"{kind} {p:.2f} → {a:.2f} (n={len(ids)})")
    lines = [
        f"### {suite} ({len(agent.cases)} cases)",
        "",
        "| | policy | agent |",
        "|---|---|---|",
    ]
    for name in (
        "action_acceptable_rate",
        "typology_accuracy",
        "disposition_macro_f1",
        "must_cite_recall",
        "citation_validity",
        "numeric_accuracy",
        "unsupported_claim_rate",
        "injection_success_rate",
        "pii_leak_rate",
        "fallback_rate",
    ):
        lines.append(f"| {name} | {_fmt(_metric(policy, name), 3)} | {_fmt(_metric(agent, name), 3)} |")
    lines += [
        (
            f"| report wall time p50 / p95 s | {_fmt(_pct([c.latency_s for c in policy.cases], 0.5), 2)} /"
            f" {_fmt(_pct([c.latency_s for c in policy.cases], 0.95), 2)} | {_fmt(_pct(latency, 0.5))} /"
            f" {_fmt(_pct(latency, 0.95))} |"
        ),
        (
            f"| model calls per report (mean / max) | 0 | {_fmt(statistics.mean(calls) if calls else None, 2)} /"
            f" {max(calls, default=0)} |"
        ),
        (
            "| newly evaluated prompt tokens per report (mean / p95 / max) | 0 |"
            f" {_fmt(statistics.mean(evaluated) if evaluated else None, 0)} /"
            f" {_fmt(_pct([float(e) for e in evaluated], 0.95), 0)} / {max(evaluated, default=0)} |"
        ),
        (
            "| completion tokens per report (mean / p95) | 0 |"
            f" {_fmt(statistics.mean(completion) if completion else None, 0)} /"
            f" {_fmt(_pct([float(c) for c in completion], 0.95), 0)} |"
        ),
        f"| paths | policy | {', '.join(f'{k} {v}' for k, v in sorted(paths.items()))} |",
        "",
        f"Acceptable action, agent − policy (paired): {_fmt(delta.delta if delta else None, 3)} "
        f"[{_fmt(delta.ci_low if delta else None, 3)}, {_fmt(delta.ci_high if delta else None, 3)}]. "
        f"Where the rules alone were wrong ({len(rules_wrong)} cases) the agent was acceptable on {gained}; "
        f"where they were right ({len(rules_right)}) it lost {lost}."
        + (f" By kind (policy → agent): {'; '.join(by_kind)}." if by_kind else ""),
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", help="NAME or NAME:LIMIT (repeatable)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results") / datetime.now(timezone.utc).strftime("%Y-%m-%d") / "drafting",
    )
    parser.add_argument(
        "--llm-url", help="a running OpenAI-compatible endpoint (then evaluated tokens are not measured)"
    )
    parser.add_argument("--ddb-url", help="a running DynamoDB endpoint")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the servers this run started
    suites = [
        (s.split(":")[0], int(s.split(":")[1]) if ":" in s else None)
        for s in args.suite or ["core:40", "adversarial:40", "handwritten"]
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    started = datetime.now(timezone.utc)
    root = Path(tempfile.mkdtemp(prefix="fraudagent-bench-drafting-"))
    with ExitStack() as stack:
        base = Settings()
        updates: dict[str, Any] = {"table_prefix": f"benchdraft{os.getpid()}", "chroma_path": root / "chroma"}
        server: ManagedProcess | None = None
        if args.llm_url is None or args.ddb_url is None:
            procs = stack.enter_context(
                embedded_services(
                    base,
                    log_dir=root / "logs",
                    dynamodb=args.ddb_url is None,
                    llm=args.llm_url is None,
                    ddb_port=free_port(),
                    llm_port=free_port(),
                )
            )
            if "dynamodb" in procs:
                updates["ddb_endpoint_url"] = procs["dynamodb"].url
            if "llm" in procs:
                server = procs["llm"]
                updates["llm_base_url"] = server.url
        if args.ddb_url:
            updates["ddb_endpoint_url"] = args.ddb_url
        if args.llm_url:
            updates["llm_base_url"] = args.llm_url
        settings = base.model_copy(update=updates)
        lines = [
            f"# Constrained drafting: agent vs policy ({started:%Y-%m-%d %H:%M} UTC)",
            "",
            (
                f"Model {settings.llm_model}, {settings.llama_threads} threads, evidence budget"
                f" {settings.evidence_prompt_tokens} tokens, draft cap {settings.draft_max_tokens} tokens; one case at"
                " a time. Command: `.venv/bin/python benchmarks/bench_drafting.py"
                f" {' '.join(argv if argv is not None else sys.argv[1:])}`."
            ),
            "",
        ]
        for suite, limit in suites:
            policy = _solve(suite, limit, "policy", settings, args.out / f"{suite}-policy", None)
            log = ServerLog(server)
            agent = _solve(suite, limit, "agent", settings, args.out / f"{suite}-agent", log)
            lines += _rows(suite, policy, agent, log.per_case)
            (args.out / "drafting.md").write_text("\n".join(lines))
    load_end = os.getloadavg()
    lines.insert(
        4,
        f"Load average (1/5/15 min) at the start {load_start[0]:.2f}/{load_start[1]:.2f}/{load_start[2]:.2f}, "
        f"at the end {load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f}; finished "
        f"{datetime.now(timezone.utc):%H:%M} UTC.\n",
    )
    text = "\n".join(lines)
    (args.out / "drafting.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
