"""The past-case store: investigated cases in Chroma, found again by hybrid search.

On-disk `PersistentClient` by default, a Chroma server (`HttpClient`) when
`chroma_host` is set: same code. Embeddings come from the packaged
all-MiniLM-L6-v2, passed explicitly (Chroma's default would download a model);
the store embeds documents and queries itself so that only changed cases are
embedded and query embedding time is measured apart from search.
Search fuses the vector neighbours with BM25 (`lexical.py`): a weighted sum of cosine and scaled BM25 by
default, reciprocal rank fusion on request (`retrieval_fusion`).
BM25 searches an in-memory copy of the collection (`lexical.LexicalIndex`). Only the first search builds it on
the request path. This process's writes go into the copy's delta as they are made, so they are searchable at
once; a full rebuild, for other writers' changes (the collection's count differs from the copy's), age
(`retrieval_lexical_max_age_s`) or a delta past `retrieval_lexical_max_delta`, runs in a background thread and is
swapped in when done, while searches go on with the copy they have.
Narratives are untrusted text: stored and returned as evidence, never as instructions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fraudagent.core.errors import DependencyUnavailable, FraudAgentError
from fraudagent.core.models import PastCase
from fraudagent.core.settings import Settings
from fraudagent.retrieval.documents import IndexedCase, Provenance, document, metadata, past_case, vector_text
from fraudagent.retrieval.embedding import Embedder, load_embedder
from fraudagent.retrieval.filters import CaseFilter
from fraudagent.retrieval.lexical import CaseTable, DeltaTable, LexicalIndex, StoredCase, tokenize
from fraudagent.retrieval.search import (
    CaseQuery,
    Fusion,
    RetrievalMode,
    SimilarCase,
    SimilarCases,
    reciprocal_rank_fusion,
    score_fusion,
    summarize,
)

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
READ_PAGE = 5000  # rows per read when rebuilding the lexical index
MAX_UNFILTERED_FETCH = 1000  # vector neighbours fetched to filter here rather than in Chroma
EMBEDDER_KEY = "embedder"  # collection metadata: the identity of the embedder that built its vectors


class EmbedderMismatch(FraudAgentError):
    """The collection's vectors come from another embedder than the configured one: comparing them is meaningless."""

    def __init__(self, collection: str, built_with: str | None, configured: str) -> None:
        super().__init__(
            f"the past-case collection {collection!r} was built with embedder {built_with or 'unrecorded'!r}, "
            f"but {configured!r} is configured; run `fraudagent cases reembed` to embed it again with the "
            "configured one (or use another FRAUDAGENT_CHROMA_COLLECTION)"
        )
        self.built_with = built_with
        self.configured = configured


def embedding_function(settings: Settings) -> Embedder:
    """The configured embedder (fraudagent.retrieval.embedding)."""
    return load_embedder(settings)


def make_client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)  # no network to send it to
    if settings.chroma_host:
        try:
            return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
        except Exception as error:  # the client checks the server on creation
            raise DependencyUnavailable("Chroma", f"{settings.chroma_host}:{settings.chroma_port}: {error}") from error
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


def _indexed(case: PastCase | IndexedCase, provenance: Provenance, regions: Mapping[str, str]) -> IndexedCase:
    if isinstance(case, IndexedCase):
        return case
    return IndexedCase(case=case, provenance=provenance, region=regions.get(case.account_id, ""))


def _stored(case_id: str, values: dict[str, Any], doc: str) -> IndexedCase:
    """A stored case as it was indexed: the case, its provenance, region and ring."""
    return IndexedCase(
        case=past_case(case_id, values, doc),
        provenance=Provenance(values.get("provenance", Provenance.imported.value)),
        region=values.get("region", ""),
        linked_account_ids=list(values.get("linked_account_ids") or []),
    )


class PastCaseStore:
    def __init__(
        self,
        *,
        client: Any,
        collection: str,
        embedder: Any,
        mode: RetrievalMode = RetrievalMode.hybrid,
        min_similarity: float = 0.35,
        candidates: int = 50,
        rrf_k: int = 60,
        fusion: Fusion = Fusion.scores,
        vector_share: float = 0.65,
        bm25_k1: float = 1.5,
        bm25_b: float = 1.0,
        lexical_max_age_s: float = 300.0,
        lexical_max_delta: int = 1000,
        lexical_min_interval_s: float = 30.0,
        batch_size: int = 256,
    ) -> None:
        # Vectors are always passed in: Chroma never embeds (its default would download a model).
        self._collection = client.get_or_create_collection(
            name=collection,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={EMBEDDER_KEY: embedder.identity},
        )
        self._embedder = embedder
        self.name = collection
        self.mode = mode
        self.min_similarity = min_similarity
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.fusion = Fusion(fusion)
        self.vector_share = vector_share
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.lexical_max_age_s = lexical_max_age_s
        self.lexical_max_delta = lexical_max_delta
        self.lexical_min_interval_s = lexical_min_interval_s
        self.batch_size = batch_size
        self.embedded = 0  # texts embedded by this store since it was made, and the time it took
        self.embedding_s = 0.0
        self.lexical_builds = 0  # full builds of the BM25 copy, and the seconds the last one took
        self.lexical_build_s = 0.0
        # The BM25 copy. `_lexical` is replaced whole (never changed in place), so a search reads it without a
        # lock. `_lock` guards it and the write log: every case this process wrote (or deleted: None) since the
        # current or running build began reading, numbered, so a build carries over exactly the later ones.
        self._lexical: LexicalIndex | None = None
        self._lexical_built_at = 0.0  # monotonic time its main table's read began
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()  # one full build at a time
        self._written: list[tuple[int, str, StoredCase | None]] = []
        self._seq = 0
        self._building = False
        self._generation = 0  # bumped when the copy is dropped (reembed): a build from before is not swapped in
        self._rebuild_thread: threading.Thread | None = None
        self._rebuild_started = -float("inf")

    @classmethod
    def from_settings(cls, settings: Settings, *, embedder: Any | None = None) -> PastCaseStore:
        return cls(
            client=make_client(settings),
            collection=settings.chroma_collection,
            embedder=embedder if embedder is not None else embedding_function(settings),
            mode=RetrievalMode(settings.retrieval_mode),
            min_similarity=settings.retrieval_min_similarity,
            candidates=settings.retrieval_candidates,
            rrf_k=settings.retrieval_rrf_k,
            fusion=Fusion(settings.retrieval_fusion),
            vector_share=settings.retrieval_vector_share,
            bm25_k1=settings.retrieval_bm25_k1,
            bm25_b=settings.retrieval_bm25_b,
            lexical_max_age_s=settings.retrieval_lexical_max_age_s,
            lexical_max_delta=settings.retrieval_lexical_max_delta,
            lexical_min_interval_s=settings.retrieval_lexical_min_interval_s,
            batch_size=settings.retrieval_batch_size,
        )

    def count(self) -> int:
        return int(self._collection.count())

    @property
    def embedder(self) -> Any:
        """The loaded embedding model (shared with eval runs, which build stores of their own)."""
        return self._embedder

    @property
    def embedder_identity(self) -> str:
        return str(self._embedder.identity)

    @property
    def built_with(self) -> str | None:
        """The identity of the embedder that built the stored vectors (None: not recorded)."""
        return (self._collection.metadata or {}).get(EMBEDDER_KEY)

    def check_embedder(self) -> None:
        """Refuse to mix vectors of two embedders; an empty collection simply adopts the configured one."""
        built_with, configured = self.built_with, self._embedder.identity
        if built_with == configured:
            return
        if self.count() == 0:
            self._collection.modify(metadata={EMBEDDER_KEY: configured})
            return
        raise EmbedderMismatch(self.name, built_with, configured)

    def reembed(self, *, on_progress: Progress | None = None) -> int:
        """Index every stored case again from its stored contents (document in the current format, vector from
        the configured embedder), then record the embedder. Returns how many."""
        ids = self._collection.get(include=[])["ids"]
        for start in range(0, len(ids), self.batch_size):
            page = self._collection.get(ids=ids[start : start + self.batch_size], include=["documents", "metadatas"])
            cases = [
                _stored(i, m, d) for i, m, d in zip(page["ids"], page["metadatas"], page["documents"], strict=True)
            ]
            docs = [document(c) for c in cases]
            self._collection.upsert(
                ids=page["ids"],
                documents=docs,
                metadatas=[metadata(c, d) for c, d in zip(cases, docs, strict=True)],
                embeddings=self.embed([vector_text(d) for d in docs]),
            )
            if on_progress:
                on_progress(min(start + self.batch_size, len(ids)), len(ids))
        self._collection.modify(metadata={EMBEDDER_KEY: self._embedder.identity})
        self.drop_lexical()
        return len(ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = np.asarray(self._embedder(list(texts)), dtype=np.float32)
        self.embedded += len(texts)
        self.embedding_s += time.perf_counter() - started
        return vectors

    # --- ingestion ----------------------------------------------------------

    def upsert(
        self,
        cases: Sequence[PastCase | IndexedCase],
        *,
        batch_size: int | None = None,
        on_progress: Progress | None = None,
        provenance: Provenance | str = Provenance.imported,
        regions: Mapping[str, str] | None = None,
    ) -> int:
        """Add or update cases in batches: a changed document is embedded again, changed metadata only
        rewritten, an unchanged case skipped. Returns how many cases were written; `embedded` counts embeddings.
        Plain `PastCase`s get `provenance` and the region of their account from `regions`."""
        provenance, regions = Provenance(provenance), regions or {}
        self.check_embedder()
        size = batch_size or self.batch_size
        written: list[StoredCase] = []
        try:
            for start in range(0, len(cases), size):
                written += self._upsert_batch([_indexed(c, provenance, regions) for c in cases[start : start + size]])
                if on_progress:
                    on_progress(min(start + size, len(cases)), len(cases))
        finally:  # what reached Chroma is searchable, even when a later batch failed
            self._note_written({row.case_id: row for row in written})
        return len(written)

    def delete(self, case_ids: Sequence[str]) -> None:
        """Remove past cases from the collection (and from this process's BM25 copy at once)."""
        if not case_ids:
            return
        self._collection.delete(ids=list(case_ids))
        self._note_written(dict.fromkeys(case_ids))

    def _upsert_batch(self, batch: list[IndexedCase]) -> list[StoredCase]:
        unique = list({c.case.case_id: c for c in batch}.values())  # Chroma refuses duplicate ids in one call
        ids = [c.case.case_id for c in unique]
        docs = [document(c) for c in unique]
        metadatas = [metadata(c, d) for c, d in zip(unique, docs, strict=True)]
        stored = self._collection.get(ids=ids, include=["metadatas"])
        known = dict(zip(stored["ids"], stored["metadatas"] or [], strict=True))
        reembed: list[int] = []
        rewrite: list[int] = []
        for i, (case_id, values) in enumerate(zip(ids, metadatas, strict=True)):
            previous = known.get(case_id, {})
            if previous.get("content_hash") == values["content_hash"]:
                continue
            (rewrite if previous.get("document_hash") == values["document_hash"] else reembed).append(i)
        if reembed:
            self._collection.upsert(
                ids=[ids[i] for i in reembed],
                documents=[docs[i] for i in reembed],
                metadatas=[metadatas[i] for i in reembed],
                embeddings=self.embed([vector_text(docs[i]) for i in reembed]),
            )
        if rewrite:  # replaced whole with the stored embedding: Chroma's update would merge old metadata keys in
            kept = self._collection.get(ids=[ids[i] for i in rewrite], include=["embeddings"])
            vectors = dict(zip(kept["ids"], kept["embeddings"], strict=True))
            self._collection.upsert(
                ids=[ids[i] for i in rewrite],
                documents=[docs[i] for i in rewrite],
                metadatas=[metadatas[i] for i in rewrite],
                embeddings=[vectors[ids[i]] for i in rewrite],
            )
        return [StoredCase(ids[i], docs[i], metadatas[i]) for i in sorted(reembed + rewrite)]

    def get(self, case_ids: Sequence[str]) -> list[PastCase]:
        if not case_ids:
            return []
        found = self._collection.get(ids=list(case_ids), include=["metadatas", "documents"])
        by_id = {
            i: past_case(i, m, d) for i, m, d in zip(found["ids"], found["metadatas"], found["documents"], strict=True)
        }
        return [by_id[i] for i in case_ids if i in by_id]

    # --- the lexical copy -----------------------------------------------------

    def lexical_table(self) -> LexicalIndex:
        """The copy BM25 searches. The first call builds it (on the caller's time); later calls return the current
        one at once and, when it may be out of date, start a rebuild in the background (`_stale`)."""
        index = self._lexical
        if index is None:
            return self.rebuild_lexical(only_if_missing=True)
        if self._stale(index):
            self._rebuild_in_background()
        return index

    def rebuild_lexical(self, *, only_if_missing: bool = False) -> LexicalIndex:
        """Build the copy from a full read of the collection now, on the caller's time, and swap it in."""
        with self._build_lock:
            current = self._lexical
            if only_if_missing and current is not None:  # another caller built it while this one waited
                return current
            return self._build()

    def drop_lexical(self) -> None:
        """Forget the copy (and any build in progress): the next search builds it again from the collection."""
        with self._lock:
            self._lexical = None
            self._written.clear()
            self._generation += 1

    def _stale(self, index: LexicalIndex) -> bool:
        """The copy may not match the collection: it is older than `lexical_max_age_s`, its delta holds more than
        `lexical_max_delta` cases, or the collection's count is not the copy's (another writer)."""
        if time.monotonic() - self._lexical_built_at > self.lexical_max_age_s:
            return True
        if len(index.delta) + len(index.delta.deleted) > self.lexical_max_delta:
            return True
        return len(index) != self.count()

    def _rebuild_in_background(self) -> None:
        """Start a full rebuild in a thread, unless one is running or one started less than
        `lexical_min_interval_s` ago (so a failing or a changing collection does not keep a core busy)."""
        with self._lock:
            running = self._rebuild_thread is not None and self._rebuild_thread.is_alive()
            if running or time.monotonic() - self._rebuild_started < self.lexical_min_interval_s:
                return
            self._rebuild_started = time.monotonic()
            thread = threading.Thread(target=self._rebuild_quietly, name=f"bm25-rebuild-{self.name}", daemon=True)
            self._rebuild_thread = thread
        thread.start()

    def wait_for_lexical_rebuild(self, timeout: float | None = None) -> bool:
        """Wait for the background rebuild under way, if any; False when it is still running after `timeout`."""
        thread = self._rebuild_thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _rebuild_quietly(self) -> None:
        try:
            with self._build_lock:
                self._build()
        except Exception as error:  # searches go on with the copy they have; the next stale search tries again
            log.warning("rebuilding the BM25 copy of %s failed: %s: %s", self.name, type(error).__name__, error)

    def _build(self) -> LexicalIndex:
        """One full build (the caller holds `_build_lock`): note where the write log stands, read the collection,
        index it, then swap it in with a delta of the writes logged after that point (they may or may not be in
        what was read; the delta's version wins either way, and it is the latest)."""
        with self._lock:
            start_seq, generation = self._seq, self._generation
            self._building = True
        try:
            started = time.monotonic()
            main = CaseTable(self._read_all(), k1=self.bm25_k1, b=self.bm25_b)
            with self._lock:
                if generation != self._generation:  # dropped while reading: this read may predate a reembed
                    raise RuntimeError("the BM25 copy was dropped while it was being built")
                self._written = [entry for entry in self._written if entry[0] > start_seq]
                index = self._lexical = LexicalIndex(main, self._delta())
                self._lexical_built_at = started
                self.lexical_builds += 1
                self.lexical_build_s = time.monotonic() - started
            log.info("built the BM25 copy of %s: %d cases in %.1f s", self.name, len(main), self.lexical_build_s)
            return index
        finally:
            with self._lock:
                self._building = False

    def _note_written(self, rows: Mapping[str, StoredCase | None]) -> None:
        """This process wrote these cases (None: deleted): log them and lay them over the current copy at once.
        Without a copy or a build under way nothing is kept: the next build reads them from the collection."""
        if not rows:
            return
        with self._lock:
            if self._lexical is None and not self._building:
                return
            for case_id, row in rows.items():
                self._seq += 1
                self._written.append((self._seq, case_id, row))
            if self._lexical is not None:
                self._lexical = LexicalIndex(self._lexical.main, self._delta())
        if self._lexical is not None and len(self._written) > self.lexical_max_delta:
            self._rebuild_in_background()

    def _delta(self) -> DeltaTable:
        """The write log as a delta (the caller holds `_lock`): each case's latest version."""
        latest = {case_id: row for _, case_id, row in self._written}
        rows = [row for row in latest.values() if row is not None]
        return DeltaTable(rows, [case_id for case_id, row in latest.items() if row is None])

    def _read_all(self) -> list[StoredCase]:
        rows: dict[str, StoredCase] = {}  # by id: a row moved by a concurrent write may come twice
        read = 0
        while True:
            page = self._collection.get(include=["documents", "metadatas"], limit=READ_PAGE, offset=read)
            for i, d, m in zip(page["ids"], page["documents"], page["metadatas"], strict=True):
                rows[i] = StoredCase(i, d, m)
            read += len(page["ids"])
            if len(page["ids"]) < READ_PAGE:
                return list(rows.values())

    # --- search -----------------------------------------------------------------

    def search(
        self, text: str, *, k: int, exclude_account_ids: Sequence[str] = (), min_similarity: float | None = None
    ) -> list[SimilarCase]:
        """The k most similar past cases for free text, never from the excluded accounts or their rings."""
        if k <= 0:
            return []
        query = CaseQuery.from_text(text, CaseFilter(exclude_account_ids=list(exclude_account_ids)))
        return self.find(query, k=k, min_similarity=min_similarity).neighbours

    def find(
        self, query: CaseQuery, *, k: int, mode: RetrievalMode | None = None, min_similarity: float | None = None
    ) -> SimilarCases:
        """The k nearest past cases above the similarity floor, each with why it matched, and how they ended."""
        self.check_embedder()
        mode = mode or self.mode
        floor = self.min_similarity if min_similarity is None else min_similarity
        started = time.perf_counter()
        query_vector = self.embed([query.embedding_text()])[0]
        embedded = time.perf_counter()
        neighbours = self._neighbours(query, query_vector, k=k, mode=mode, floor=floor) if k > 0 else []
        return SimilarCases(
            query=query,
            neighbours=neighbours,
            summary=summarize(neighbours),
            mode=mode,
            embed_ms=(embedded - started) * 1000,
            search_ms=(time.perf_counter() - embedded) * 1000,
        )

    def _neighbours(
        self, query: CaseQuery, query_vector: np.ndarray, *, k: int, mode: RetrievalMode, floor: float
    ) -> list[SimilarCase]:
        table = self.lexical_table()
        if not len(table):
            return []
        allowed = table.allowed(query.filters)
        vector_hits = (
            self._vector_hits(query, query_vector, table, allowed) if mode is not RetrievalMode.lexical else {}
        )
        lexical_hits: dict[str, float] = {}
        bm25 = np.zeros(0)
        if mode is not RetrievalMode.vector:
            bm25 = table.lexical_scores(query.lexical_tokens(), allowed)
            top = table.top_rows(bm25, self.candidates)
            lexical_hits = {table.row(p).case_id: score for p, score in top}
        # cosine for candidates only the lexical side returned: the fusion reads it, and one floor applies to all;
        # a candidate Chroma no longer holds (another writer deleted it) gets none and is left out
        similarity = vector_hits | self._similarities(query_vector, [i for i in lexical_hits if i not in vector_hits])
        ranking = self._rank(mode, vector_hits, lexical_hits, similarity, bm25, table)
        vector_rank = {case_id: r for r, case_id in enumerate(vector_hits, start=1)}
        lexical_rank = {case_id: r for r, case_id in enumerate(lexical_hits, start=1)}
        query_terms = tokenize(query.text) + tokenize(query.context)
        neighbours = []
        for case_id, score in ranking:
            position = table.position_of(case_id)
            if case_id not in similarity or similarity[case_id] < floor or position is None:
                continue
            row = table.row(position)
            neighbours.append(
                SimilarCase(
                    case=past_case(case_id, row.metadata, row.document),
                    similarity=round(similarity[case_id], 4),
                    provenance=row.metadata.get("provenance", Provenance.imported.value),
                    score=round(score, 6),
                    vector_rank=vector_rank.get(case_id),
                    lexical_rank=lexical_rank.get(case_id),
                    matched_signals=sorted(set(query.signals) & set(row.metadata.get("signals", "").split())),
                    matched_terms=table.shared_terms(query_terms, position),
                )
            )
            if len(neighbours) == k:
                break
        return neighbours

    def _vector_hits(
        self, query: CaseQuery, query_vector: np.ndarray, table: LexicalIndex, allowed: np.ndarray
    ) -> dict[str, float]:
        """The nearest allowed ids (in order) with their cosine similarity.

        Chroma evaluates a `where` filter by scanning metadata (about a second at 100,000 cases), so the
        filter is applied here instead: fetch enough unfiltered neighbours that, after dropping the
        disallowed ones, `candidates` remain. Only when that would take too many does Chroma filter.
        """
        matching = int(allowed.sum())
        wanted = min(self.candidates, matching)
        if wanted == 0:
            return {}
        fetch = min(len(table), int(self.candidates * len(table) / matching) + int(matching < len(table)) * 20)
        if fetch <= MAX_UNFILTERED_FETCH:
            hits = self._nearest(query_vector, fetch, where=None)
            kept = {i: s for i, s in hits.items() if (p := table.position_of(i)) is not None and bool(allowed[p])}
            if len(kept) >= wanted or fetch == len(table):
                return dict(list(kept.items())[:wanted])
        hits = self._nearest(query_vector, wanted, where=query.filters.where())
        # ids the copy lacks (another writer's, since its build) wait for its rebuild
        return {i: s for i, s in hits.items() if table.position_of(i) is not None}

    def _nearest(self, query_vector: np.ndarray, n: int, *, where: dict[str, Any] | None) -> dict[str, float]:
        result = self._collection.query(
            query_embeddings=[query_vector], n_results=n, where=where, include=["distances"]
        )
        return {i: 1.0 - float(d) for i, d in zip(result["ids"][0], result["distances"][0], strict=True)}

    def _rank(
        self,
        mode: RetrievalMode,
        vector_hits: dict[str, float],
        lexical_hits: dict[str, float],
        similarity: dict[str, float],
        bm25: np.ndarray,
        table: LexicalIndex,
    ) -> list[tuple[str, float]]:
        """(id, score) best first: the fused score of both retrievers' candidates (`fusion`, weighted by
        `vector_share`), or one retriever's own score (cosine, BM25)."""
        if mode is not RetrievalMode.hybrid:
            return list((vector_hits if mode is RetrievalMode.vector else lexical_hits).items())
        if self.fusion is Fusion.rrf:
            weights = (2 * self.vector_share, 2 * (1 - self.vector_share))  # 0.5: plain RRF
            return reciprocal_rank_fusion([list(vector_hits), list(lexical_hits)], k=self.rrf_k, weights=weights)
        # every candidate's BM25, also of those only the vector side returned (0 when it shares no term)
        positions = {case_id: table.position_of(case_id) for case_id in similarity}
        lexical = {case_id: float(bm25[p]) for case_id, p in positions.items() if p is not None}
        return score_fusion(similarity, lexical, vector_share=self.vector_share)

    def _similarities(self, query_vector: np.ndarray, case_ids: list[str]) -> dict[str, float]:
        """Cosine similarity for candidates only the lexical side returned, so one floor applies to all."""
        if not case_ids:
            return {}
        found = self._collection.get(ids=case_ids, include=["embeddings"])
        vectors = np.asarray(found["embeddings"], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(query_vector)
        cosines = vectors @ query_vector / np.where(norms == 0, 1.0, norms)
        return dict(zip(found["ids"], cosines.tolist(), strict=True))
