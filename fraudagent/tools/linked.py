"""The linked-accounts tool: who else used an account's devices and payment instruments in a window.

`link_keys` picks the devices and instruments to look up, `linked_events` reads one of them (evidence gathering
runs these in parallel, each with its own timeout), `group_links` turns what they found into accounts linked
through which key; `linked_accounts` does all three in one call, and `linked_accounts_tool` is it as a LangChain tool.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict

from fraudagent import store
from fraudagent.store.events import LinkKind, ScoredEvent
from fraudagent.store.tables import Tables

MAX_LINK_KEYS = 6  # devices/instruments per case whose other users we look up
MAX_LINK_EVENTS = 200  # events read per device or instrument

LinkKey = tuple[LinkKind, str]


def link_keys(events: Iterable[ScoredEvent], *, max_keys: int = MAX_LINK_KEYS) -> list[LinkKey]:
    """The devices and instruments the events used, the most recently used ones, `max_keys` in all."""
    events = list(events)
    keys: list[LinkKey] = []
    for kind, attr in (("device", "device_id"), ("instrument", "instrument_id")):
        seen = list(dict.fromkeys(getattr(s.event, attr) for s in events if getattr(s.event, attr)))
        keys += [(kind, v) for v in seen[-max_keys // 2 :]]  # type: ignore[misc]
    return keys


def linked_events(
    tables: Tables, *, key: LinkKey, start: datetime, end: datetime, max_items: int = MAX_LINK_EVENTS
) -> tuple[list[ScoredEvent], bool]:
    """Events on a device or instrument in [start, end] across all accounts, newest first, and whether it cut."""
    kind, value = key
    return store.events.linked_events(tables, kind, value, start=start, end=end, max_items=max_items)


def group_links(
    found: Mapping[LinkKey, Sequence[ScoredEvent]], *, account_id: str, until: datetime | None = None
) -> tuple[dict[str, dict[str, list[str]]], dict[str, list[ScoredEvent]], dict[str, dict[str, ScoredEvent]]]:
    """From what `linked_events` read: (other account -> "device D-1" -> its event ids, device -> every event on it,
    other account -> its events on the shared keys up to `until`, by id)."""
    linked: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    device_stats: dict[str, list[ScoredEvent]] = defaultdict(list)
    their_events: dict[str, dict[str, ScoredEvent]] = defaultdict(dict)
    for (kind, value), events in found.items():
        for scored in events:
            if kind == "device":
                device_stats[value].append(scored)
            if scored.event.account_id != account_id:
                linked[scored.event.account_id][f"{kind} {value}"].append(scored.event.event_id)
                if until is None or scored.event.ts <= until:
                    their_events[scored.event.account_id][scored.event.event_id] = scored
    return linked, device_stats, their_events


def linked_accounts(
    tables: Tables, *, account_id: str, events: Sequence[ScoredEvent], start: datetime, end: datetime
) -> dict[str, dict[str, list[str]]]:
    """The accounts that share a device or instrument with the account's `events` in [start, end], one read at a
    time."""
    found = {key: linked_events(tables, key=key, start=start, end=end)[0] for key in link_keys(events)}
    linked, _, _ = group_links(found, account_id=account_id)
    return {a: dict(via) for a, via in linked.items()}


class LinkedInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


def linked_accounts_tool(
    tables: Tables, *, account_id: str, events: Sequence[ScoredEvent], start: datetime, end: datetime
) -> StructuredTool:
    """`linked_accounts` bound to one case: its account, events and window (the model passes nothing)."""

    def linked_accounts_of_the_case() -> dict[str, Any]:
        found = linked_accounts(tables, account_id=account_id, events=events, start=start, end=end)
        return {"accounts": [{"id": f"acct:{a}", "shared": via} for a, via in sorted(found.items())]}

    return StructuredTool.from_function(
        func=linked_accounts_of_the_case,
        name="linked_accounts",
        description=(
            "Accounts that used this case's devices or payment instruments in the window; cite them as acct:<id>."
        ),
        args_schema=LinkedInput,
    )
