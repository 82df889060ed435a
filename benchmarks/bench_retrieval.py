"""Similar-case retrieval: quality of vector, BM25 and hybrid search on held-out cases, latency, ingestion.

    .venv/bin/python benchmarks/bench_retrieval.py [--store-cases 3000] [--latency-cases 100000]

Quality. The store holds the simulator's past cases, simulated with each of
`--store-seeds` in turn (which write-ups exist moves the figures by a few
points, so each is measured and the mean reported). The queries are
held out, never in the store: (1) open cases, the alert bundles of worlds
simulated with other seeds, each queried as the agent does (signals computed
from its events, its own and bundle accounts excluded); (2) narratives of
past cases written with another seed, queried as free text. Per typology and
overall: how often the majority typology of the top 5 neighbours is the true
one, and recall@10 of same-typology cases (same-typology cases in the top 10
/ min(10, same-typology cases in the store)). For legitimate open cases: the
share of their neighbours that were false positives. All three methods are
measured in the same run, on the same store and queries.

Speed. Ingestion throughput with the packaged model (cases/s including
embedding, and the embedding share) on the quality store. Query latency
p50/p95 at `--latency-cases` stored cases, excluding the query embedding
(timed separately). Embedding that many documents on this 2-core machine
would take longer than the benchmark is worth, so the latency store's vectors
are real embeddings of `--latency-pool` of its documents, reused with a small
random jitter: Chroma's HNSW index, the filters and BM25 over 100k real
documents do the same work as with fully embedded ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from random import Random
from typing import Any

import numpy as np

from fraudagent.core.models import CaseBundle, Disposition, Typology
from fraudagent.core.settings import Settings
from fraudagent.retrieval.documents import IndexedCase, Provenance
from fraudagent.retrieval.past_cases import PastCaseStore, embedding_function, make_client
from fraudagent.retrieval.queries import case_query
from fraudagent.retrieval.search import CaseQuery, RetrievalMode
from fraudagent.sim.past_cases import generate_past_cases
from fraudagent.sim.world import generate_world

MODES = (RetrievalMode.vector, RetrievalMode.lexical, RetrievalMode.hybrid)


@dataclass
class Tally:
    """Per typology: queries, majority-typology hits, summed recall@10, and for legitimate ones the FP share."""

    queries: Counter[Typology] = field(default_factory=Counter)
    majority_hits: Counter[Typology] = field(default_factory=Counter)
    recall: defaultdict[Typology, float] = field(default_factory=lambda: defaultdict(float))
    fp_shares: list[float] = field(default_factory=list)

    def add(self, truth: Typology, typologies: list[Typology], dispositions: list[Disposition], in_store: int) -> None:
        self.queries[truth] += 1
        top5 = Counter(typologies[:5]).most_common(1)  # ties go to the typology ranked first
        self.majority_hits[truth] += int(bool(top5) and top5[0][0] is truth)
        self.recall[truth] += sum(t is truth for t in typologies[:10]) / max(1, min(10, in_store))
        if truth is Typology.legitimate and dispositions:
            self.fp_shares.append(sum(d is Disposition.false_positive for d in dispositions) / len(dispositions))

    def majority(self, typology: Typology | None = None) -> float:
        if typology is None:
            return sum(self.majority_hits.values()) / max(1, sum(self.queries.values()))
        return self.majority_hits[typology] / max(1, self.queries[typology])

    def recall_at_10(self, typology: Typology | None = None) -> float:
        if typology is None:
            return sum(self.recall.values()) / max(1, sum(self.queries.values()))
        return self.recall[typology] / max(1, self.queries[typology])


def open_case_queries(seeds: Sequence[int], accounts: int, days: int) -> list[tuple[Typology, CaseQuery]]:
    queries = []
    for seed in seeds:
        for bundle in generate_world(seed=seed, accounts=accounts, days=days, past_cases=0).alerts:
            queries.append((bundle.expected.typology, _bundle_query(bundle)))
    return queries


def _bundle_query(bundle: CaseBundle) -> CaseQuery:
    account = next((a for a in bundle.accounts if a.account_id == bundle.case.account_id), None)
    linked = [a.account_id for a in bundle.accounts]
    return case_query(case=bundle.case, account=account, events=bundle.events, linked_account_ids=linked)


def narrative_queries(seed: int, count: int) -> list[tuple[Typology, CaseQuery]]:
    before = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cases = generate_past_cases(Random(f"{seed}:held-out"), count, accounts=[], truth={}, before=before)
    return [(c.typology, CaseQuery.from_text(c.narrative)) for c in cases]


def measure_quality(
    store: PastCaseStore, queries: list[tuple[Typology, CaseQuery]], in_store: Counter[Typology]
) -> dict[RetrievalMode, Tally]:
    tallies = {mode: Tally() for mode in MODES}
    memo: dict[tuple[str, ...], np.ndarray] = {}
    embed = store.embed

    def embed_once(texts: Sequence[str]) -> np.ndarray:  # each query is embedded once for the three modes
        key = tuple(texts)
        if key not in memo:
            memo[key] = embed(texts)
        return memo[key]

    store.embed = embed_once  # type: ignore[method-assign]
    for truth, query in queries:
        for mode in MODES:
            found = store.find(query, k=10, mode=mode).neighbours
            tallies[mode].add(
                truth, [n.case.typology for n in found], [n.case.disposition for n in found], in_store[truth]
            )
    store.embed = embed  # type: ignore[method-assign]
    return tallies


def quality_table(title: str, tallies: dict[RetrievalMode, Tally]) -> str:
    head = "| typology | queries | " + " | ".join(f"majority@5 {m.value}" for m in MODES) + " | "
    head += " | ".join(f"recall@10 {m.value}" for m in MODES) + " |"
    lines = [f"### {title}", "", head, "|" + "---|" * (2 + 2 * len(MODES))]
    any_tally = tallies[RetrievalMode.hybrid]
    for typology in sorted(any_tally.queries, key=lambda t: t.value):
        cells = [f"{tallies[m].majority(typology):.2f}" for m in MODES] + [
            f"{tallies[m].recall_at_10(typology):.2f}" for m in MODES
        ]
        lines.append(f"| {typology.value} | {any_tally.queries[typology]} | " + " | ".join(cells) + " |")
    overall = [f"**{tallies[m].majority():.3f}**" for m in MODES] + [
        f"**{tallies[m].recall_at_10():.3f}**" for m in MODES
    ]
    lines.append(f"| **overall** | {sum(any_tally.queries.values())} | " + " | ".join(overall) + " |")
    if any_tally.fp_shares:
        shares = ", ".join(f"{m.value} {statistics.mean(tallies[m].fp_shares):.2f}" for m in MODES)
        lines += ["", f"Legitimate queries, share of their neighbours that were false positives: {shares}."]
    return "\n".join(lines)


class ReusedVectorStore(PastCaseStore):
    """Writes the latency store with real embeddings of a pool of its documents, reused with a small
    jitter (see the module doc); queries go through a plain store on the same collection."""

    def __init__(self, *, pool: np.ndarray, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool = pool
        self.rng = np.random.default_rng(0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        base = self.pool[self.rng.integers(0, len(self.pool), len(texts))]
        return base + self.rng.normal(0, 0.02, base.shape).astype(np.float32)


def measure_latency(args: argparse.Namespace, real_embedder: Any, queries: list[CaseQuery], work: Path) -> str:
    """Query latency at `--latency-cases`. The store is written once per `--work` folder: a later run with the
    same folder and size reuses it, so the queries can be timed again on a quiet machine without the long write."""
    settings = Settings(chroma_path=work / "latency", chroma_collection="latency")
    real = PastCaseStore.from_settings(settings, embedder=real_embedder)  # the real model for queries
    if real.count() == args.latency_cases:
        written = f"Reused the {args.latency_cases:,}-case store written earlier in {work / 'latency'}."
    else:
        before = datetime(2026, 1, 1, tzinfo=timezone.utc)
        cases = generate_past_cases(Random("bench:latency"), args.latency_cases, accounts=[], truth={}, before=before)
        indexed = [IndexedCase(case=c, provenance=Provenance.simulated) for c in cases]
        pool = np.asarray(real_embedder([c.narrative for c in cases[: args.latency_pool]]), dtype=np.float32)
        store = ReusedVectorStore(pool=pool, client=make_client(settings), collection="latency", embedder=real_embedder)
        started = time.perf_counter()
        store.upsert(indexed, batch_size=1000)
        write_s = time.perf_counter() - started
        written = (
            f"Writing {len(indexed):,} cases (hashing, metadata, Chroma upsert; embeddings reused, see above): "
            f"{write_s:.0f} s ({len(indexed) / write_s:,.0f} cases/s)."
        )
    started = time.perf_counter()
    real.lexical_table()
    rebuild_s = time.perf_counter() - started
    rows = []
    for mode in MODES:
        embed_ms, search_ms = [], []
        for query in queries:
            found = real.find(query, k=10, mode=mode)
            embed_ms.append(found.embed_ms)
            search_ms.append(found.search_ms)
        rows.append(
            f"| {mode.value} | {len(queries)} | {_pct(search_ms, 50):.1f} | {_pct(search_ms, 95):.1f} | "
            f"{_pct(embed_ms, 50):.1f} | {_pct(embed_ms, 95):.1f} |"
        )
    return "\n".join(
        [
            f"### Latency at {real.count():,} stored cases",
            "",
            (
                f"{written} Rebuilding the BM25 copy from the collection: {rebuild_s:.1f} s. "
                f"Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores after the queries."
            ),
            "",
            "| mode | queries | search p50 ms | search p95 ms | query embedding p50 ms | p95 ms |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )


def _pct(values: list[float], q: int) -> float:
    return float(np.percentile(values, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store-cases", type=int, default=3000)
    parser.add_argument(
        "--store-seeds",
        type=int,
        nargs="+",
        default=[7, 8, 9],
        help="simulate the quality store with each seed and measure each (which past cases exist moves the figures)",
    )
    parser.add_argument("--held-out-seeds", type=int, nargs="+", default=[101, 102, 103])
    parser.add_argument("--held-out-accounts", type=int, default=3000)
    parser.add_argument("--held-out-days", type=int, default=60)
    parser.add_argument("--held-out-narratives", type=int, default=600)
    parser.add_argument("--latency-cases", type=int, default=100_000)
    parser.add_argument("--latency-pool", type=int, default=2000)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument(
        "--work", type=Path, default=None, help="folder for the Chroma stores (default: a temporary one)"
    )
    parser.add_argument("--skip-quality", action="store_true", help="only ingestion and latency")
    parser.add_argument("--skip-latency", action="store_true", help="only ingestion and quality")
    parser.add_argument("--skip-narratives", action="store_true", help="no held-out narrative queries")
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only the latency at --latency-cases (with --work, reuses a store written earlier)",
    )
    parser.add_argument(
        "--backend",
        choices=["onnx-int8", "onnx", "torch"],
        default=None,
        help="embedding backend (default: the configured one)",
    )
    parser.add_argument("--max-tokens", type=int, default=None, help="embedding token limit (default: configured)")
    parser.add_argument(
        "--compare",
        nargs="*",
        default=[],
        metavar="BACKEND:TOKENS",
        help="also measure ingestion and open-case quality with these embedders, in the same run (e.g. onnx:256)",
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    overrides = {k: v for k, v in (("embedding_backend", args.backend), ("embedding_max_tokens", args.max_tokens)) if v}
    embedder = embedding_function(Settings(**overrides))  # type: ignore[arg-type]

    open_cases = open_case_queries(args.held_out_seeds, args.held_out_accounts, args.held_out_days)
    print(f"## Similar-case retrieval ({os.cpu_count()} cores)\n")
    overall: dict[int, dict[RetrievalMode, Tally]] = {}
    first_world = None
    for store_seed in [] if args.latency_only else args.store_seeds:
        world = generate_world(seed=store_seed, accounts=2000, days=30, past_cases=args.store_cases)
        first_world = first_world or world
        in_store = Counter(c.typology for c in world.past_cases)
        store = ingest(world, embedder, work, f"quality-{store_seed}", seed=store_seed)
        if args.skip_quality:
            break  # ingestion measured once is enough
        open_title = (
            f"Open cases: {len(open_cases)} alert bundles of seeds {args.held_out_seeds}, store seed {store_seed}"
        )
        overall[store_seed] = measure_quality(store, open_cases, in_store)
        print(quality_table(open_title, overall[store_seed]) + "\n")
        if not args.skip_narratives and store_seed == args.store_seeds[0]:
            narratives = narrative_queries(args.held_out_seeds[0], args.held_out_narratives)
            narrative_title = f"Held-out narratives: {len(narratives)} (seed {args.held_out_seeds[0]})"
            print(quality_table(narrative_title, measure_quality(store, narratives, in_store)) + "\n")
    if len(overall) > 1:
        print(seeds_table(overall) + "\n")
    if args.compare:  # the other embedders on the first store
        world = first_world or generate_world(
            seed=args.store_seeds[0], accounts=2000, days=30, past_cases=args.store_cases
        )
        in_store = Counter(c.typology for c in world.past_cases)
    for n, spec in enumerate(args.compare):
        backend, _, tokens = spec.partition(":")
        other = embedding_function(Settings(embedding_backend=backend, embedding_max_tokens=int(tokens or 128)))  # type: ignore[arg-type]
        other_store = ingest(world, other, work, f"compare-{n}")
        open_title = f"Open cases with {other.identity}"
        print(quality_table(open_title, measure_quality(other_store, open_cases, in_store)) + "\n")
    if not args.skip_latency:
        latency_queries = [q for _, q in open_cases[: args.latency_queries]]
        print(measure_latency(args, embedder, latency_queries, work))


def seeds_table(by_seed: dict[int, dict[RetrievalMode, Tally]]) -> str:
    """Overall majority@5 per store seed and their mean: the spread says how much rests on which cases exist."""
    lines = [
        "### Overall majority@5 by store seed",
        "",
        "| store seed | " + " | ".join(m.value for m in MODES) + " | hybrid recall@10 | legitimate FP share (hybrid) |",
        "|---|" + "---|" * (len(MODES) + 2),
    ]
    for seed, tallies in by_seed.items():
        fp = statistics.mean(tallies[RetrievalMode.hybrid].fp_shares)
        lines.append(
            f"| {seed} | "
            + " | ".join(f"{tallies[m].majority():.3f}" for m in MODES)
            + f" | {tallies[RetrievalMode.hybrid].recall_at_10():.3f} | {fp:.2f} |"
        )
    means = [statistics.mean(t[m].majority() for t in by_seed.values()) for m in MODES]
    recall = statistics.mean(t[RetrievalMode.hybrid].recall_at_10() for t in by_seed.values())
    fp = statistics.mean(statistics.mean(t[RetrievalMode.hybrid].fp_shares) for t in by_seed.values())
    lines.append("| **mean** | " + " | ".join(f"**{v:.3f}**" for v in means) + f" | **{recall:.3f}** | {fp:.2f} |")
    return "\n".join(lines)


def ingest(world: Any, embedder: Any, work: Path, name: str, *, seed: int = 7) -> PastCaseStore:
    """Index the quality store and say how fast: wall clock, and per CPU-second of this process (the machine
    is shared, so the wall-clock rate depends on what else runs; the load average says how busy it was)."""
    store = PastCaseStore.from_settings(Settings(chroma_path=work / name, chroma_collection=name), embedder=embedder)
    if store.count():
        raise SystemExit(f"{work / name} already holds a store: ingestion is measured on an empty one (another --work)")
    wall, cpu = time.perf_counter(), time.process_time()
    store.upsert([IndexedCase(case=c, provenance=Provenance.simulated) for c in world.past_cases])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = len(world.past_cases)
    print(
        f"Store `{name}`: {store.count():,} simulated past cases (seed {seed}), embedder `{embedder.identity}`."
        f" Ingestion: **{n / wall:.0f} cases/s** wall clock including embedding (embedding"
        f" {store.embedding_s / wall:.0%} of it), {n / cpu:.0f} cases per CPU-second of this process; load average"
        f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.\n"
    )
    return store


if __name__ == "__main__":
    main()
