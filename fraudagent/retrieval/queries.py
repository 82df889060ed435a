"""The similar-case query for an open case, built from its evidence (events, accounts, links)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from fraudagent.core.models import Account, Case, Event
from fraudagent.retrieval.filters import CaseFilter
from fraudagent.retrieval.search import CaseQuery
from fraudagent.retrieval.signals import signals_from_events


def case_query(
    *,
    case: Case,
    account: Account | None,
    events: Sequence[Event],
    linked_account_ids: Iterable[str] = (),
    extra_text: str = "",
    closed_before: datetime | None = None,
) -> CaseQuery:
    """Signals computed from the events (embedded and searched), a short behavioural digest (searched by BM25),
    an analyst's words if any (both), and no self-evidence:
    the case's own account and every linked account are excluded. `closed_before` defaults to the
    case's opening, so a replayed case never sees outcomes decided after it."""
    linked = sorted(set(linked_account_ids) - {case.account_id})
    signals = signals_from_events(case=case, account=account, events=events, linked_account_ids=linked)
    return CaseQuery(
        text=extra_text.strip(),
        context=_digest(case, events),
        signals=sorted(signals),
        filters=CaseFilter(
            exclude_account_ids=[case.account_id, *linked],
            closed_before=closed_before or case.opened_at,
        ),
    )


def _digest(case: Case, events: Sequence[Event]) -> str:
    """What happened in words a write-up would use: the trigger and the most frequent activity."""
    own = [e for e in events if e.account_id == case.account_id]
    kinds = Counter(e.type.value.replace("_", " ") for e in own)
    categories = Counter(e.category.replace("_", " ") for e in own if e.category)
    parts = [f"opened on {case.trigger.kind.value.replace('_', ' ')}"]
    if kinds:
        parts.append("activity: " + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common(6)))
    if categories:
        parts.append("categories: " + ", ".join(c for c, _ in categories.most_common(3)))
    return "; ".join(parts) + "."
