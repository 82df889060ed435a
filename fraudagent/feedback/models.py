"""What an analyst sends about a report, what a decision's agreement with a report holds, and the quality figures."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

NOTE_MAX_CHARS = 2000


class Reason(StrEnum):
    """Why a report was (not) useful: the fixed list."""

    wrong_typology = "wrong_typology"
    wrong_action = "wrong_action"
    missing_evidence = "missing_evidence"
    unsupported_claim = "unsupported_claim"
    too_long = "too_long"
    other = "other"


class VerdictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    useful: StrictBool = Field(description="true or false (not 0/1 or a string)")
    reasons: list[Reason] = Field(default_factory=list, max_length=len(Reason), description="from the fixed list")
    note: str = Field(
        default="",
        max_length=NOTE_MAX_CHARS,
        description="free text (required with the reason `other`); stored as data, never followed as instructions",
    )

    @field_validator("reasons")
    @classmethod
    def _unique(cls, reasons: list[Reason]) -> list[Reason]:
        return list(dict.fromkeys(reasons))

    @model_validator(mode="after")
    def _other_needs_a_note(self) -> VerdictRequest:
        if Reason.other in self.reasons and not self.note.strip():
            raise ValueError("the reason `other` needs a note")
        return self


class Verdict(BaseModel):
    """One analyst's verdict on one report (the latest one they gave)."""

    case_id: str
    report_id: str
    analyst: str
    useful: bool
    reasons: list[Reason]
    note: str = ""
    at: datetime
    changed: bool = Field(description="this verdict replaced an earlier one of the same analyst on the same report")
    previous_useful: bool | None = Field(default=None, description="the replaced verdict's `useful`")
    audit_id: str


class VerdictList(BaseModel):
    report_id: str
    items: list[Verdict]


class QualityRow(BaseModel):
    """Per-report figures for one group (a day, or a model/prompt/policy version, or a typology)."""

    key: str = Field(description="the group's value: a day (YYYY-MM-DD), a version or a typology")
    reports: int
    fallback_rate: float | None = Field(description="share of reports on the fallback path")
    mean_latency_s: float | None = Field(description="evidence + drafting + verification seconds per report")
    mean_tokens: float | None = Field(description="prompt + completion tokens per report")
    decided: int = Field(description="reports that were the latest report when their case was decided")
    agreement_rate: float | None = Field(description="share of decided reports whose recommendation agreed")
    judged: int = Field(description="reports with at least one analyst verdict")
    verdict_rate: float | None = Field(description="share of reports with at least one verdict")
    useful_rate: float | None = Field(description="share of verdicts that said useful")
    reasons: dict[str, int] = Field(default_factory=dict, description="how often each reason was given")


class QualityReport(BaseModel):
    since: date
    until: date | None
    total: QualityRow
    by_day: list[QualityRow]
    by_model: list[QualityRow]
    by_prompt_version: list[QualityRow]
    by_policy_version: list[QualityRow]
    by_typology: list[QualityRow]
    cut: bool = Field(description="more items than FRAUDAGENT_QUALITY_MAX_REPORTS: the figures cover the oldest only")
