"""What an analyst sends to close a case, and what comes back."""

from __future__ import annotations

from datetime import datetime

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


class Agreement(BaseModel):
    """A decision compared with the latest report's recommendation, with the report's versions and path."""

    case_id: str
    report_id: str
    model: str
    prompt_version: str
    policy_version: str
    path: str
    report_typology: Typology
    report_disposition: Disposition = Field(description="the disposition the report implies (as eval scores it)")
    recommended_actions: list[Action]
    decided_typology: Typology
    decided_disposition: Disposition
    actions_taken: list[Action]
    typology_match: bool
    disposition_match: bool
    action_match: bool = Field(description="the report's main recommended action is among the actions taken")
    action_overlap: float = Field(description="Jaccard overlap of recommended actions and actions taken")
    agreed: bool = Field(description="typology, disposition and main action all match")
    at: datetime


class DecisionResult(BaseModel):
    case_id: str
    status: str = Field(description="closed")
    decision: CaseDecision
    audit_id: str
    indexed: bool = Field(description="the case is in the past-case store, so similar cases find it")
    provenance: Provenance = Provenance.analyst_decision
    agreement: Agreement | None = Field(
        default=None, description="the decision compared with the latest report; null when the case had no report"
    )
