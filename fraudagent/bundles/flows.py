"""Loading a path: bundle files and folders, or the output of `fraudagent sim`.

Two steps, so that nothing is written unless everything is valid: `read_path`
validates the whole input (and returns every problem at once), `write_plan`
writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fraudagent import store
from fraudagent.bundles.service import LoadCounts, PastCaseSink, Scorer, load_bundle
from fraudagent.core.bundle import read_bundles, read_records
from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import Account, CaseBundle, Event, PastCase, Score
from fraudagent.store.tables import Tables

Progress = Callable[[str, int, int], None]

_CHUNK = 5000


@dataclass
class StoreRecords:
    """The record files of a simulated store (store/*.jsonl); scores is None when there is no scores file."""

    accounts: list[Account] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    scores: list[Score] | None = None
    past_cases: list[PastCase] = field(default_factory=list)


@dataclass
class LoadPlan:
    """A fully validated input, ready to write."""

    bundles: list[CaseBundle]
    store: StoreRecords | None = None


def read_store(folder: Path) -> StoreRecords:
    problems: list[Problem] = []
    records = StoreRecords(
        accounts=read_records(folder / "accounts.jsonl", Account, problems),
        events=read_records(folder / "events.jsonl", Event, problems),
        scores=read_records(folder / "scores.jsonl", Score, problems) if (folder / "scores.jsonl").exists() else None,
        past_cases=read_records(folder / "past_cases.jsonl", PastCase, problems),
    )
    known = {a.account_id for a in records.accounts}
    orphans = [e for e in records.events if e.account_id not in known]
    problems += [
        Problem(f"{folder / 'events.jsonl'}", f"event {e.event_id} names unknown account {e.account_id}")
        for e in orphans[:20]
    ]
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in {folder}; nothing was loaded", problems)
    return records


def read_path(path: Path) -> LoadPlan:
    """A `fraudagent sim` folder (store/ + alerts/) or bundles; refuses everything if anything is malformed."""
    if (path / "store").is_dir():
        return LoadPlan(bundles=read_bundles(path / "alerts"), store=read_store(path / "store"))
    return LoadPlan(bundles=read_bundles(path))


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterator[tuple[int, list[Any]]]:
    for start in range(0, len(items), size):
        yield start + len(items[start : start + size]), items[start : start + size]


def write_store(
    history: Tables,
    records: StoreRecords,
    *,
    past_case_store: PastCaseSink | None,
    scorer: Scorer | None,
    on_progress: Progress,
) -> LoadCounts:
    """Accounts, then events with their scores (scored here when none came), then past cases, in chunks."""
    counts = LoadCounts(accounts=store.events.put_accounts(history, records.accounts))
    on_progress("accounts", len(records.accounts), len(records.accounts))
    scores = records.scores
    if scores is None and scorer is not None:
        scores = scorer(records.events, {a.account_id: a for a in records.accounts})
        counts.scored_on_load = len(scores)
    by_event = {s.event_id: s for s in scores or []}
    on_progress("events", 0, len(records.events))
    for done, part in _chunks(records.events):
        counts.events += store.events.put_events(history, part, by_event)
        on_progress("events", done, len(records.events))
    if past_case_store is not None:
        on_progress("past cases", 0, len(records.past_cases))
        regions = {a.account_id: a.country for a in records.accounts}
        for done, part in _chunks(records.past_cases, size=500):
            past_case_store.upsert(part, provenance="simulated", regions=regions)  # written by fraudagent.sim
            on_progress("past cases", done, len(records.past_cases))
        counts.past_cases = len(records.past_cases)
    return counts


def write_plan(
    history: Tables,
    plan: LoadPlan,
    *,
    past_case_store: PastCaseSink | None,
    scorer: Scorer | None,
    on_progress: Progress | None = None,
) -> LoadCounts:
    progress = on_progress or (lambda *_: None)
    counts = LoadCounts()
    if plan.store is not None:
        counts.add(
            write_store(history, plan.store, past_case_store=past_case_store, scorer=scorer, on_progress=progress)
        )
    for n, bundle in enumerate(plan.bundles, start=1):
        counts.add(load_bundle(history, bundle, past_case_store=past_case_store, scorer=scorer))
        progress("case bundles", n, len(plan.bundles))
    return counts


def load_path(
    history: Tables,
    path: Path,
    *,
    past_case_store: PastCaseSink | None,
    scorer: Scorer | None,
    on_progress: Progress | None = None,
) -> LoadCounts:
    """Validate everything under path, then write it."""
    return write_plan(history, read_path(path), past_case_store=past_case_store, scorer=scorer, on_progress=on_progress)
