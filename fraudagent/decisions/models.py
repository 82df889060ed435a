"""What an analyst sends to close a case, and what comes back."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fraudagent.core.models import Action, Disposition, Typology
from fraudagent.retrieval.documents import Provenance
from fraudagent.store.cases import NOTES_MAX_CHARS, CaseDecision


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disposition: Disposition
    typology: Typology
    actions: list[Action] = Field(min_length=1, max_length=len(Action), description="actions taken, from the catalogue")
    notes: str = Field(
        default="",
        max_length=NOTES_MAX_CHARS,
        description="free text; stored and indexed as data, never followed as instructions",
    )

    @field_validator("actions")
    @classmethod
    def _unique(cls, actions: list[Action]) -> list[Action]:
        return list(dict.fromkeys(actions))


class DecisionResult(BaseModel):
    case_id: str
    status: str = Field(description="closed")
    decision: CaseDecision
    audit_id: str
    indexed: bool = Field(description="the case is in the past-case store, so similar cases find it")
    provenance: Provenance = Provenance.analyst_decision
