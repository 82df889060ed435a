"""Feedback and quality: an analyst's verdict on a report, and the quality figures over time (JSON and SVG).

Roles: verdicts are given by analysts (one per analyst per report, changeable, audited) and read by analysts and
evaluators; the quality figures are for evaluators (and admins, who hold every role).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BeforeValidator

from fraudagent.api import problems
from fraudagent.api.cases import CaseId
from fraudagent.api.deps import Caller, SettingsDep, TablesDep, require_role
from fraudagent.feedback import flows
from fraudagent.feedback.charts import Figure, Grouping, bar_chart
from fraudagent.feedback.models import QualityReport, Verdict, VerdictList, VerdictRequest

router = APIRouter(responses=problems.responses(*problems.AUTHED))

ReportId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$", description="the report id")
]
Analyst = Annotated[Caller, Depends(require_role("analyst"))]
Reader = Annotated[Caller, Depends(require_role("analyst", "evaluator"))]
Evaluator = Annotated[Caller, Depends(require_role("evaluator"))]


def _iso_day(value: object) -> object:
    """A day as YYYY-MM-DD only: pydantic would read a number as seconds since 1970."""
    if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
        raise ValueError("a day as YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]
Since = Annotated[Day | None, Query(description="first day (YYYY-MM-DD, UTC) of reports drafted; default 30 days")]
Until = Annotated[Day | None, Query(description="last day (YYYY-MM-DD, UTC); default today")]


@router.post(
    "/v1/cases/{case_id}/reports/{report_id}/feedback",
    response_model=Verdict,
    tags=["feedback"],
    responses=problems.responses(404),
)
async def give_feedback(
    request: Request, case_id: CaseId, report_id: ReportId, body: VerdictRequest, history: TablesDep, caller: Analyst
) -> Verdict:
    """The analyst's verdict on one of the case's reports: useful or not, with reasons from the fixed list (and a
    note with `other`). One verdict per analyst per report: sending again replaces it (`changed: true`). Audited.
    A report of another case, or none, is 404; an unknown reason is 422; either changes nothing."""
    verdict = await run_in_threadpool(
        flows.give_verdict,
        history,
        case_id=case_id,
        report_id=report_id,
        request=body,
        analyst=caller.name,
        key_id=caller.key_id,
    )
    request.app.state.metrics.observe_verdict(verdict)
    return verdict


@router.get(
    "/v1/cases/{case_id}/reports/{report_id}/feedback",
    response_model=VerdictList,
    tags=["feedback"],
    responses=problems.responses(404),
)
def list_feedback(case_id: CaseId, report_id: ReportId, history: TablesDep, _: Reader) -> VerdictList:
    """Every analyst's current verdict on the report."""
    return flows.verdicts(history, case_id=case_id, report_id=report_id)


@router.get("/v1/quality", response_model=QualityReport, tags=["quality"])
def get_quality(
    history: TablesDep, settings: SettingsDep, _: Evaluator, since: Since = None, until: Until = None
) -> QualityReport:
    """Per report, for reports drafted in the period: agreement rate with analysts' decisions, verdict rate and
    useful rate, fallback rate, latency and tokens; in total, by day, by model, prompt and policy version and by
    typology."""
    return flows.quality(
        history,
        since=since,
        until=until,
        default_days=settings.quality_default_days,
        max_items=settings.quality_max_reports,
    )


_SVG: dict[int | str, dict[str, Any]] = {
    200: {"description": "an SVG bar chart", "content": {"image/svg+xml": {"schema": {"type": "string"}}}}
}


@router.get("/v1/quality/chart.svg", response_class=Response, tags=["quality"], responses=_SVG)
def quality_chart(
    history: TablesDep,
    settings: SettingsDep,
    _: Evaluator,
    figure: Figure = "agreement_rate",
    by: Grouping = "day",
    since: Since = None,
    until: Until = None,
) -> Response:
    """One quality figure as a server-rendered SVG bar chart, by day or by version or typology."""
    report = flows.quality(
        history,
        since=since,
        until=until,
        default_days=settings.quality_default_days,
        max_items=settings.quality_max_reports,
    )
    return Response(bar_chart(report, figure=figure, by=by), media_type="image/svg+xml")
