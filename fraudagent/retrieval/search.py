"""Similar-case search: the query, reciprocal rank fusion, and what the neighbours' outcomes were."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fraudagent.core.models import Disposition, PastCase
from fraudagent.retrieval.filters import CaseFilter
from fraudagent.retrieval.lexical import tokenize
from fraudagent.retrieval.signals import BY_NAME, signal_phrases, signal_tokens, signals_from_text

THIN_SIGNALS = 3  # with fewer key signals than this, a query's embedding also reads its activity digest


class RetrievalMode(StrEnum):
    hybrid = "hybrid"
    vector = "vector"
    lexical = "lexical"


class Fusion(StrEnum):
    """How hybrid search merges its two retrievers."""

    scores = "scores"  # a weighted sum of cosine similarity and BM25 scaled by the best BM25 of the candidates
    rrf = "rrf"  # reciprocal rank fusion: ranks only


class CaseQuery(BaseModel):
    """What to look for: free text, key signals (fraudagent.retrieval.signals), and filters."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    text: str = Field(default="", max_length=4000, description="free text: a digest of the case, or an analyst's words")
    signals: list[str] = Field(default_factory=list, description="key signal names, e.g. credential_change, gift_cards")
    context: str = Field(
        default="", max_length=4000, description="a code-written activity digest: searched by BM25, not embedded"
    )
    filters: CaseFilter = Field(default_factory=CaseFilter)

    @field_validator("signals")
    @classmethod
    def _known_signals(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(BY_NAME))
        if unknown:
            raise ValueError(f"unknown signals {unknown}; known: {sorted(BY_NAME)}")
        return sorted(set(names))

    @model_validator(mode="after")
    def _says_something(self) -> CaseQuery:
        if not self.text.strip() and not self.signals and not self.context.strip():
            raise ValueError("a query needs text or signals")
        return self

    @classmethod
    def from_text(cls, text: str, filters: CaseFilter | None = None) -> CaseQuery:
        """A query from words alone (an analyst's question, a narrative): its signals are read from the text."""
        return cls(text=text, signals=sorted(signals_from_text(text)), filters=filters or CaseFilter())

    def embedding_text(self) -> str:
        """Phrased like a stored document's vector text (key signals, then words), so the vectors compare like
        with like. The activity digest stays out: counts of event types embedded next to the signals pulled
        stolen-card queries towards gift-card write-ups (measured, benchmarks/bench_retrieval.py), unless the
        signals are too few to say much."""
        head = f"key signals: {signal_phrases(self.signals)}." if self.signals else ""
        context = self.context.strip() if len(self.signals) < THIN_SIGNALS else ""  # thin signals: words help
        return "\n".join(part for part in (head, self.text.strip(), context) if part)

    def lexical_tokens(self) -> list[str]:
        return tokenize(self.text) + tokenize(self.context) + signal_tokens(self.signals)


@dataclass(frozen=True)
class SimilarCase:
    """One neighbour: the past case (its narrative is untrusted text) and why it matched."""

    case: PastCase
    similarity: float  # cosine similarity of the embeddings, 1.0 = same direction
    provenance: str = "imported"
    score: float = 0.0  # the ranking score: the fused score (retrieval_fusion), cosine or BM25 by mode
    vector_rank: int | None = None  # 1-based rank in each retriever's list, None when it did not return it
    lexical_rank: int | None = None
    matched_signals: list[str] = field(default_factory=list)
    matched_terms: list[str] = field(default_factory=list)

    @property
    def evidence_id(self) -> str:
        return f"case:{self.case.case_id}"


class OutcomeSummary(BaseModel):
    """How the neighbours ended, counted, with a sentence an analyst can read."""

    model_config = ConfigDict(frozen=True)
    neighbours: int
    typologies: dict[str, int]
    dispositions: dict[str, int]
    actions: dict[str, int]
    outcomes: dict[str, int] = Field(description="'<typology>/<disposition>' pairs")
    headline: str


@dataclass(frozen=True)
class SimilarCases:
    query: CaseQuery
    neighbours: list[SimilarCase]
    summary: OutcomeSummary
    mode: RetrievalMode
    embed_ms: float  # embedding the query
    search_ms: float  # everything else: both retrievers, fusion, filters, explanations


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], *, k: int, weights: Sequence[float] | None = None
) -> list[tuple[str, float]]:
    """Cormack et al. (2009), optionally weighted: each list gives weight/(k + rank); ids ordered by the sum,
    ties by id."""
    fused: dict[str, float] = defaultdict(float)
    for n, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[n]
        for rank, item in enumerate(ranking, start=1):
            fused[item] += weight / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def score_fusion(
    cosines: Mapping[str, float], bm25: Mapping[str, float], *, vector_share: float
) -> list[tuple[str, float]]:
    """A convex combination of the two retrievers' own scores over their candidates: `vector_share` times
    the cosine similarity plus the rest times the BM25 score divided by the best BM25 among the candidates
    (so both lie in about [0, 1]). Unlike rank fusion it keeps how much better one candidate is than the
    next: a past case only one retriever ranks high, far below the other's best, no longer ties with that
    best. Ids ordered by the score, ties by id; a candidate without a BM25 score counts 0 there."""
    top = max(bm25.values(), default=0.0) or 1.0
    fused = {
        case_id: vector_share * cosine + (1.0 - vector_share) * bm25.get(case_id, 0.0) / top
        for case_id, cosine in cosines.items()
    }
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


_DISPOSITION_WORDS = {
    Disposition.confirmed_fraud: "confirmed fraud",
    Disposition.false_positive: "false positive",
    Disposition.inconclusive: "inconclusive",
}


def summarize(neighbours: Sequence[SimilarCase]) -> OutcomeSummary:
    cases = [n.case for n in neighbours]
    typologies = Counter(c.typology.value for c in cases)
    dispositions = Counter(c.disposition.value for c in cases)
    actions = Counter(a.value for c in cases for a in c.actions)
    outcomes = Counter(f"{c.typology.value}/{c.disposition.value}" for c in cases)
    return OutcomeSummary(
        neighbours=len(cases),
        typologies=dict(typologies.most_common()),
        dispositions=dict(dispositions.most_common()),
        actions=dict(actions.most_common()),
        outcomes=dict(outcomes.most_common()),
        headline=_headline(cases, actions),
    )


def _headline(cases: Sequence[PastCase], actions: Counter[str]) -> str:
    if not cases:
        return "No past case was similar enough to compare with."
    pairs = Counter((c.typology, c.disposition) for c in cases)
    (typology, disposition), count = min(pairs.items(), key=lambda kv: (-kv[1], kv[0][0].value, kv[0][1].value))
    outcome = f"{typology.value.replace('_', ' ')} ({_DISPOSITION_WORDS[disposition]})"
    if len(cases) == 1:
        text = f"The one similar case was {outcome}"
    else:
        text = f"{count} of the {len(cases)} nearest cases {'was' if count == 1 else 'were'} {outcome}"
    if actions:
        action, times = min(actions.items(), key=lambda kv: (-kv[1], kv[0]))
        text += f"; {times} ended with {action}"
    return text + "."
