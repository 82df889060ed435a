"""The transaction-history tool: an account's events (with the score each got) in a time window.

`account_history` is what evidence gathering and the chat call; `history_tool` is the same read as a LangChain
tool bound to one account (the model chooses the window, never the account).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from fraudagent import store
from fraudagent.store.events import ScoredEvent
from fraudagent.store.tables import Tables


def account_history(
    tables: Tables, *, account_id: str, start: datetime, end: datetime, max_items: int
) -> tuple[list[ScoredEvent], bool]:
    """The account's events in [start, end], oldest first, at most `max_items` (the newest kept), and whether it cut."""
    return store.events.account_events(tables, account_id, start=start, end=end, max_items=max_items)


def events_after(tables: Tables, *, account_id: str, after: datetime, max_items: int) -> tuple[list[ScoredEvent], bool]:
    """The account's events from `after` until now (the event at `after` included), as `account_history`."""
    return account_history(
        tables, account_id=account_id, start=after, end=datetime.now(timezone.utc), max_items=max_items
    )


def event_record(scored: ScoredEvent) -> dict[str, Any]:
    """An event as plain data for a tool result: the event's fields and its score, under the evidence ids."""
    e = scored.event
    record: dict[str, Any] = {"id": f"txn:{e.event_id}", **e.model_dump(mode="json", exclude_none=True)}
    if scored.score is not None:
        record["score"] = {"id": f"score:{e.event_id}", **scored.score.model_dump(mode="json", exclude={"event_id"})}
    return record


class HistoryInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(default=30, ge=1, le=365, description="how many days back from the end of the window")


def history_tool(tables: Tables, *, account_id: str, end: datetime, max_items: int = 50) -> StructuredTool:
    """`transaction_history` for one account: its events in the last `days` before `end`."""

    def transaction_history(days: int = 30) -> dict[str, Any]:
        events, cut = account_history(
            tables, account_id=account_id, start=end - timedelta(days=days), end=end, max_items=max_items
        )
        return {"events": [event_record(s) for s in events], "cut": cut}

    return StructuredTool.from_function(
        func=transaction_history,
        name="transaction_history",
        description=(
            "The case account's events (purchases, refunds, logins, credential changes) with their risk scores; "
            "cite them by their ids (txn:<event>, score:<event>)."
        ),
        args_schema=HistoryInput,
    )
