"""The lexical half of hybrid search: BM25 over an in-memory copy of the collection.

Chroma is the only store of record. What BM25 searches is a `LexicalIndex`: the `CaseTable` built from the last
full read of the collection, with a `DeltaTable` over it holding the cases this process wrote (added, replaced,
deleted) after that read began. A write replaces the index at once with one whose delta holds it, so a case this
process upserts is found by the very next search, and a replaced or deleted one is not found in its old form.

Scores are BM25 as Lucene (and bm25s, by default) computes it: idf = ln(1 + (N - df + 0.5) / (df + 0.5)), and
per term idf * tf / (tf + k1 * (1 - b + b * length / average length)). They are computed at query time from term
postings with the statistics of the whole index (N, document frequencies and average length of the main table
less the rows the delta replaced or deleted, plus the delta's), so a search with a delta ranks exactly as a full
rebuild would.

The full rebuild (one read of the whole collection plus tokenizing and indexing it: 12 to 23 s for 100,000 cases on
2 shared cores in `benchmarks/bench_lexical.py`, 48 s on busier ones, most of it the read from Chroma) runs on the
request path only for the first build; after that it runs in a background thread and the new index is swapped in
when ready (`past_cases.PastCaseStore`). A write is searchable in the time of the upsert itself (18 to 36 ms p50 at
100,000 cases, against 11 to 23 s before, when the next search rebuilt the copy). Memory: every document once more
(about 190 MB for 100,000 cases) and the postings (5.2 million, 12 bytes each; the index about 120 MB in all).
"""

from __future__ import annotations

import logging
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from fraudagent.retrieval.filters import CaseFilter, FilterColumns
from fraudagent.retrieval.signals import signal_tokens

# bm25s sets its own logger to DEBUG on import; its messages are noise at our INFO.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN_PLUS)


def tokenize(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


@dataclass(frozen=True, slots=True)
class StoredCase:
    case_id: str
    document: str
    metadata: dict[str, Any]

    def tokens(self) -> list[str]:
        return tokenize(self.document) + signal_tokens(self.metadata.get("signals", "").split())


def idf(documents: int, doc_freq: int) -> float:
    """Lucene's BM25 idf (bm25s's default `lucene` method)."""
    return math.log(1 + (documents - doc_freq + 0.5) / (doc_freq + 0.5))


class Postings:
    """Term-major postings of a corpus: for each term the documents that hold it and how often, with each
    document's length (in tokens) beside it, so BM25 needs no gather at query time."""

    def __init__(self, corpus: Iterable[Sequence[str]]) -> None:
        """`corpus` is read once, one document at a time (a generator keeps only one token list in memory)."""
        self.vocab: dict[str, int] = {}
        terms, docs, counts = array("i"), array("i"), array("i")  # C ints: a tenth of the memory of lists
        lengths = array("f")
        for doc, tokens in enumerate(corpus):
            lengths.append(len(tokens))
            for term, tf in Counter(tokens).items():
                terms.append(self.vocab.setdefault(term, len(self.vocab)))
                docs.append(doc)
                counts.append(tf)
        term_ids = np.frombuffer(terms, dtype=np.int32) if terms else np.zeros(0, dtype=np.int32)
        order = np.argsort(term_ids, kind="stable")
        self.doc_len = np.frombuffer(lengths, dtype=np.float32) if lengths else np.zeros(0, dtype=np.float32)
        self.docs = (np.frombuffer(docs, dtype=np.int32) if docs else np.zeros(0, dtype=np.int32))[order]
        self.tf = (np.frombuffer(counts, dtype=np.int32) if counts else np.zeros(0, dtype=np.int32))[order].astype(
            np.float32
        )
        self.len_at = self.doc_len[self.docs] if len(self.docs) else np.zeros(0, dtype=np.float32)
        self.doc_freq = np.bincount(term_ids, minlength=len(self.vocab))
        self.indptr = np.concatenate([[0], np.cumsum(self.doc_freq)])
        self.total_len = float(self.doc_len.sum(dtype=np.float64))

    def __len__(self) -> int:
        return len(self.doc_len)

    def df(self, term: str) -> int:
        found = self.vocab.get(term)
        return 0 if found is None else int(self.doc_freq[found])

    def scores(self, weighted_terms: Iterable[tuple[str, float]], *, avg_len: float, k1: float, b: float) -> np.ndarray:
        """BM25 of every document for these (term, idf) pairs, with this average document length."""
        if not len(self) or avg_len <= 0:
            return np.zeros(len(self))
        fixed, per_len = np.float32(k1 * (1 - b)), np.float32(k1 * b / avg_len)
        docs: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for term, term_idf in weighted_terms:
            found = self.vocab.get(term)
            if found is None:
                continue
            start, end = self.indptr[found], self.indptr[found + 1]
            tf = self.tf[start:end]
            docs.append(self.docs[start:end])
            weights.append(np.float32(term_idf) * tf / (tf + fixed + per_len * self.len_at[start:end]))
        if not docs:
            return np.zeros(len(self))
        return np.bincount(np.concatenate(docs), weights=np.concatenate(weights), minlength=len(self))


class CaseTable:
    """Every stored case in memory as of one full read, with its filter columns and its postings."""

    def __init__(self, rows: list[StoredCase], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.rows = rows
        self.k1, self.b = k1, b  # b: how much a long document's term counts are discounted
        self.position = {row.case_id: i for i, row in enumerate(rows)}
        self.columns = FilterColumns([row.metadata for row in rows])
        self.postings = Postings(row.tokens() for row in rows)

    def __len__(self) -> int:
        return len(self.rows)

    def lexical_scores(self, tokens: Iterable[str], allowed: np.ndarray) -> np.ndarray:
        """The BM25 score of every row for these tokens, 0 where not allowed or sharing no term."""
        return LexicalIndex(self).lexical_scores(tokens, allowed)

    @staticmethod
    def top_rows(scores: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Up to n (position, BM25 score) by `lexical_scores`, best first; rows sharing no term are left out."""
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > n:
            candidates = candidates[np.argpartition(-scores[candidates], n - 1)[:n]]
        ranked = sorted(candidates.tolist(), key=lambda p: (-scores[p], p))
        return [(p, float(scores[p])) for p in ranked]


class DeltaTable:
    """The cases this process wrote after the main table's read began: the latest version of each one added or
    replaced, and the ids it deleted. Small by design: the store rebuilds the main table in the background once it
    holds more than `retrieval_lexical_max_delta` cases."""

    def __init__(self, rows: Sequence[StoredCase] = (), deleted: Iterable[str] = ()) -> None:
        self.rows = list(rows)
        self.position = {row.case_id: i for i, row in enumerate(self.rows)}
        self.deleted = frozenset(deleted) - self.position.keys()
        self.columns = FilterColumns([row.metadata for row in self.rows])
        self.postings = Postings(row.tokens() for row in self.rows)

    def __len__(self) -> int:
        return len(self.rows)


class LexicalIndex:
    """What BM25 searches: the main table with the delta laid over it. Positions run over the main table's rows,
    then the delta's; a main row the delta replaces or deletes is never allowed and leaves the statistics.
    Immutable: a write makes a new one, so a search reads one consistent index however writes and rebuilds
    interleave."""

    def __init__(self, main: CaseTable, delta: DeltaTable | None = None) -> None:
        self.main = main
        self.delta = delta if delta is not None else DeltaTable()
        shadowed = [main.position[i] for i in (*self.delta.position, *self.delta.deleted) if i in main.position]
        self.live = np.ones(len(main), dtype=bool)
        self.live[shadowed] = False
        self._size = len(main) - len(shadowed) + len(self.delta)
        # the statistics of what the index holds now: the main table's, less the shadowed rows, plus the delta's
        self._shadowed_df: Counter[str] = Counter(t for p in shadowed for t in set(main.rows[p].tokens()))
        shadowed_len = float(main.postings.doc_len[shadowed].sum(dtype=np.float64)) if shadowed else 0.0
        total = main.postings.total_len - shadowed_len + self.delta.postings.total_len
        self.avg_len = total / self._size if self._size else 0.0

    def __len__(self) -> int:
        """Cases the index holds now: the main table's, less those replaced or deleted, plus the delta's."""
        return self._size

    def doc_freq(self, term: str) -> int:
        return self.main.postings.df(term) - self._shadowed_df[term] + self.delta.postings.df(term)

    def allowed(self, case_filter: CaseFilter) -> np.ndarray:
        """The filter as a mask over every position (main rows, then delta rows)."""
        main = case_filter.allowed(self.main.columns) & self.live
        return np.concatenate([main, case_filter.allowed(self.delta.columns)])

    def lexical_scores(self, tokens: Iterable[str], allowed: np.ndarray) -> np.ndarray:
        """The BM25 score at every position, 0 where not allowed or sharing no term."""
        weighted = []
        for term in dict.fromkeys(tokens):
            df = self.doc_freq(term)
            if df > 0:
                weighted.append((term, idf(self._size, df)))
        options = {"avg_len": self.avg_len, "k1": self.main.k1, "b": self.main.b}
        scores = np.concatenate(
            [self.main.postings.scores(weighted, **options), self.delta.postings.scores(weighted, **options)]
        )
        return np.where(allowed, scores, 0.0)

    top_rows = staticmethod(CaseTable.top_rows)

    def position_of(self, case_id: str) -> int | None:
        """Where a case is; None when the index does not hold it (deleted, or written by another process after
        the main table was read)."""
        if case_id in self.delta.position:
            return len(self.main) + self.delta.position[case_id]
        position = self.main.position.get(case_id)
        return position if position is not None and self.live[position] else None

    def row(self, position: int) -> StoredCase:
        split = len(self.main)
        return self.main.rows[position] if position < split else self.delta.rows[position - split]

    def shared_terms(self, query_tokens: Iterable[str], position: int, limit: int = 6) -> list[str]:
        """The query's words this row also has, rarest first: why it matched lexically."""
        row_tokens = set(tokenize(self.row(position).document))
        shared = {t for t in query_tokens if t in row_tokens}
        rarity = {t: self.doc_freq(t) for t in shared}
        return sorted(shared, key=lambda t: (rarity[t], t))[:limit]
