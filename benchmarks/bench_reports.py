"""Reports on simulated cases with the embedded model: paths, removed claims, time split, tokens, accuracy.

    .venv/bin/python benchmarks/bench_reports.py [--cases 12] [--accounts 1500] [--days 60] [--out FILE]

Generates a small simulated store (its own seed, so its alerts are not the demo's),
loads it into a DynamoDB Local and a Chroma folder of its own, starts the llama.cpp
server, and drafts reports for `--cases` alerts spread over the typologies, twice:
with the model (our pipeline) and with the policy alone (no model). Prints a markdown
table: share of reports by path, claims the verifier removed, problems it sent back,
time per report split into evidence / drafting / verification, tokens, and how often
the recommended actions were all acceptable and the typology right (against the
simulator's ground truth, which the agent never sees).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from fraudagent.agent.pipeline import draft_report
from fraudagent.agent.report import InvestigationReport
from fraudagent.bootstrap import build_investigator
from fraudagent.bundles.flows import read_path, write_plan
from fraudagent.cli.services import embedded_services, free_port
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.sim.export import write_world
from fraudagent.sim.world import generate_world
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables

SEED = 101


def _pick(bundles: list[CaseBundle], n: int) -> list[CaseBundle]:
    """Round-robin over expected typologies so every typology (and legitimate) is represented."""
    by_typology: dict[str, list[CaseBundle]] = defaultdict(list)
    for b in bundles:
        if b.expected is not None:
            by_typology[b.expected.typology.value].append(b)
    chosen: list[CaseBundle] = []
    while len(chosen) < n and any(by_typology.values()):
        for typology in sorted(by_typology):
            if by_typology[typology] and len(chosen) < n:
                chosen.append(by_typology[typology].pop(0))
    return chosen


def _row(name: str, reports: list[tuple[CaseBundle, InvestigationReport, float]]) -> dict[str, Any]:
    n = len(reports)
    paths = Counter(r.path for _, r, _ in reports)
    acceptable = sum(all(a in b.expected.acceptable_actions for a in r.recommended_actions) for b, r, _ in reports)  # type: ignore[union-attr]
    typology = sum(r.typology == b.expected.typology for b, r, _ in reports)  # type: ignore[union-attr]
    return {
        "solver": name,
        "cases": n,
        "paths": ", ".join(f"{p} {c / n:.0%}" for p, c in sorted(paths.items())),
        "claims removed": sum(len(r.removed_claims) for _, r, _ in reports),
        "drafts sent back": (
            sum(r.path == "llm_retried" for _, r, _ in reports)
            + sum(r.path == "fallback" and r.usage.llm_calls > 0 for _, r, _ in reports)
        ),
        "evidence s (mean)": statistics.fmean(r.timings.evidence_s for _, r, _ in reports),
        "drafting s (mean)": statistics.fmean(r.timings.drafting_s for _, r, _ in reports),
        "verification ms (mean)": 1000 * statistics.fmean(r.timings.verification_s for _, r, _ in reports),
        "total s p50": statistics.median(t for _, _, t in reports),
        "total s max": max(t for _, _, t in reports),
        "prompt tokens / case": statistics.fmean(r.usage.prompt_tokens for _, r, _ in reports),
        "completion tokens / case": statistics.fmean(r.usage.completion_tokens for _, r, _ in reports),
        "actions acceptable": f"{acceptable}/{n}",
        "typology right": f"{typology}/{n}",
    }


def _table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--accounts", type=int, default=1500)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--past-cases", type=int, default=300)
    parser.add_argument(
        "--model", default=None, help="override the model name (an OpenAI-compatible endpoint via settings)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        world = generate_world(seed=SEED, accounts=args.accounts, days=args.days, past_cases=args.past_cases)
        write_world(world, root / "sim")
        plan = read_path(root / "sim")
        picked = _pick(plan.bundles, args.cases)
        ddb_port, llm_port = free_port(), free_port()
        base = Settings()
        settings = base.model_copy(
            update={
                "ddb_endpoint_url": f"http://127.0.0.1:{ddb_port}",
                "llm_base_url": f"http://127.0.0.1:{llm_port}/v1",
                "table_prefix": "bench",
                "chroma_path": root / "chroma",
                "llm_timeout_s": 900,
            }
        )
        with embedded_services(settings, log_dir=root / "logs", ddb_port=ddb_port, llm_port=llm_port):
            history = Tables.connect(settings)
            dynamo.create_tables(history.client, settings)
            store = PastCaseStore.from_settings(settings)
            t0 = time.perf_counter()
            write_plan(history, plan, past_case_store=store, scorer=None)
            print(
                f"loaded the store in {time.perf_counter() - t0:.0f} s; drafting {len(picked)} cases", file=sys.stderr
            )
            investigator = build_investigator(settings, tables=history, past_cases=store)
            results: dict[str, list[tuple[CaseBundle, InvestigationReport, float]]] = {"agent": [], "policy": []}
            for n, bundle in enumerate(picked, start=1):
                for solver in ("policy", "agent"):
                    start = time.perf_counter()
                    report = draft_report(
                        investigator, bundle.case.case_id, model=args.model, use_model=solver == "agent"
                    )
                    results[solver].append((bundle, report, time.perf_counter() - start))
                r = results["agent"][-1][1]
                print(
                    f"[{n}/{len(picked)}] {bundle.case.case_id} expected {bundle.expected.typology.value if bundle.expected else '?'}:"  # noqa: E501
                    f" {r.path} {r.typology.value} {[a.value for a in r.recommended_actions]} removed"
                    f" {len(r.removed_claims)}"
                    f" drafting {r.timings.drafting_s:.0f}s",
                    file=sys.stderr,
                )
    text = _table([_row(name, rows) for name, rows in results.items()])
    problems = Counter(p.split(":")[0] for _, r, _ in results["agent"] for p in r.problems)
    text += "\n\nWhat the verifier sent back or refused (agent), by kind: " + (
        ", ".join(f"{k} ×{v}" for k, v in problems.most_common(8)) or "nothing"
    )
    removed = [c for _, r, _ in results["agent"] for c in r.removed_claims]
    if removed:
        text += "\n\nClaims removed:\n" + "\n".join(f"- {c}" for c in removed[:10])
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
