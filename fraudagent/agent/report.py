"""The investigation report: what the model drafts, and what the service returns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fraudagent.core.models import Action, Disposition, Typology

MAX_NARRATIVE_CHARS = 1200


FindingSource = Literal["model", "code", "injection"]


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)
    statement: str
    evidence_ids: list[str]
    source: FindingSource = Field(
        default="model",
        description="model: drafted and verified; code: computed from facts; injection: flagged by the detector",
    )


class SimilarCaseOutcome(BaseModel):
    case_id: str
    similarity: float
    typology: Typology
    disposition: Disposition
    actions: list[Action]


ReportPath = Literal["llm", "llm_retried", "fallback", "policy"]


class Timings(BaseModel):
    evidence_s: float = 0.0
    drafting_s: float = 0.0
    verification_s: float = 0.0


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0


class ModelProposal(BaseModel):
    """What the model proposed when the checks refused it: the report says so instead of overriding it silently."""

    typology: Typology
    actions: list[Action]
    refused_because: list[str]


class InvestigationReport(BaseModel):
    report_id: str
    case_id: str
    created_at: datetime
    narrative: str
    findings: list[Finding]
    typology: Typology
    recommended_actions: list[Action] = Field(
        description="what the agent recommends, the main action first; a human decides"
    )
    confidence: float
    unknowns: list[str]
    abstained: bool = Field(default=False, description="the model said the evidence is insufficient to judge")
    similar_cases: list[SimilarCaseOutcome]
    similar_cases_summary: str | None = Field(default=None, description="how the nearest past cases ended")
    path: ReportPath = Field(
        description=(
            "llm: first draft passed; llm_retried: passed after feedback; fallback: built by code after the model"
            " failed; policy: built by code, no model asked"
        )
    )
    problems: list[str] = Field(default_factory=list, description="what the checks rejected along the way")
    removed_claims: list[str] = Field(
        default_factory=list, description="statements the verifier dropped from the accepted draft"
    )
    model_proposal: ModelProposal | None = Field(
        default=None,
        description="on the fallback path: the model's last refused typology and actions, and why they were refused",
    )
    policy_version: str = ""
    policy_rules: list[str] = Field(default_factory=list, description="ids of the policy rules that fired")
    suggested_actions: list[Action] = Field(default_factory=list, description="what the policy suggests for this case")
    injection_flags: list[str] = Field(
        default_factory=list, description="evidence ids whose untrusted text looks like instructions"
    )
    model: str
    prompt_version: str
    evidence_hash: str
    evidence_cuts: list[str] = Field(default_factory=list)
    evidence_sources: dict[str, str] = Field(default_factory=dict)
    timings: Timings
    usage: Usage
    requested_by: str | None = None
    replay_of: str | None = Field(
        default=None, description="the stored report whose evidence snapshot this one was drafted from"
    )
