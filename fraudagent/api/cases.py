"""Case routes: the queue, a case with its evidence, and drafting a report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from fraudagent.agent.pipeline import draft_and_store
from fraudagent.agent.report import InvestigationReport
from fraudagent.api.deps import CallerDep, HistoryDep, InvestigatorDep, require_key
from fraudagent.tools import history as store
from fraudagent.tools.history import CaseRecord, CaseStatus

router = APIRouter(prefix="/v1/cases", tags=["cases"], dependencies=[Depends(require_key)])


class CasePage(BaseModel):
    items: list[CaseRecord]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class EvidenceItemOut(BaseModel):
    id: str
    kind: str
    line: str
    untrusted: str | None = None
    rests_on: list[str] = []


class CaseDetail(BaseModel):
    record: CaseRecord
    evidence: list[EvidenceItemOut]
    evidence_cuts: list[str]
    evidence_sources: dict[str, str]
    latest_report: dict[str, Any] | None


class ReportRequest(BaseModel):
    model: str | None = Field(default=None, description="override the configured model for this report", max_length=200)


@router.get("", response_model=CasePage)
def list_cases(
    history: HistoryDep,
    status: CaseStatus = "open",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> CasePage:
    items, next_cursor = store.list_cases(history, status=status, limit=limit, cursor=cursor)
    return CasePage(items=items, next_cursor=next_cursor)


@router.get("/{case_id}", response_model=CaseDetail)
def get_case(case_id: str, investigator: InvestigatorDep) -> CaseDetail:
    record = store.get_case(investigator.history, case_id)
    pack = investigator.evidence(case_id)
    latest = store.reports(investigator.history, case_id, limit=1)
    return CaseDetail(
        record=record,
        evidence=[EvidenceItemOut(**i.model_dump(include={"id", "kind", "line", "untrusted", "rests_on"})) for i in pack.items.values()],
        evidence_cuts=pack.cuts,
        evidence_sources=pack.sources,
        latest_report=latest[0] if latest else None,
    )


@router.post("/{case_id}/report", response_model=InvestigationReport)
async def create_report(
    case_id: str, investigator: InvestigatorDep, caller: CallerDep, body: ReportRequest | None = None
) -> InvestigationReport:
    store.get_case(investigator.history, case_id)  # 404 before any model time is spent
    return await run_in_threadpool(
        draft_and_store, investigator, case_id, model=body.model if body else None, requested_by=caller.name
    )
