"""Loading a path: bundle files and folders, or the output of `fraudagent sim`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from fraudagent.core.bundle import json_path, read_bundles
from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import Account, Event, PastCase, Score
from fraudagent.tools import history as store
from fraudagent.tools.bundles import LoadCounts, PastCaseSink, Scorer, load_bundle
from fraudagent.tools.history import History

Progress = Callable[[str, int, int], None]
M = TypeVar("M", bound=BaseModel)

_CHUNK = 5000


def _read_records(path: Path, model: type[M], problems: list[Problem]) -> list[M]:
    records: list[M] = []
    if not path.exists():
        return records
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
                for e in error.errors(include_url=False, include_input=False):
                    problems.append(Problem(json_path(tuple(e["loc"]), source), e["msg"]))
    return records


def _chunks(items: list[Any]) -> Iterator[tuple[int, list[Any]]]:
    for start in range(0, len(items), _CHUNK):
        yield start + len(items[start : start + _CHUNK]), items[start : start + _CHUNK]


def load_store(
    history: History,
    folder: Path,
    *,
    past_case_store: PastCaseSink | None,
    scorer: Scorer | None,
    on_progress: Progress | None = None,
) -> LoadCounts:
    """The simulated store's record files (store/*.jsonl): validated whole, then written in chunks."""
    problems: list[Problem] = []
    accounts = _read_records(folder / "accounts.jsonl", Account, problems)
    events = _read_records(folder / "events.jsonl", Event, problems)
    scores = _read_records(folder / "scores.jsonl", Score, problems)
    past = _read_records(folder / "past_cases.jsonl", PastCase, problems)
    known = {a.account_id for a in accounts}
    orphans = [e for e in events if e.account_id not in known]
    problems += [Problem(f"{folder / 'events.jsonl'}", f"event {e.event_id} names unknown account {e.account_id}") for e in orphans[:20]]
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in {folder}; nothing was loaded", problems)
    progress = on_progress or (lambda *_: None)
    counts = LoadCounts(accounts=store.put_accounts(history, accounts))
    progress("accounts", len(accounts), len(accounts))
    if not (folder / "scores.jsonl").exists() and scorer is not None:
        scores = scorer(events, {a.account_id: a for a in accounts})
        counts.scored_on_load = len(scores)
    by_event = {s.event_id: s for s in scores}
    for done, part in _chunks(events):
        counts.events += store.put_events(history, part, by_event)
        progress("events", done, len(events))
    if past_case_store is not None:
        for done, part in _chunks(past):
            past_case_store.upsert(part)
            progress("past cases", done, len(past))
        counts.past_cases = len(past)
    return counts


def load_path(
    history: History, path: Path, *, past_case_store: PastCaseSink | None, scorer: Scorer | None, on_progress: Progress | None = None
) -> LoadCounts:
    """A `fraudagent sim` folder (store/ + alerts/), or bundles: validate everything first, then write."""
    counts = LoadCounts()
    is_sim_output = (path / "store").is_dir()
    bundle_root = path / "alerts" if is_sim_output else path
    bundles = read_bundles(bundle_root)  # refuses all of them if any is malformed
    if is_sim_output:
        counts.add(load_store(history, path / "store", past_case_store=past_case_store, scorer=scorer, on_progress=on_progress))
    for n, bundle in enumerate(bundles, start=1):
        counts.add(load_bundle(history, bundle, past_case_store=past_case_store, scorer=scorer))
        if on_progress:
            on_progress("case bundles", n, len(bundles))
    return counts
