"""Case routes: the queue with filters, a case with its evidence, its reports, its audit trail,
assigning it, and drafting a report (in one answer, or streamed as server-sent events).

Roles: analysts and evaluators read cases and draft reports (evaluators compare models on them);
assigning and the audit trail are for analysts; ticketing keys reach cases only through summaries;
admin keys may do everything.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field
from sse_starlette import EventSourceResponse

from fraudagent import store
from fraudagent.agent.pipeline import draft_and_store
from fraudagent.agent.report import InvestigationReport
from fraudagent.agent.scheduler import ModelBusy
from fraudagent.api import problems, report_stream
from fraudagent.api.deps import Caller, InvestigatorDep, SettingsDep, TablesDep, require_role
from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import Priority, Typology
from fraudagent.store import audit
from fraudagent.store.audit import AuditPage
from fraudagent.store.cases import CaseFilters, CaseRecord, CaseStatus

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses=problems.responses(*problems.AUTHED))

CaseId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$", description="the case id")]
Cursor = Annotated[str | None, Query(max_length=2000, description="next_cursor of the previous page")]
Reader = Annotated[Caller, Depends(require_role("analyst", "evaluator"))]
Analyst = Annotated[Caller, Depends(require_role("analyst"))]


class CasePage(BaseModel):
    items: list[CaseRecord]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class EvidenceItemOut(BaseModel):
    id: str
    kind: str
    line: str
    untrusted: str | None = None
    rests_on: list[str] = []
    data: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "the item's fields (event, score, account, device, links, past case) for charts; no IP address, and "
            "customer-written text only in `untrusted`, cleaned"
        ),
    )


# Raw customer text (cleaned copies are in `untrusted`) and IP addresses stay out of `data`.
_DATA_OMITTED = frozenset({"ip", "text", "display_name", "narrative"})


def _evidence_out(item: Any) -> EvidenceItemOut:
    data = {k: v for k, v in item.data.items() if k not in _DATA_OMITTED}
    return EvidenceItemOut(
        id=item.id, kind=item.kind, line=item.line, untrusted=item.untrusted, rests_on=item.rests_on, data=data
    )


class CaseDetail(BaseModel):
    record: CaseRecord
    evidence: list[EvidenceItemOut]
    evidence_cuts: list[str]
    evidence_sources: dict[str, str]
    latest_report: dict[str, Any] | None


class ReportPage(BaseModel):
    items: list[dict[str, Any]] = Field(description="reports, newest first (the InvestigationReport shape)")
    next_cursor: str | None


class ReportRequest(BaseModel):
    model: str | None = Field(default=None, description="override the configured model for this report", max_length=200)


class AssignRequest(BaseModel):
    assignee: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9 ._:\-]+$",
        description="default: the caller's key name",
    )


def _not_a_number(value: object) -> object:
    """pydantic reads a number as seconds since 1970; the spec promises an ISO 8601 date-time, so a number is
    refused."""
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value
    raise ValueError("an ISO 8601 date-time with a zone, not a number")


IsoTime = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]


def _sane_time(value: datetime) -> bool:
    try:
        return 1970 <= value.astimezone(timezone.utc).year <= 9998
    except OverflowError:
        return False


@router.get("", response_model=CasePage)
def list_cases(
    history: TablesDep,
    settings: SettingsDep,
    _: Reader,
    status: CaseStatus = "open",
    priority: Priority | None = None,
    min_score: Annotated[float | None, Query(ge=0.0, le=1.0, description="lowest top score")] = None,
    max_score: Annotated[float | None, Query(ge=0.0, le=1.0, description="highest top score")] = None,
    typology: Annotated[Typology | None, Query(description="the latest report's typology, or the decided one")] = None,
    assignee: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    opened_after: Annotated[
        IsoTime | None, Query(description="opened at or after (ISO 8601 with a zone): younger cases")
    ] = None,
    opened_before: Annotated[
        IsoTime | None, Query(description="opened before (ISO 8601 with a zone): older cases")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> CasePage:
    """The queue for a status, newest first. Filters are applied while reading the status index: a page
    reads at most FRAUDAGENT_API_CASE_SCAN_LIMIT cases, so a rare filter can return a short page whose
    next_cursor continues the search."""
    if min_score is not None and max_score is not None and min_score > max_score:
        raise InvalidInput("bad score range", [Problem("min_score", "must not exceed max_score")])
    for name, value in (("opened_after", opened_after), ("opened_before", opened_before)):
        if value is not None and not _sane_time(value):
            raise InvalidInput("bad time", [Problem(name, "must be between 1970 and 9998")])
    if opened_after is not None and opened_before is not None and opened_after > opened_before:
        raise InvalidInput("bad age range", [Problem("opened_after", "must not be after opened_before")])
    filters = CaseFilters(
        priority=priority,
        min_score=min_score,
        max_score=max_score,
        typology=typology,
        assignee=assignee,
        opened_after=opened_after,
        opened_before=opened_before,
    )
    items, next_cursor = store.cases.list_cases(
        history, status=status, limit=limit, cursor=cursor, filters=filters, max_scanned=settings.api_case_scan_limit
    )
    return CasePage(items=items, next_cursor=next_cursor)


@router.get("/{case_id}", response_model=CaseDetail, responses=problems.responses(404))
def get_case(case_id: CaseId, investigator: InvestigatorDep, _: Reader) -> CaseDetail:
    record = store.cases.get_case(investigator.history, case_id)
    pack = investigator.evidence(case_id)
    latest = store.reports.reports(investigator.history, case_id, limit=1)
    return CaseDetail(
        record=record,
        evidence=[_evidence_out(i) for i in pack.items.values()],
        evidence_cuts=pack.cuts,
        evidence_sources=pack.sources,
        latest_report=latest[0] if latest else None,
    )


@router.get("/{case_id}/reports", response_model=ReportPage, responses=problems.responses(404))
def list_reports(
    case_id: CaseId,
    history: TablesDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Cursor = None,
) -> ReportPage:
    """Every report drafted for the case, newest first, paged."""
    store.cases.get_case(history, case_id)
    items, next_cursor = store.reports.report_page(history, case_id, limit=limit, cursor=cursor)
    return ReportPage(items=items, next_cursor=next_cursor)


@router.get("/{case_id}/audit", response_model=AuditPage, responses=problems.responses(404))
def case_audit(
    case_id: CaseId,
    history: TablesDep,
    _: Analyst,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> AuditPage:
    """The case's audit trail, newest first: reports drafted, assignment, the decision."""
    store.cases.get_case(history, case_id)
    return audit.events_for(history, subject=audit.case_subject(case_id), limit=limit, cursor=cursor)


@router.post("/{case_id}/assign", response_model=CaseRecord, responses=problems.responses(404, 409))
def assign_case(case_id: CaseId, history: TablesDep, caller: Analyst, body: AssignRequest | None = None) -> CaseRecord:
    """Assign an open case (to the caller by default); audited."""
    assignee = body.assignee if body and body.assignee else caller.name
    event = audit.new_event(
        subject=audit.case_subject(case_id), action="case.assigned", actor=caller.name, details={"assignee": assignee}
    )
    store.cases.assign_case(history, case_id=case_id, assignee=assignee, event=event)
    return store.cases.get_case(history, case_id)


@router.post("/{case_id}/report", response_model=InvestigationReport, responses=problems.responses(404))
async def create_report(
    request: Request, case_id: CaseId, investigator: InvestigatorDep, caller: Reader, body: ReportRequest | None = None
) -> InvestigationReport:
    """Draft, check and store a report (audited); slow with a local model."""
    await run_in_threadpool(store.cases.get_case, investigator.history, case_id)  # 404 before any model time is spent
    report = await run_in_threadpool(
        draft_and_store, investigator, case_id, model=body.model if body else None, requested_by=caller.name
    )
    request.app.state.metrics.observe_report(report)
    return report


_REPORT_STREAM = {
    200: {
        "description": (
            "server-sent events as the report is made: `evidence` ({items, events, seconds}) once the evidence pack is"
            " gathered; per model call `drafting` ({attempt}), `token` ({attempt, narrative}: the narrative so far or"
            " null, at most 5 a second) and `checks` ({attempt, ok, problems}); then `report` (the InvestigationReport,"
            " as POST /report answers it) or `error` (problem+json), and the stream ends"
        ),
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "enum": report_stream.EVENT_NAMES},
                        "data": {
                            "type": "string",
                            "description": "JSON; InvestigationReport for `report`, Problem for `error`",
                        },
                    },
                }
            }
        },
    },
} | problems.responses(404)


@router.post("/{case_id}/report/stream", response_class=EventSourceResponse, responses=_REPORT_STREAM)  # type: ignore[arg-type]
async def stream_report(
    request: Request, case_id: CaseId, investigator: InvestigatorDep, caller: Reader, body: ReportRequest | None = None
) -> EventSourceResponse:
    """The same as POST /report (drafted, checked, stored, audited), with its progress streamed as server-sent events.
    A client that disconnects stops the events, not the report: it is still stored. With the model's queue full the
    answer is 503 before the stream starts; a wait that runs out later ends the stream with an `error` event (503)."""
    await run_in_threadpool(store.cases.get_case, investigator.history, case_id)  # 404 before the stream starts
    if investigator.scheduler is not None and not investigator.scheduler.admits("interactive"):  # 503 before it, too
        raise ModelBusy(
            "the model is busy and its queue is full; retry later", investigator.scheduler.typical_retry_after()
        )
    events = report_stream.report_events(
        investigator,
        case_id,
        model=body.model if body else None,
        requested_by=caller.name,
        observe=request.app.state.metrics.observe_report,
    )
    return EventSourceResponse(events, ping=15)
