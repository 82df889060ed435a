"""Verdicts on reports (one per analyst per report, changeable, audited) and the quality figures over time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from fraudagent import store
from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.feedback.models import QualityReport, Verdict, VerdictList, VerdictRequest
from fraudagent.feedback.service import quality_report
from fraudagent.store import audit
from fraudagent.store import feedback as feedback_store
from fraudagent.store.tables import Tables


def give_verdict(
    history: Tables, *, case_id: str, report_id: str, request: VerdictRequest, analyst: str, key_id: str
) -> Verdict:
    """Store the analyst's verdict on one of the case's reports (replacing their earlier one), audited.

    NotFound for an unknown case, or a report that is not one of this case's."""
    store.cases.get_case(history, case_id)
    store.reports.get_report(history, case_id=case_id, report_id=report_id)
    previous = feedback_store.get_verdict(history, report_id=report_id, analyst=analyst)
    at = datetime.now(timezone.utc)
    reasons = [r.value for r in request.reasons]
    event = audit.new_event(
        subject=audit.case_subject(case_id),
        action="report.verdict_changed" if previous else "report.verdict_given",
        actor=analyst,
        details={
            "key_id": key_id,
            "report_id": report_id,
            "useful": request.useful,
            "reasons": reasons,
            "note_chars": len(request.note),
            "previous_useful": previous.get("useful") if previous else None,
            "previous_reasons": previous.get("reasons") if previous else None,
        },
    )
    feedback_store.put_verdict(
        history,
        verdict={
            "case_id": case_id,
            "report_id": report_id,
            "analyst": analyst,
            "useful": request.useful,
            "reasons": reasons,
            "note": request.note,
            "audit_id": event.audit_id,
        },
        at=at,
        event=event,
    )
    return Verdict(
        case_id=case_id,
        report_id=report_id,
        analyst=analyst,
        useful=request.useful,
        reasons=request.reasons,
        note=request.note,
        at=at,
        changed=previous is not None,
        previous_useful=previous.get("useful") if previous else None,
        audit_id=event.audit_id,
    )


def verdicts(history: Tables, *, case_id: str, report_id: str) -> VerdictList:
    """Every analyst's current verdict on one of the case's reports."""
    store.cases.get_case(history, case_id)
    store.reports.get_report(history, case_id=case_id, report_id=report_id)
    items = feedback_store.verdicts_for(history, report_id=report_id)
    return VerdictList(
        report_id=report_id,
        items=[
            Verdict(
                case_id=i["case_id"],
                report_id=i["report_id"],
                analyst=i["analyst"],
                useful=bool(i["useful"]),
                reasons=i.get("reasons") or [],
                note=i.get("note") or "",
                at=datetime.fromisoformat(i["at"]),
                changed=False,
                audit_id=i["audit_id"],
            )
            for i in items
        ],
    )


def quality(
    history: Tables, *, since: date | None, until: date | None, default_days: int, max_items: int
) -> QualityReport:
    """The figures for reports drafted from `since` (default: `default_days` ago) to `until` (default: today)."""
    today = datetime.now(timezone.utc).date()
    start = since or today - timedelta(days=default_days - 1)
    if until is not None and until < start:
        raise InvalidInput("bad date range", [Problem("since", "must not be after until")])
    start_ts = datetime.combine(start, time.min, tzinfo=timezone.utc)
    end_ts = datetime.combine(until, time.max, tzinfo=timezone.utc) if until is not None else None
    reports, cut_reports = feedback_store.items_of_kind(
        history, kind="report", since=start_ts, until=end_ts, max_items=max_items
    )
    # verdicts and agreements come after their report: from the same start, to now
    given, cut_verdicts = feedback_store.items_of_kind(history, kind="verdict", since=start_ts, max_items=max_items)
    decided, cut_agreements = feedback_store.items_of_kind(
        history, kind="agreement", since=start_ts, max_items=max_items
    )
    return quality_report(
        reports=reports,
        verdicts=given,
        agreements=decided,
        since=start,
        until=until,
        cut=cut_reports or cut_verdicts or cut_agreements,
    )
