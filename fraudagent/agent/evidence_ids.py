"""The evidence-id grammar, written once: `<kind>:<id>` with kind one of txn, score, acct, dev, case, fact.

The pipeline, the chat and the eval scorers resolve ids through `resolve`; the analyst console
(`api/console/static/case.js`) keeps a copy of `ID_TOKEN` that a test compares with this one.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Literal, get_args

ItemKind = Literal["txn", "score", "acct", "dev", "case", "fact"]

EVIDENCE_KINDS = tuple(f"{kind}:" for kind in get_args(ItemKind))  # the prefixes of evidence ids
BARE_ID_KINDS = tuple(
    k for k in EVIDENCE_KINDS if k != "score:"
)  # what a bare id names (E-1: the event, not its score)
ID_TOKEN = re.compile(r"\b(?:txn|score|acct|dev|case|fact):[A-Za-z0-9_.\-]*[A-Za-z0-9_]")  # an id written in text
BARE_ID = re.compile(r"[A-Z]{1,4}-[A-Za-z0-9_.\-]+")  # what a bare id (E-1, A-4471, C-200001) looks like


def resolve(ref: str, universe: Collection[str]) -> str | None:
    """An id as a model wrote it -> the id in `universe`, or None. Accepts a bare id (`E-1`) and an id under a kind
    the grammar does not use (`event:E-1`, `transaction:E-1`), when exactly one id of `universe` has it; an id under
    one of the grammar's kinds must be that kind (`acct:E-1` is not the event E-1)."""
    ref = ref.strip().strip("[]")
    if ref in universe:
        return ref
    kind, colon, rest = ref.partition(":")
    if colon and kind + colon in EVIDENCE_KINDS:
        return None
    bare_id = rest.strip() if colon else ref
    matches = [kind + bare_id for kind in BARE_ID_KINDS if kind + bare_id in universe]
    return matches[0] if len(matches) == 1 else None


def bare(ref: str) -> str:
    """The id without its kind (`txn:E-1` -> `E-1`)."""
    for prefix in EVIDENCE_KINDS:
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def looks_like_an_id(text: str) -> bool:
    """Written as an evidence id (`txn:E-1`) or a bare one (`E-1`), whether or not it resolves."""
    return bool(ID_TOKEN.fullmatch(text) or BARE_ID.fullmatch(text))
