"""Deciding a case: close it (once), audit it, and index it as a past case so the next similar case finds it.

Closing and its audit record are one DynamoDB transaction conditioned on the case being open, so two
analysts deciding at once get one success and one 409. Indexing comes after: if the past-case store is
down the decision stands, the result says `indexed: false`, and the case can be indexed again later
(`fraudagent export` + `fraudagent cases index`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from fraudagent import store
from fraudagent.agent import fallback
from fraudagent.agent.pipeline import Investigator
from fraudagent.agent.report import InvestigationReport
from fraudagent.core.errors import Conflict
from fraudagent.core.models import PastCase
from fraudagent.decisions.models import Agreement, DecisionRequest, DecisionResult
from fraudagent.evals.scorers import derive_disposition
from fraudagent.retrieval.documents import IndexedCase, Provenance
from fraudagent.store import audit
from fraudagent.store import feedback as feedback_store
from fraudagent.store.cases import CaseDecision, CaseRecord

log = logging.getLogger(__name__)
NARRATIVE_MAX = 3900  # PastCase.narrative holds 4000


def decide(
    investigator: Investigator, *, case_id: str, request: DecisionRequest, analyst: str, key_id: str
) -> DecisionResult:
    record = store.cases.get_case(investigator.history, case_id)  # 404 first
    if record.status == "closed":
        raise Conflict("case", case_id, "the case is closed; a decision is made once")
    decision = CaseDecision(
        disposition=request.disposition,
        typology=request.typology,
        actions=request.actions,
        notes=request.notes,
        analyst=analyst,
        decided_at=datetime.now(timezone.utc),
    )
    latest = store.reports.reports(investigator.history, case_id, limit=1)
    agreement = agreement_with(latest[0], decision) if latest else None
    event = audit.new_event(
        subject=audit.case_subject(case_id),
        action="case.decided",
        actor=analyst,
        details={
            "key_id": key_id,
            "disposition": decision.disposition.value,
            "typology": decision.typology.value,
            "actions": [a.value for a in decision.actions],
            "notes_chars": len(decision.notes),
            "report_id": agreement.report_id if agreement else None,
            "agreed": agreement.agreed if agreement else None,
        },
    )
    also = []
    if agreement is not None:
        also.append(
            feedback_store.agreement_put(
                investigator.history, agreement.model_dump(mode="json", exclude={"at"}), at=agreement.at
            )
        )
    store.cases.close_case(investigator.history, case_id=case_id, decision=decision, event=event, also=also)
    indexed = _index(investigator, record, decision, latest[0] if latest else None)
    return DecisionResult(
        case_id=case_id,
        status="closed",
        decision=decision,
        audit_id=event.audit_id,
        indexed=indexed,
        agreement=agreement,
    )


def agreement_with(report: dict[str, Any], decision: CaseDecision) -> Agreement:
    """The decision compared with a report's recommendation: typology, disposition (the one the report implies, as
    the evals derive it) and actions (the main recommended action taken; the overlap of both sets)."""
    parsed = InvestigationReport.model_validate(report)
    recommended, taken = parsed.recommended_actions, decision.actions
    union = set(recommended) | set(taken)
    implied = derive_disposition(parsed)
    typology_match = parsed.typology is decision.typology
    disposition_match = implied is decision.disposition
    action_match = bool(recommended) and recommended[0] in taken
    return Agreement(
        case_id=parsed.case_id,
        report_id=parsed.report_id,
        model=parsed.model,
        prompt_version=parsed.prompt_version,
        policy_version=parsed.policy_version,
        path=parsed.path,
        report_typology=parsed.typology,
        report_disposition=implied,
        recommended_actions=recommended,
        decided_typology=decision.typology,
        decided_disposition=decision.disposition,
        actions_taken=taken,
        typology_match=typology_match,
        disposition_match=disposition_match,
        action_match=action_match,
        action_overlap=round(len(set(recommended) & set(taken)) / len(union), 4) if union else 0.0,
        agreed=typology_match and disposition_match and action_match,
        at=decision.decided_at,
    )


def _index(
    investigator: Investigator, record: CaseRecord, decision: CaseDecision, latest: dict[str, Any] | None
) -> bool:
    if investigator.past_cases is None:
        return False
    try:
        indexed = IndexedCase(
            case=PastCase(
                case_id=record.case.case_id,
                account_id=record.case.account_id,
                closed_at=decision.decided_at,
                typology=decision.typology,
                disposition=decision.disposition,
                actions=decision.actions,
                narrative=_narrative(investigator, record, decision, latest),
            ),
            provenance=Provenance.analyst_decision,
            region=_region(investigator, record),
            linked_account_ids=[a for a in record.account_ids if a != record.case.account_id],
        )
        investigator.past_cases.upsert([indexed])
        return True
    except Exception as error:  # the decision stands; say it was not indexed
        log.warning("decided case %s was not indexed: %s", record.case.case_id, type(error).__name__)
        return False


def _narrative(
    investigator: Investigator, record: CaseRecord, decision: CaseDecision, latest: dict[str, Any] | None
) -> str:
    """What happened (the latest report's narrative, read once by `decide`, else the facts-only one) and the
    analyst's notes."""
    if latest is not None:
        what = str(latest.get("narrative", ""))
    else:
        policy = investigator.policy
        assert policy is not None  # set when the investigator is made
        what = str(fallback.deterministic_report(investigator.evidence(record.case.case_id), policy)["narrative"])
    text = what.strip()
    if decision.notes.strip():
        text += "\nAnalyst notes: " + decision.notes.strip()
    return text[:NARRATIVE_MAX] or f"{decision.typology.value} case closed as {decision.disposition.value}"


def _region(investigator: Investigator, record: CaseRecord) -> str:
    account = store.events.get_accounts(investigator.history, [record.case.account_id]).get(record.case.account_id)
    return account.country if account else ""
