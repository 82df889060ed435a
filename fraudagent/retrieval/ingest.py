"""What `fraudagent cases index` reads: the past cases of case bundles or of a `fraudagent sim` folder.

Closed cases in DynamoDB are not indexed: a stored case has a status but no
disposition, typology, actions or analyst narrative yet (decisions are issue 6),
and the only typology on record is the agent's own draft report. Indexing
drafts as outcomes would let the agent cite its own guesses as precedent.
`Provenance.analyst_decision` is the label those cases will carry once decisions are stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from fraudagent.core.bundle import json_path, read_bundles
from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import Account, PastCase
from fraudagent.retrieval.documents import IndexedCase, Provenance

M = TypeVar("M", bound=BaseModel)


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
    past_cases = _read_jsonl(store / "past_cases.jsonl", PastCase, problems)
    countries = {a.account_id: a.country for a in _read_jsonl(store / "accounts.jsonl", Account, problems)}
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in {store}; nothing was indexed", problems)
    return [
        IndexedCase(case=p, provenance=Provenance.simulated, region=countries.get(p.account_id, "")) for p in past_cases
    ]


def _read_jsonl(path: Path, model: type[M], problems: list[Problem]) -> list[M]:
    if not path.exists():
        problems.append(Problem(str(path), "missing"))
        return []
    records: list[M] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path}:{lineno}:$"
            try:
                records.append(model.model_validate(json.loads(line)))
            except json.JSONDecodeError as error:
                problems.append(Problem(source, f"not valid JSON: {error.msg}"))
            except ValidationError as error:
                problems += [
                    Problem(json_path(tuple(e["loc"]), source), e["msg"]) for e in error.errors(include_url=False)
                ]
    return records
