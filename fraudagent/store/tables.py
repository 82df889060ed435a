"""The one handle over the store's DynamoDB tables: a client and every table's name, connected once.

Every module of `fraudagent.store` is plain functions over this handle (`Tables` first, the rest
keyword arguments where there is more than an id), one module per aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraudagent.core.settings import Settings
from fraudagent.store import dynamo


@dataclass(frozen=True)
class Tables:
    client: Any
    accounts: str
    events: str
    cases: str
    reports: str
    keys: str
    audit: str
    jobs: str
    chats: str
    evalruns: str
    feedback: str
    intake_leases: str
    dead_letters: str

    @classmethod
    def connect(cls, settings: Settings, *, client: Any | None = None) -> Tables:
        """One client for every table (pass `client` to share one that exists)."""
        name = lambda spec: dynamo.table_name(settings, spec)  # noqa: E731
        return cls(
            client=client if client is not None else dynamo.make_client(settings),
            accounts=name(dynamo.ACCOUNTS),
            events=name(dynamo.EVENTS),
            cases=name(dynamo.CASES),
            reports=name(dynamo.REPORTS),
            keys=name(dynamo.KEYS),
            audit=name(dynamo.AUDIT),
            jobs=name(dynamo.JOBS),
            chats=name(dynamo.CHATS),
            evalruns=name(dynamo.EVALRUNS),
            feedback=name(dynamo.FEEDBACK),
            intake_leases=name(dynamo.INTAKE_LEASES),
            dead_letters=name(dynamo.DEAD_LETTERS),
        )
