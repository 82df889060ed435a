"""Tuning harness for similar-case retrieval: embed once, then sweep retrieval choices in-process.

    .venv/bin/python benchmarks/tune_retrieval.py [--split dev|test|all] [--configs NAME ...]

The store (3,000 simulated past cases, seed 7 or `--store-seed`) and the open-case queries (the
alert bundles of worlds simulated with seeds 101-103) are the same as in
`bench_retrieval.py`. Embeddings are cached on disk by the sha256 of the
embedded text and the embedder's identity (`--cache`, default under /tmp), so
a second run embeds nothing new and a sweep costs only the searches. Every
configuration goes through the production path, `PastCaseStore.find`, with the
store's knobs set as the settings would set them.

Splits: `dev` is seed 101 (tune on it), `test` seeds 102 and 103 (report only),
`all` the three (the README table). Never tune on `test`.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bench_retrieval import MODES, Tally, _bundle_query, quality_table  # type: ignore[import-not-found]

from fraudagent.core.models import Typology
from fraudagent.core.settings import Settings
from fraudagent.retrieval.documents import IndexedCase, Provenance
from fraudagent.retrieval.past_cases import PastCaseStore, embedding_function
from fraudagent.retrieval.search import CaseQuery, RetrievalMode
from fraudagent.sim.world import GENERATOR_VERSION, generate_world

SPLITS = {"dev": (101,), "test": (102, 103), "all": (101, 102, 103)}


class CachedEmbedder:
    """The real embedder behind an on-disk cache keyed by text hash (same identity, same vectors): the embedder
    embeds each text on its own, so a cached vector is the one production computes. Keep one cache per
    embedder identity (the default file name holds its hash)."""

    def __init__(self, inner: Any, path: Path) -> None:
        self.inner, self.path, self.identity = inner, path, inner.identity
        self.vectors: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path) as data:
                self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        self.misses = 0

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self.vectors))
        if missing:
            by_key = {self.key(t): t for t in texts}
            fresh = self.inner([by_key[k] for k in missing])
            self.vectors.update(zip(missing, fresh, strict=True))
            self.misses += len(missing)
        return np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, 384), np.float32)

    def save(self) -> None:
        if not self.vectors:
            return
        keys = list(self.vectors)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.path)


def simulated(work: Path, name: str, make: Callable[[], Any]) -> Any:
    """`make()`, computed once per generator version and pickled under `work`."""
    path = work / f"{name}-{GENERATOR_VERSION.replace('/', '-')}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    path.write_bytes(pickle.dumps(value))
    return value


def load_queries(seeds: Sequence[int], work: Path) -> list[tuple[int, Typology, Any]]:
    """(seed, truth, bundle) for the alert bundles; the worlds are simulated once and pickled."""
    out = []
    for seed in seeds:
        bundles = simulated(
            work,
            f"bundles-{seed}",
            lambda seed=seed: generate_world(seed=seed, accounts=3000, days=60, past_cases=0).alerts,
        )
        out += [(seed, b.expected.typology, b) for b in bundles]
    return out


def build_store(embedder: CachedEmbedder, work: Path, seed: int = 7) -> tuple[PastCaseStore, Counter[Typology]]:
    past = simulated(
        work, f"world-{seed}", lambda: generate_world(seed=seed, accounts=2000, days=30, past_cases=3000).past_cases
    )
    settings = Settings(chroma_path=work / f"chroma-{seed}", chroma_collection="tune")
    store = PastCaseStore.from_settings(settings, embedder=embedder)
    store.upsert([IndexedCase(case=c, provenance=Provenance.simulated) for c in past])
    return store, Counter(c.typology for c in past)


def evaluate(
    store: PastCaseStore,
    queries: list[tuple[Typology, CaseQuery]],
    in_store: Counter[Typology],
    modes: Sequence[RetrievalMode] = MODES,
) -> dict[RetrievalMode, Tally]:
    tallies = {mode: Tally() for mode in MODES}
    for truth, query in queries:
        for mode in modes:
            found = store.find(query, k=10, mode=mode).neighbours
            tallies[mode].add(
                truth, [n.case.typology for n in found], [n.case.disposition for n in found], in_store[truth]
            )
    return tallies


def merge(parts: Sequence[dict[RetrievalMode, Tally]]) -> dict[RetrievalMode, Tally]:
    """Tallies of disjoint query sets added up."""
    merged = {mode: Tally() for mode in MODES}
    for part in parts:
        for mode, tally in part.items():
            merged[mode].queries.update(tally.queries)
            merged[mode].majority_hits.update(tally.majority_hits)
            for typology, value in tally.recall.items():
                merged[mode].recall[typology] += value
            merged[mode].fp_shares += tally.fp_shares
    return merged


def summary_line(name: str, tallies: dict[RetrievalMode, Tally], modes: Sequence[RetrievalMode]) -> str:
    parts = []
    for m in modes:
        t = tallies[m]
        fp = np.mean(t.fp_shares) if t.fp_shares else float("nan")
        per = " ".join(f"{ty.value[:4]}={t.majority(ty):.2f}" for ty in sorted(t.queries, key=lambda x: x.value))
        parts.append(f"{m.value}: maj5={t.majority():.3f} r10={t.recall_at_10():.3f} fp={fp:.2f} [{per}]")
    return f"{name:<28} " + " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=sorted(SPLITS), default="dev")
    parser.add_argument("--store-seed", type=int, default=7, help="the seed that simulates the 3,000 past cases")
    parser.add_argument("--work", type=Path, default=Path("/tmp/fraudagent-tune-retrieval"))
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache (.npz); default under --work")
    parser.add_argument("--table", action="store_true", help="print the full per-typology table of each config")
    parser.add_argument("--modes", nargs="+", choices=[m.value for m in MODES], default=[m.value for m in MODES])
    parser.add_argument("--embed-only", action="store_true", help="fill the embedding cache and stop")
    parser.add_argument("--configs", nargs="*", default=["current"], help="names from CONFIGS, or key=value,...")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    inner = embedding_function(Settings())
    cache = args.cache or args.work / f"embeddings-{hashlib.sha256(inner.identity.encode()).hexdigest()[:12]}.npz"
    embedder = CachedEmbedder(inner, cache)
    started = time.perf_counter()
    store, in_store = build_store(embedder, args.work, args.store_seed)
    bundles = load_queries(SPLITS[args.split], args.work)
    queries = [(truth, _bundle_query(b)) for _, truth, b in bundles]
    seeds = [seed for seed, _, _ in bundles]
    for text in dict.fromkeys(q.embedding_text() for _, q in queries):
        embedder([text])  # one at a time, as `find` does: int8 activations are quantised per batch
    embedder.save()
    print(
        f"store {store.count()} cases, {len(queries)} queries ({args.split}), "
        f"{embedder.misses} embedded in {time.perf_counter() - started:.0f} s"
    )
    if args.embed_only:
        return
    for spec in args.configs:
        knobs = dict(kv.split("=", 1) for kv in spec.split(",") if "=" in kv)
        before = {name: getattr(store, name) for name in knobs}
        for name, value in knobs.items():
            current = getattr(store, name)
            setattr(store, name, value == "true" if isinstance(current, bool) else type(current)(value))
        store._table = None  # BM25 parameters take effect on the next rebuild
        modes = [RetrievalMode(m) for m in args.modes]
        by_seed = {
            seed: evaluate(store, [q for q, s in zip(queries, seeds, strict=True) if s == seed], in_store, modes)
            for seed in dict.fromkeys(seeds)
        }
        for split, split_seeds in SPLITS.items():
            if set(split_seeds) <= set(by_seed) and (split == args.split or args.split == "all"):
                tallies = merge([by_seed[seed] for seed in split_seeds])
                print(summary_line(f"{spec} [{split}]", tallies, modes), flush=True)
                if args.table:
                    print(quality_table(f"{spec} ({split})", tallies) + "\n", flush=True)
        for name, value in before.items():
            setattr(store, name, value)
        store._table = None
    embedder.save()


if __name__ == "__main__":
    main()
