"""Loading case bundles into the stores, and exporting a case back out as a bundle.

Loading is idempotent: every write is a put keyed by the record's own ids, and a
case's status survives a reload. Validation happens before any write (see
core.bundle), so a malformed bundle writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from fraudagent import store
from fraudagent.core.models import Account, CaseBundle, Event, PastCase, Score
from fraudagent.store.cases import CaseRecord
from fraudagent.store.tables import Tables

Scorer = Callable[[Sequence[Event], Mapping[str, Account]], list[Score]]


class PastCaseSink(Protocol):
    def upsert(
        self, cases: Sequence[PastCase], *, provenance: str = ..., regions: Mapping[str, str] | None = ...
    ) -> int: ...
    def get(self, case_ids: Sequence[str]) -> list[PastCase]: ...


@dataclass
class LoadCounts:
    bundles: int = 0
    accounts: int = 0
    events: int = 0
    scored_on_load: int = 0
    past_cases: int = 0

    def add(self, other: LoadCounts) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def load_records(
    history: Tables,
    *,
    accounts: Sequence[Account],
    events: Sequence[Event],
    scores: Sequence[Score] | None,
    past_cases: Sequence[PastCase],
    past_case_store: PastCaseSink | None,
    scorer: Scorer | None,
) -> LoadCounts:
    """Write accounts, events (scored on load when no scores came with them) and past cases."""
    counts = LoadCounts()
    if scores is None and scorer is not None:
        scores = scorer(events, {a.account_id: a for a in accounts})
        counts.scored_on_load = len(scores)
    counts.accounts = store.events.put_accounts(history, accounts)
    counts.events = store.events.put_events(history, events, {s.event_id: s for s in scores or []})
    if past_cases and past_case_store is not None:
        past_case_store.upsert(past_cases)
        counts.past_cases = len(past_cases)
    return counts


def load_bundle(
    history: Tables, bundle: CaseBundle, *, past_case_store: PastCaseSink | None, scorer: Scorer | None
) -> LoadCounts:
    """Write one validated bundle. `expected` is never stored: it is for evals only."""
    counts = load_records(
        history,
        accounts=bundle.accounts,
        events=bundle.events,
        scores=bundle.scores,
        past_cases=bundle.past_cases,
        past_case_store=past_case_store,
        scorer=scorer,
    )
    times = [e.ts for e in bundle.events]
    scores = [s.score for s in bundle.scores or []]
    store.cases.put_case(
        history,
        CaseRecord(
            case=bundle.case,
            account_ids=[a.account_id for a in bundle.accounts],
            past_case_ids=[p.case_id for p in bundle.past_cases],
            window_start=min(times) if times else None,
            window_end=max(times) if times else None,
            max_score=max(scores) if scores else None,
        ),
    )
    counts.bundles = 1
    return counts


def export_bundle(history: Tables, case_id: str, *, past_case_store: PastCaseSink | None) -> dict[str, Any]:
    """A stored case as a bundle document: its accounts, their events in the case's window, scores, past cases."""
    record = store.cases.get_case(history, case_id)
    start = record.window_start or record.case.opened_at - timedelta(days=90)
    end = record.window_end or record.case.opened_at
    accounts = store.events.get_accounts(history, record.account_ids)
    events, scores = [], []
    for account_id in record.account_ids:
        found, _ = store.events.account_events(history, account_id, start=start, end=end, max_items=100_000)
        for scored in found:
            events.append(scored.event)
            if scored.score is not None:
                scores.append(scored.score)
    events.sort(key=lambda e: (e.ts, e.event_id))
    past = past_case_store.get(record.past_case_ids) if past_case_store and record.past_case_ids else []
    bundle = CaseBundle(
        bundle_version=1,
        case=record.case,
        accounts=[accounts[a] for a in record.account_ids if a in accounts],
        events=events,
        scores=scores or None,
        past_cases=past,
    )
    return bundle.model_dump(mode="json", exclude_none=True)
