"""POST /v1/cases/{case_id}/decision: an analyst closes a case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.concurrency import run_in_threadpool

from fraudagent.api import problems
from fraudagent.api.cases import CaseId
from fraudagent.api.deps import Caller, InvestigatorDep, require_role
from fraudagent.decisions.flows import decide
from fraudagent.decisions.models import DecisionRequest, DecisionResult

router = APIRouter(prefix="/v1/cases", tags=["decisions"], responses=problems.responses(*problems.AUTHED))


@router.post(
    "/{case_id}/decision",
    response_model=DecisionResult,
    status_code=status.HTTP_201_CREATED,
    responses=problems.responses(404, 409),
)
async def create_decision(
    request: Request,
    case_id: CaseId,
    body: DecisionRequest,
    investigator: InvestigatorDep,
    caller: Annotated[Caller, Depends(require_role("analyst"))],
) -> DecisionResult:
    """Close the case with the analyst's disposition, typology and actions taken; audited; the case joins
    the past-case store (provenance analyst_decision). The decision is compared with the latest report's
    recommendation (typology, disposition, main action) and the result stored with the report's model, prompt and
    policy versions and path (`agreement`; null without a report). A second decision is 409."""
    result = await run_in_threadpool(
        decide, investigator, case_id=case_id, request=body, analyst=caller.name, key_id=caller.key_id
    )
    request.app.state.metrics.decisions.labels(disposition=result.decision.disposition.value).inc()
    if result.agreement is not None:
        request.app.state.metrics.observe_agreement(result.agreement)
    return result
