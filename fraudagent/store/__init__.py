"""Data access: DynamoDB tables behind one handle (`tables.Tables`), one module of plain functions per aggregate.

`from fraudagent import store` then `store.cases.get_case(tables, case_id)`: the submodules are imported here
so that every caller reads the same way.
"""

from fraudagent.store import (
    audit,
    cases,
    chats,
    dynamo,
    evalruns,
    events,
    feedback,
    intake,
    jobs,
    keys,
    reports,
    tables,
)

__all__ = [
    "audit",
    "cases",
    "chats",
    "dynamo",
    "evalruns",
    "events",
    "feedback",
    "intake",
    "jobs",
    "keys",
    "reports",
    "tables",
]
