"""The lexical half of hybrid search: BM25 (bm25s) over an in-memory copy of the collection.

Chroma is the only store of record. `CaseTable` is rebuilt from it (on first
use, after this process upserts, and when the collection changed or the copy
is older than `retrieval_lexical_max_age_s`), so the same code serves an
on-disk collection and a Chroma server shared with other writers. The cost is
one full read of the collection plus tokenizing and indexing it, measured by
`benchmarks/bench_retrieval.py` (48 s for 100,000 cases on 2 busy cores; paid
by the first search after a change), and memory for every document once more.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from fraudagent.retrieval.filters import FilterColumns
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


class CaseTable:
    """Every stored case in memory, with its filter columns and a BM25 index over its tokens."""

    def __init__(self, rows: list[StoredCase], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.rows = rows
        self.position = {row.case_id: i for i, row in enumerate(rows)}
        self.columns = FilterColumns([row.metadata for row in rows])
        corpus = [row.tokens() for row in rows]
        self.doc_freq: Counter[str] = Counter(t for tokens in corpus for t in set(tokens))
        self._bm25 = bm25s.BM25(k1=k1, b=b)  # b: how much a long document's term counts are discounted
        if rows:
            self._bm25.index(corpus, show_progress=False)

    def __len__(self) -> int:
        return len(self.rows)

    def lexical_scores(self, tokens: Iterable[str], allowed: np.ndarray) -> np.ndarray:
        """The BM25 score of every row for these tokens, 0 where not allowed or sharing no term."""
        known = [t for t in dict.fromkeys(tokens) if t in self.doc_freq]
        if not known or not self.rows:
            return np.zeros(len(self.rows))
        return np.where(allowed, self._bm25.get_scores(known), 0.0)

    @staticmethod
    def top_rows(scores: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Up to n (position, BM25 score) by `lexical_scores`, best first; rows sharing no term are left out."""
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > n:
            candidates = candidates[np.argpartition(-scores[candidates], n - 1)[:n]]
        ranked = sorted(candidates.tolist(), key=lambda p: (-scores[p], p))
        return [(p, float(scores[p])) for p in ranked]

    def shared_terms(self, query_tokens: Iterable[str], position: int, limit: int = 6) -> list[str]:
        """The query's words this row also has, rarest first: why it matched lexically."""
        row_tokens = set(tokenize(self.rows[position].document))
        shared = {t for t in query_tokens if t in row_tokens}
        return sorted(shared, key=lambda t: (self.doc_freq[t], t))[:limit]
