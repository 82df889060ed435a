"""How a past case is stored in Chroma: its document (digest + narrative) and its metadata.

The digest is written by code from structured fields and signals read from the
narrative; the narrative follows a separator, verbatim. The narrative is
untrusted text (an analyst quoting customers, or an import): it is stored with
its provenance and handed back as evidence, never as instructions.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fraudagent.core.models import Action, Disposition, Id, PastCase, Typology, utc_iso
from fraudagent.retrieval.signals import signal_phrases, signals_from_text

NARRATIVE_SEPARATOR = "\n---\n"  # the digest is code-written and never contains it
DOCUMENT_VERSION = 2  # part of the content hash: a new digest format re-embeds everything once

_MONEY = re.compile(r"(?:[$€£]\s?|\b(?:USD|EUR|GBP)\s)(\d+(?:\.\d+)?)|\b(\d+(?:\.\d+)?)\s?(?:USD|EUR|GBP)\b")
_CHANNELS = {
    "console": re.compile(r"console", re.IGNORECASE),
    "pc": re.compile(r"\bpc\b|laptop|desktop|windows", re.IGNORECASE),
    "mobile": re.compile(r"phone|android|iphone|tablet|mobile", re.IGNORECASE),
}
_AMOUNT_BANDS = ((Decimal(10), "under 10"), (Decimal(100), "10-100"), (Decimal(500), "100-500"))


class Provenance(StrEnum):
    simulated = "simulated"  # written by fraudagent.sim
    imported = "imported"  # from case bundles
    analyst_decision = "analyst_decision"  # a case an analyst closed in this system


class IndexedCase(BaseModel):
    """A past case plus what the store knows about it beyond the bundle format."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    case: PastCase
    provenance: Provenance = Provenance.imported
    region: str = Field(default="", max_length=32, description="the account's country or region; empty when unknown")
    linked_account_ids: list[Id] = Field(default_factory=list, description="accounts of the same ring")


def amount_band(narrative: str) -> str:
    """The band of the largest amount the narrative mentions, whatever the currency."""
    amounts = [Decimal(a or b) for a, b in _MONEY.findall(narrative)]
    if not amounts:
        return "unknown"
    top = max(amounts)
    return next((band for limit, band in _AMOUNT_BANDS if top < limit), "500+")


def channels(narrative: str) -> list[str]:
    return [name for name, pattern in _CHANNELS.items() if pattern.search(narrative)]


def document(indexed: IndexedCase) -> str:
    """What is embedded and lexically indexed: a compact digest written by code, then the narrative."""
    case = indexed.case
    actions = ", ".join(a.value for a in case.actions) or "none"
    signals = signal_phrases(signals_from_text(case.narrative)) or "none recognised"
    digest = (
        f"typology: {case.typology.value}; disposition: {case.disposition.value}; actions: {actions}.\n"
        f"channels: {', '.join(channels(case.narrative)) or 'unknown'}; amounts: {amount_band(case.narrative)}.\n"
        f"key signals: {signals}."
    )
    return digest + NARRATIVE_SEPARATOR + case.narrative


def vector_text(doc: str) -> str:
    """What the embedding model reads of a stored document: the key signals, then the narrative (the model cuts
    it at `embedding_max_tokens`). The outcome line (typology, disposition, actions) is left out: an open case's
    query cannot say it, and BM25 still reads the whole document."""
    digest, _, narrative = doc.partition(NARRATIVE_SEPARATOR)
    signals = next((line for line in digest.splitlines() if line.startswith("key signals:")), "")
    return "\n".join(part for part in (signals, narrative) if part)


def metadata(indexed: IndexedCase, doc: str) -> dict[str, Any]:
    case = indexed.case
    values: dict[str, Any] = {
        "account_id": case.account_id,
        "typology": case.typology.value,
        "disposition": case.disposition.value,
        "actions": ",".join(a.value for a in case.actions),
        "closed_at": utc_iso(case.closed_at),
        "closed_ts": int(case.closed_at.timestamp()),
        "region": indexed.region,
        "provenance": indexed.provenance.value,
        "signals": " ".join(sorted(signals_from_text(case.narrative))),
    }
    if indexed.linked_account_ids:  # Chroma refuses empty lists
        values["linked_account_ids"] = sorted(set(indexed.linked_account_ids))
    # Two fingerprints: a changed document must be embedded again, changed metadata only rewritten.
    values["document_hash"] = _sha256(f"{DOCUMENT_VERSION}\n{doc}")
    values["content_hash"] = _sha256(str(sorted(values.items())))
    return values


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def narrative_of(doc: str) -> str:
    return doc.split(NARRATIVE_SEPARATOR, 1)[1] if NARRATIVE_SEPARATOR in doc else doc


def past_case(case_id: str, values: dict[str, Any], doc: str) -> PastCase:
    return PastCase(
        case_id=case_id,
        account_id=values["account_id"],
        closed_at=datetime.fromisoformat(values["closed_at"]),
        typology=Typology(values["typology"]),
        disposition=Disposition(values["disposition"]),
        actions=[Action(a) for a in values["actions"].split(",") if a],
        narrative=narrative_of(doc),
    )
