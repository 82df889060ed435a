"""The BM25 copy at scale: what a write costs before a search finds it, and what a search costs right after.

    .venv/bin/python benchmarks/bench_lexical.py [--cases 100000] [--work DIR] [--chroma] [--out FILE]

Before (the previous code): any write dropped the in-memory BM25 copy, and the next search rebuilt it from a full
read of the Chroma collection on its own time. Now (`retrieval/lexical.py`, `retrieval/past_cases.py`): the write
is laid over the copy as a small delta, searched at once with the statistics of the whole index, and full rebuilds
run in a background thread.

In memory (always; no Chroma): `--cases` synthetic past cases, the simulator's write-ups as they are indexed
(`StoredCase` rows: document and metadata), built straight into the table. Measured: the index part of a full
build and the resident memory it adds; the time to lay one more write over the table with 0 to
`--max-delta` earlier writes in the delta (what `PastCaseStore.upsert` adds after its Chroma write); the lexical
search (filter mask, BM25 of every row, top 50) with those deltas, over `--queries` queries (write-ups of another
seed, as free text); and, as the baseline in the same run, the previous scorer: bm25s's precomputed index over
the same rows.

With `--chroma` also through a real `PastCaseStore` on an on-disk collection in `--work` holding the same rows
(written once, reused by later runs with the same folder and size; the vectors are random and the query
"embedding" a random vector: HNSW does the same work, the vector ranking means nothing): the full build on the
request path (read + index), a stream of `--upserts` upserts each followed by a hybrid search (the time from the
upsert's start to the case being searchable, and the search's own time), the same through the previous path
(write, drop the copy, search: the search rebuilds it), and searches while a background rebuild runs.
The load average is read at the start and the end: on a shared 2-core machine it moves every figure.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import pickle
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import psutil

from fraudagent.core.models import PastCase
from fraudagent.core.settings import Settings
from fraudagent.retrieval.documents import IndexedCase, Provenance, document, metadata
from fraudagent.retrieval.lexical import CaseTable, DeltaTable, LexicalIndex, StoredCase
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.retrieval.search import CaseQuery, RetrievalMode
from fraudagent.sim.past_cases import generate_past_cases

BEFORE = datetime(2026, 1, 1, tzinfo=timezone.utc)
DELTAS = (0, 1, 10, 100, 1000)


def _pct(values: list[float], q: int) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _ms(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(_pct(values, 50) * 1000, 2), "p95_ms": round(_pct(values, 95) * 1000, 2), "n": len(values)}


def _row(case: PastCase) -> StoredCase:
    indexed = IndexedCase(case=case, provenance=Provenance.simulated)
    doc = document(indexed)
    return StoredCase(case.case_id, doc, metadata(indexed, doc))


def synthetic_rows(count: int, extra: int, work: Path) -> tuple[list[StoredCase], list[PastCase]]:
    """`count` stored rows and `extra` further cases to write, from the simulator (cached in `work`)."""
    cache = work / f"rows-{count}-{extra}.pkl"
    if cache.exists():
        with cache.open("rb") as f:
            cached: tuple[list[StoredCase], list[PastCase]] = pickle.load(f)
            return cached
    cases = generate_past_cases(Random("bench:latency"), count + extra, accounts=[], truth={}, before=BEFORE)
    rows = [_row(c) for c in cases[:count]]
    with cache.open("wb") as f:
        pickle.dump((rows, cases[count:]), f)
    return rows, cases[count:]


def queries(n: int) -> list[CaseQuery]:
    held_out = generate_past_cases(Random("bench:queries"), n, accounts=[], truth={}, before=BEFORE)
    return [CaseQuery.from_text(c.narrative) for c in held_out]


def lexical_search(index: LexicalIndex, query: CaseQuery) -> list[tuple[int, float]]:
    """The lexical side of a search, as `PastCaseStore._neighbours` runs it."""
    allowed = index.allowed(query.filters)
    return index.top_rows(index.lexical_scores(query.lexical_tokens(), allowed), 50)


def in_memory(rows: list[StoredCase], written: list[StoredCase], qs: list[CaseQuery], k1: float, b: float) -> dict:
    process = psutil.Process()
    gc.collect()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    main = CaseTable(rows, k1=k1, b=b)
    build_s = time.perf_counter() - started
    gc.collect()
    table_mb = (process.memory_info().rss - rss_before) / 2**20
    postings = len(main.postings.docs)

    import bm25s  # the previous scorer: bm25s's precomputed index over the same tokens

    started = time.perf_counter()
    reference = bm25s.BM25(k1=k1, b=b)
    reference.index([row.tokens() for row in rows], show_progress=False)
    bm25s_build_s = time.perf_counter() - started
    vocab = reference.vocab_dict
    previous = []
    for q in qs:
        tokens = [t for t in dict.fromkeys(q.lexical_tokens()) if t in vocab]
        t0 = time.perf_counter()
        allowed = q.filters.allowed(main.columns)
        scores = np.where(allowed, reference.get_scores(tokens), 0.0) if tokens else np.zeros(len(rows))
        CaseTable.top_rows(scores, 50)
        previous.append(time.perf_counter() - t0)
    del reference
    gc.collect()

    by_delta: dict[str, Any] = {}
    for size in DELTAS:
        if size > len(written):
            break
        lay_over = []
        for n in range(max(1, min(5, size))):  # the write that makes the delta `size` rows long
            t0 = time.perf_counter()
            index = LexicalIndex(main, DeltaTable(written[: size - n] if size else []))
            lay_over.append(time.perf_counter() - t0)
        index = LexicalIndex(main, DeltaTable(written[:size]))
        search = []
        for q in qs:
            t0 = time.perf_counter()
            lexical_search(index, q)
            search.append(time.perf_counter() - t0)
        by_delta[str(size)] = {"lay_over_write": _ms(lay_over), "lexical_search": _ms(search)}
    return {
        "cases": len(rows),
        "postings": postings,
        "index_build_s": round(build_s, 2),
        "table_rss_mb": round(table_mb, 1),
        "previous_bm25s_build_s": round(bm25s_build_s, 2),
        "previous_lexical_search": _ms(previous),
        "by_delta": by_delta,
    }


class RandomEmbedder:
    """Random unit vectors, the same one for the same text: timing only (see the module doc)."""

    identity = "bench-random-384"

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).normal(size=384)
            out[i] = vector / np.linalg.norm(vector)
        return out


def through_chroma(
    rows: list[StoredCase], cases: list[PastCase], qs: list[CaseQuery], args: argparse.Namespace
) -> dict:
    settings = Settings(chroma_path=args.work / "chroma", chroma_collection=f"lexical-{len(rows)}")
    embedder = RandomEmbedder()
    store = PastCaseStore.from_settings(settings, embedder=embedder)
    store.lexical_min_interval_s = 0.0
    store.delete([c.case_id for c in cases])  # left by an earlier run that stopped before cleaning up
    if store.count() != len(rows):
        started = time.perf_counter()
        for start in range(0, len(rows), 5000):
            page = rows[start : start + 5000]
            store._collection.upsert(
                ids=[r.case_id for r in page],
                documents=[r.document for r in page],
                metadatas=[r.metadata for r in page],
                embeddings=embedder([r.document for r in page]),
            )
            print(f"  wrote {start + len(page):,} rows to Chroma", file=sys.stderr)
        print(f"  Chroma write: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    result: dict[str, Any] = {"collection_cases": store.count()}

    started = time.perf_counter()
    store._read_all()
    result["read_all_s"] = round(time.perf_counter() - started, 2)
    gc.collect()
    rss = psutil.Process().memory_info().rss
    started = time.perf_counter()
    store.rebuild_lexical()
    result["first_build_s"] = round(time.perf_counter() - started, 2)
    gc.collect()
    result["first_build_rss_mb"] = round((psutil.Process().memory_info().rss - rss) / 2**20, 1)
    query = qs[0]
    store.find(query, k=10)

    written: list[PastCase] = []

    def stream(n: int, *, drop: bool) -> dict[str, Any]:
        searchable, searches, upserts = [], [], []
        for case in cases[:n]:
            written.append(case)
            t0 = time.perf_counter()
            assert store.upsert([case], provenance=Provenance.analyst_decision) == 1
            t1 = time.perf_counter()
            if drop:  # the previous path: a write dropped the copy; the next search rebuilt it
                store.drop_lexical()
            found = store.find(CaseQuery.from_text(case.narrative), k=10, mode=RetrievalMode.lexical)
            t2 = time.perf_counter()
            assert case.case_id in [c.case.case_id for c in found.neighbours[:10]], "not found right after its upsert"
            upserts.append(t1 - t0)
            searchable.append(t1 - t0 if not drop else t2 - t0)  # until a search can return it
            searches.append(found.search_ms / 1000)
        return {"upsert": _ms(upserts), "searchable_after": _ms(searchable), "search_right_after": _ms(searches)}

    builds = store.lexical_builds
    result["now"] = stream(args.upserts, drop=False)
    result["now"]["full_builds"] = store.lexical_builds - builds
    del cases[: args.upserts]
    builds = store.lexical_builds
    result["previous_path"] = stream(args.before_upserts, drop=True)
    result["previous_path"]["full_builds"] = store.lexical_builds - builds
    del cases[: args.before_upserts]

    # searches while a background rebuild runs
    store.lexical_max_age_s = 0.0
    store.find(query, k=10)  # stale: starts the rebuild
    store.lexical_max_age_s = 3600.0
    during: list[float] = []
    thread = store._rebuild_thread
    started = time.perf_counter()
    while thread is not None and thread.is_alive():
        t0 = time.perf_counter()
        store.find(qs[len(during) % len(qs)], k=10)
        during.append(time.perf_counter() - t0)
    result["background_rebuild_s"] = round(time.perf_counter() - started, 2)
    result["search_during_background_rebuild"] = _ms(during)
    quiet = []
    for q in qs[:50]:
        t0 = time.perf_counter()
        store.find(q, k=10)
        quiet.append(time.perf_counter() - t0)
    result["search_after_rebuild"] = _ms(quiet)
    store.delete([c.case_id for c in written])  # the collection as it was, for the next run
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--max-delta", type=int, default=1000, help="largest delta measured (default: the setting)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--upserts", type=int, default=20, help="upserts through the store, each then searched")
    parser.add_argument("--before-upserts", type=int, default=2, help="the same through the previous path")
    parser.add_argument("--chroma", action="store_true", help="also through a PastCaseStore on an on-disk Chroma")
    parser.add_argument("--work", type=Path, default=None, help="cache folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    args.work = args.work or Path(tempfile.mkdtemp(prefix="bench-lexical-"))
    args.work.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    load_start = os.getloadavg()
    extra = max(args.max_delta, args.upserts + args.before_upserts)
    rows, cases = synthetic_rows(args.cases, extra, args.work)
    qs = queries(args.queries)
    written = [_row(c) for c in cases[: args.max_delta]]
    results: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "cpus": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in load_start],
        "k1": settings.retrieval_bm25_k1,
        "b": settings.retrieval_bm25_b,
        "in_memory": in_memory(rows, written, qs, settings.retrieval_bm25_k1, settings.retrieval_bm25_b),
    }
    print(json.dumps(results["in_memory"], indent=2))
    if args.chroma:
        results["chroma"] = through_chroma(rows, list(cases), qs, args)
        print(json.dumps(results["chroma"], indent=2))
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
