"""The past-case store: investigated cases in Chroma, found again by hybrid search.

On-disk `PersistentClient` by default, a Chroma server (`HttpClient`) when
`chroma_host` is set: same code. Embeddings come from the packaged
all-MiniLM-L6-v2, passed explicitly (Chroma's default would download a model);
the store embeds documents and queries itself so that only changed cases are
embedded and query embedding time is measured apart from search.
Search fuses the vector neighbours with BM25 (`lexical.py`): a weighted sum of cosine and scaled BM25 by
default, reciprocal rank fusion on request (`retrieval_fusion`).
Narratives are untrusted text: stored and returned as evidence, never as instructions.
"""

from __future__ import annotations

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
from fraudagent.retrieval.lexical import CaseTable, StoredCase, tokenize
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
        self.batch_size = batch_size
        self.embedded = 0  # texts embedded by this store since it was made, and the time it took
        self.embedding_s = 0.0
        self._table: CaseTable | None = None
        self._table_built_at = 0.0
        self._table_lock = threading.Lock()

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
        with self._table_lock:
            self._table = None
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
        written = 0
        for start in range(0, len(cases), size):
            written += self._upsert_batch([_indexed(c, provenance, regions) for c in cases[start : start + size]])
            if on_progress:
                on_progress(min(start + size, len(cases)), len(cases))
        if written:
            with self._table_lock:
                self._table = None  # the lexical copy no longer matches the collection
        return written

    def _upsert_batch(self, batch: list[IndexedCase]) -> int:
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
        return len(reembed) + len(rewrite)

    def get(self, case_ids: Sequence[str]) -> list[PastCase]:
        if not case_ids:
            return []
        found = self._collection.get(ids=list(case_ids), include=["metadatas", "documents"])
        by_id = {
            i: past_case(i, m, d) for i, m, d in zip(found["ids"], found["metadatas"], found["documents"], strict=True)
        }
        return [by_id[i] for i in case_ids if i in by_id]

    # --- the lexical copy -----------------------------------------------------

    def lexical_table(self) -> CaseTable:
        """The in-memory copy BM25 searches, rebuilt when it may no longer match the collection."""
        with self._table_lock:
            table = self._table
            expired = time.monotonic() - self._table_built_at > self.lexical_max_age_s
            if table is None or expired or len(table) != self.count():
                table = self._table = CaseTable(self._read_all(), k1=self.bm25_k1, b=self.bm25_b)
                self._table_built_at = time.monotonic()
            return table

    def _read_all(self) -> list[StoredCase]:
        rows: list[StoredCase] = []
        while True:
            page = self._collection.get(include=["documents", "metadatas"], limit=READ_PAGE, offset=len(rows))
            rows += [
                StoredCase(i, d, m) for i, d, m in zip(page["ids"], page["documents"], page["metadatas"], strict=True)
            ]
            if len(page["ids"]) < READ_PAGE:
                return rows

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
        allowed = query.filters.allowed(table.columns)
        vector_hits = (
            self._vector_hits(query, query_vector, table, allowed) if mode is not RetrievalMode.lexical else {}
        )
        lexical_hits: dict[str, float] = {}
        bm25 = np.zeros(0)
        if mode is not RetrievalMode.vector:
            bm25 = table.lexical_scores(query.lexical_tokens(), allowed)
            top = table.top_rows(bm25, self.candidates)
            lexical_hits = {table.rows[p].case_id: score for p, score in top}
        # cosine for candidates only the lexical side returned: the fusion reads it, and one floor applies to all
        similarity = vector_hits | self._similarities(query_vector, [i for i in lexical_hits if i not in vector_hits])
        ranking = self._rank(mode, vector_hits, lexical_hits, similarity, bm25, table)
        vector_rank = {case_id: r for r, case_id in enumerate(vector_hits, start=1)}
        lexical_rank = {case_id: r for r, case_id in enumerate(lexical_hits, start=1)}
        query_terms = tokenize(query.text) + tokenize(query.context)
        neighbours = []
        for case_id, score in ranking:
            if similarity.get(case_id, -1.0) < floor:
                continue
            position = table.position[case_id]
            row = table.rows[position]
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
        self, query: CaseQuery, query_vector: np.ndarray, table: CaseTable, allowed: np.ndarray
    ) -> dict[str, float]:
        """The nearest allowed ids (in order) with their cosine similarity.

        Chroma evaluates a `where` filter by scanning metadata (about a second at 100,000 cases), so the
        filter is applied here instead: fetch enough unfiltered neighbours that, after dropping the
        disallowed ones, `candidates` remain. Only when that would take too many does Chroma filter.
        """
        wanted = min(self.candidates, int(allowed.sum()))
        if wanted == 0:
            return {}
        fetch = min(len(table), int(self.candidates * len(table) / allowed.sum()) + int((~allowed).sum() > 0) * 20)
        if fetch <= MAX_UNFILTERED_FETCH:
            hits = self._nearest(query_vector, fetch, where=None)
            kept = {i: s for i, s in hits.items() if i in table.position and allowed[table.position[i]]}
            if len(kept) >= wanted or fetch == len(table):
                return dict(list(kept.items())[:wanted])
        hits = self._nearest(query_vector, wanted, where=query.filters.where())
        return {i: s for i, s in hits.items() if i in table.position}  # ids the copy lacks wait for its rebuild

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
        table: CaseTable,
    ) -> list[tuple[str, float]]:
        """(id, score) best first: the fused score of both retrievers' candidates (`fusion`, weighted by
        `vector_share`), or one retriever's own score (cosine, BM25)."""
        if mode is not RetrievalMode.hybrid:
            return list((vector_hits if mode is RetrievalMode.vector else lexical_hits).items())
        if self.fusion is Fusion.rrf:
            weights = (2 * self.vector_share, 2 * (1 - self.vector_share))  # 0.5: plain RRF
            return reciprocal_rank_fusion([list(vector_hits), list(lexical_hits)], k=self.rrf_k, weights=weights)
        # every candidate's BM25, also of those only the vector side returned (0 when it shares no term)
        lexical = {case_id: float(bm25[table.position[case_id]]) for case_id in similarity}
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
