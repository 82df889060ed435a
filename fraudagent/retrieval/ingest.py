"""What `fraudagent cases index` reads: the past cases of case bundles or of a `fraudagent sim` folder.

Closed cases in DynamoDB are not indexed: a stored case has a status but no
disposition, typology, actions or analyst narrative yet (decisions are issue 6),
and the only typology on record is the agent's own draft report. Indexing
drafts as outcomes would let the agent cite its own guesses as precedent.
`Provenance.analyst_decision` is the label those cases will carry once decisions are stored.
"""

from __future__ import annotations

from pathlib import Path

from fraudagent.core.bundle import read_bundles, read_records
from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import Account, PastCase
from fraudagent.retrieval.documents import IndexedCase, Provenance


def read_cases(path: Path) -> list[IndexedCase]:
    """Every past case under path, validated; refuses all of them if anything is malformed."""
    if (path / "store").is_dir():
        return _simulated(path / "store")
    if not path.exists():
        raise InvalidInput(f"{path} does not exist", [Problem(str(path), "no such file or folder")])
    cases: dict[str, IndexedCase] = {}
    for bundle in read_bundles(path):
        for past in bundle.past_cases:  # two bundles may carry the same past case
            cases[past.case_id] = IndexedCase(case=past, provenance=Provenance.imported)
    return list(cases.values())


def _simulated(store: Path) -> list[IndexedCase]:
    """A simulated store's past cases; a case on an account of the store gets that account's country as region."""
    problems: list[Problem] = []
    past_cases = read_records(store / "past_cases.jsonl", PastCase, problems, required=True)
    countries = {
        a.account_id: a.country for a in read_records(store / "accounts.jsonl", Account, problems, required=True)
    }
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in {store}; nothing was indexed", problems)
    return [
        IndexedCase(case=p, provenance=Provenance.simulated, region=countries.get(p.account_id, "")) for p in past_cases
    ]
