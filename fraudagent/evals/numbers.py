"""Numbers, amounts, dates, times and ids in report text, checked against the evidence.

The extraction and matching are the pipeline's verifier (agent/verifier.py:
`Vocabulary`, `claim_problems`), so the eval measures exactly what the
verifier enforces. The vocabulary is what the evidence pack holds (what the
agent could see) plus the bundle's own events, scores and accounts (customer
text excluded). To count claims, a text is also checked against an empty
vocabulary: every date, time, id and number in it is then a problem.
"""

from __future__ import annotations

from collections.abc import Iterable

from fraudagent.agent.evidence import EvidencePack
from fraudagent.agent.verifier import Vocabulary, claim_problems, vocabulary
from fraudagent.core.models import CaseBundle

_EMPTY = Vocabulary()
_UNTRUSTED = {"text", "display_name", "narrative", "note"}


def evidence_vocabulary(bundle: CaseBundle, pack: EvidencePack | None = None, lines: Iterable[str] = ()) -> Vocabulary:
    vocab = vocabulary(pack) if pack is not None else Vocabulary()
    vocab.add_value(bundle.case.model_dump(mode="json", exclude=_UNTRUSTED))
    for record in [*bundle.accounts, *bundle.events, *(bundle.scores or [])]:
        vocab.add_value(
            record.model_dump(mode="json", exclude_none=True, exclude=_UNTRUSTED & set(type(record).model_fields))
        )
    for line in lines:
        vocab.add_text(line)
    return vocab


def check_text(text: str, vocab: Vocabulary) -> tuple[int, list[str]]:
    """(how many dates/times/ids/numbers `text` states, the ones the evidence does not hold)."""
    return len(claim_problems(text, _EMPTY)), claim_problems(text, vocab)
