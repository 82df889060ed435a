"""Metadata filters for similar-case search, in the two forms the two retrievers need.

`where()` is the Chroma filter for the vector side; `allowed()` is the same
filter as a mask over the in-memory table for the lexical side. They sit side
by side so that they stay the same filter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from fraudagent.core.models import Typology


class CaseFilter(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    typologies: list[Typology] = Field(default_factory=list, description="only these typologies (any of)")
    closed_after: AwareDatetime | None = Field(default=None, description="closed at or after")
    closed_before: AwareDatetime | None = Field(default=None, description="closed before")
    regions: list[str] = Field(default_factory=list, description="only these regions (any of)")
    exclude_account_ids: list[str] = Field(
        default_factory=list,
        description="the case's own and linked accounts: their cases, and cases of rings they belong to, are left out",
    )

    @model_validator(mode="after")
    def _window_is_ordered(self) -> CaseFilter:
        if self.closed_after and self.closed_before and self.closed_after >= self.closed_before:
            raise ValueError("closed_after must be before closed_before")
        return self

    def where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.typologies:
            clauses.append({"typology": {"$in": [t.value for t in self.typologies]}})
        if self.closed_after:
            clauses.append({"closed_ts": {"$gte": int(self.closed_after.timestamp())}})
        if self.closed_before:
            clauses.append({"closed_ts": {"$lt": int(self.closed_before.timestamp())}})
        if self.regions:
            clauses.append({"region": {"$in": list(self.regions)}})
        if self.exclude_account_ids:
            clauses.append({"account_id": {"$nin": list(self.exclude_account_ids)}})
            clauses += [{"linked_account_ids": {"$not_contains": a}} for a in self.exclude_account_ids]
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def allowed(self, columns: FilterColumns) -> np.ndarray:
        keep = np.ones(len(columns.closed_ts), dtype=bool)
        if self.typologies:
            keep &= np.isin(columns.typology, [t.value for t in self.typologies])
        if self.closed_after:
            keep &= columns.closed_ts >= int(self.closed_after.timestamp())
        if self.closed_before:
            keep &= columns.closed_ts < int(self.closed_before.timestamp())
        if self.regions:
            keep &= np.isin(columns.region, list(self.regions))
        for account_id in self.exclude_account_ids:  # own cases and cases of rings the account is in
            keep[columns.by_account.get(account_id, [])] = False
        return keep


class FilterColumns:
    """The metadata a filter reads, as arrays over the table's rows."""

    def __init__(self, metadatas: list[dict[str, Any]]) -> None:
        self.typology = np.array([m["typology"] for m in metadatas], dtype=object)
        self.region = np.array([m.get("region", "") for m in metadatas], dtype=object)
        self.closed_ts = np.array([m["closed_ts"] for m in metadatas], dtype=np.int64)
        self.by_account: dict[str, list[int]] = {}
        for position, m in enumerate(metadatas):
            for account_id in {m["account_id"], *m.get("linked_account_ids", [])}:
                self.by_account.setdefault(account_id, []).append(position)
