"""The scoring endpoint's wire contract, shared by the server and its clients.

`POST /invocations` (the SageMaker inference container contract; the local
scoring server and a SageMaker endpoint speak it alike) takes one JSON object:

    {"events": [Event, ...],            # the history to compute features from, any order
     "accounts": [Account, ...],        # every account the events name
     "event_ids": ["E-...", ...]}       # optional: score only these; default every money-moving event
                                        # (refunds and non-money events get no score)

and answers `{"model_version": "ref-gbm-1", "scores": [Score, ...]}`, scores in
(ts, event_id) order with their reason codes. Events and accounts have the
case-bundle shapes (../shared/CASE_BUNDLE.md). An event's features come only
from the events before it in the payload, so send the history it needs
(e.g. the account's last 90 days) with it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from fraudagent.core.errors import Problem
from fraudagent.core.models import Account, Event, Id, Score

MAX_EVENTS = 100_000  # per request: a whole case's history fits, a store dump does not


class InvocationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS)
    accounts: list[Account] = Field(default_factory=list)
    event_ids: list[Id] | None = None


class InvocationResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    model_version: str
    scores: list[Score]


def cross_reference_problems(request: InvocationRequest) -> list[Problem]:
    """Every event's account is listed; every requested id is an event of the payload."""
    listed = {a.account_id for a in request.accounts}
    problems = [
        Problem(f"$.events[{n}].account_id", f"account {e.account_id!r} is not in $.accounts")
        for n, e in enumerate(request.events)
        if e.account_id not in listed
    ]
    known = {e.event_id for e in request.events}
    problems += [
        Problem(f"$.event_ids[{n}]", f"event {event_id!r} is not in $.events")
        for n, event_id in enumerate(request.event_ids or [])
        if event_id not in known
    ]
    return problems
