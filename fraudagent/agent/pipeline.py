"""The investigation pipeline: evidence -> facts -> draft by the LLM -> checks -> report.

The model drafts; code checks. A draft whose citations don't resolve is sent
back once with the problems; if it still fails (or the model is unreachable)
the report is built by code from the facts, and says so in `path`.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from fraudagent.agent import fallback
from fraudagent.agent.evidence import EvidencePack, gather_evidence
from fraudagent.agent.facts import add_facts
from fraudagent.agent.llm import chat_model, structured, usage_of
from fraudagent.agent.prompts import PROMPT_VERSION, SYSTEM_PROMPT, render_evidence, user_prompt
from fraudagent.agent.report import (
    MAX_FINDINGS,
    MAX_NARRATIVE_CHARS,
    Draft,
    Finding,
    InvestigationReport,
    SimilarCaseOutcome,
    Timings,
    Usage,
)
from fraudagent.core.models import Action, Disposition, Typology
from fraudagent.core.settings import Settings
from fraudagent.tools import history as store
from fraudagent.tools.history import History

log = logging.getLogger(__name__)

# Coherence of typology and action; the versioned policy file will own these rules.
HIGH_IMPACT = frozenset({Action.lock_account, Action.revoke_entitlements, Action.block_instrument, Action.void_gift_cards})
CLEARING = frozenset({Action.close_no_action, Action.approve_refund})


@dataclass
class Investigator:
    """What a report needs: the stores, the settings, and a chat model factory."""

    settings: Settings
    history: History
    past_cases: Any | None = None
    model_factory: Any = field(default=None)
    score_provider: Any | None = None  # tools.scores.ScoreProvider; None: the scores stored on the events

    def evidence(self, case_id: str) -> EvidencePack:
        s = self.settings
        pack = gather_evidence(
            history=self.history,
            case_id=case_id,
            past_cases=self.past_cases,
            window_days=s.evidence_window_days,
            max_events=s.evidence_max_events,
            max_linked=s.linked_max_accounts,
            similar_k=s.similar_cases,
            score_provider=self.score_provider,
        )
        add_facts(pack)
        return pack

    def chat(self, model: str | None) -> Any:
        return (self.model_factory or chat_model)(self.settings, model=model)


def check_draft(draft: Draft, pack: EvidencePack) -> tuple[list[Finding], list[str]]:
    """Resolve every cited id against the pack; list what does not hold."""
    problems: list[str] = []
    findings: list[Finding] = []
    for n, finding in enumerate(draft.findings, start=1):
        resolved = [pack.resolve(ref) for ref in finding.evidence_ids]
        bad = [ref for ref, ok in zip(finding.evidence_ids, resolved, strict=True) if ok is None]
        if bad:
            problems.append(f"finding {n} cites ids that are not in the evidence: {', '.join(bad)}")
        good = list(dict.fromkeys(r for r in resolved if r))
        if good:
            findings.append(Finding(statement=finding.statement.strip(), evidence_ids=good))
    if not findings:
        problems.append("no finding cites valid evidence")
    if not draft.narrative.strip():
        problems.append("the narrative is empty")
    if len(draft.narrative) > MAX_NARRATIVE_CHARS:
        problems.append(f"the narrative is longer than {MAX_NARRATIVE_CHARS} characters")
    if len(draft.findings) > MAX_FINDINGS:
        problems.append(f"more than {MAX_FINDINGS} findings")
    if not 0.0 <= draft.confidence <= 1.0:
        problems.append("confidence must be between 0 and 1")
    for action in draft.recommended_actions:
        if draft.typology is Typology.legitimate and action in HIGH_IMPACT:
            problems.append(f"{action.value} is not a response to a legitimate case")
        if draft.typology is not Typology.legitimate and action in CLEARING:
            problems.append(f"{action.value} does not respond to a {draft.typology.value} case")
    return findings, problems


def _unparsed(result: dict[str, Any], completion_tokens: int) -> str:
    """Why a structured call gave no draft, in words the model can act on when it is sent back."""
    raw = result.get("raw")
    if raw is not None and getattr(raw, "invalid_tool_calls", None):
        return f"the Draft call was not valid JSON (cut off after {completion_tokens} tokens?); be brief"
    if result.get("parsing_error") is not None:
        return f"the Draft call did not match the schema: {str(result['parsing_error'])[:200]}"
    return "no Draft call was returned"


def similar_outcomes(pack: EvidencePack) -> list[SimilarCaseOutcome]:
    return [
        SimilarCaseOutcome(
            case_id=item.id.removeprefix("case:"),
            similarity=item.data["similarity"],
            typology=Typology(item.data["typology"]),
            disposition=Disposition(item.data["disposition"]),
            actions=[Action(a) for a in item.data["actions"]],
        )
        for item in pack.items.values()
        if item.kind == "case"
    ]


def draft_report(
    investigator: Investigator, case_id: str, *, model: str | None = None, requested_by: str | None = None
) -> InvestigationReport:
    settings = investigator.settings
    t0 = time.perf_counter()
    pack = investigator.evidence(case_id)
    t1 = time.perf_counter()
    evidence = render_evidence(pack, max_events=settings.evidence_prompt_events, token_budget=settings.evidence_prompt_tokens)
    usage = Usage()
    problems: list[str] = []
    feedback: list[str] | None = None
    accepted: tuple[Draft, list[Finding]] | None = None
    path = "llm"
    verification_s = 0.0
    model_name = model or settings.llm_model
    runnable = structured(investigator.chat(model), Draft)
    for attempt in range(2):
        messages = [SystemMessage(SYSTEM_PROMPT), HumanMessage(user_prompt(evidence, feedback))]
        try:
            result = runnable.invoke(messages)
        except Exception as error:  # unreachable model, timeout, server error: fall back, say why
            problems.append(f"model call failed: {type(error).__name__}")
            log.warning("model call failed for case %s: %s", case_id, type(error).__name__)
            break
        usage.llm_calls += 1
        prompt_tokens, completion_tokens = usage_of(result.get("raw"))
        usage.prompt_tokens += prompt_tokens
        usage.completion_tokens += completion_tokens
        v0 = time.perf_counter()
        draft: Draft | None = result.get("parsed")
        if draft is None:
            found = [_unparsed(result, completion_tokens)]
        else:
            findings, found = check_draft(draft, pack)
            if not found:
                accepted = (draft, findings)
        verification_s += time.perf_counter() - v0
        if accepted:
            path = "llm" if attempt == 0 else "llm_retried"
            break
        problems.extend(found)
        feedback = found
    t2 = time.perf_counter()

    if accepted:
        draft, findings = accepted
        body = {
            "narrative": draft.narrative.strip(),
            "findings": findings,
            "typology": draft.typology,
            "recommended_actions": list(dict.fromkeys(draft.recommended_actions)),
            "confidence": round(draft.confidence, 2),
            "unknowns": draft.unknowns,
        }
    else:
        path = "fallback"
        body = fallback.deterministic_report(pack)
    return InvestigationReport(
        report_id=f"R-{uuid.uuid4().hex[:12]}",
        case_id=case_id,
        created_at=datetime.now(timezone.utc),
        similar_cases=similar_outcomes(pack),
        similar_cases_summary=pack.similar_summary,
        path=path,  # type: ignore[arg-type]
        problems=problems,
        model=model_name if path != "fallback" else f"deterministic ({model_name} rejected or unavailable)",
        prompt_version=PROMPT_VERSION,
        evidence_hash=pack.snapshot_hash(),
        evidence_cuts=pack.cuts,
        evidence_sources=pack.sources,
        timings=Timings(evidence_s=round(t1 - t0, 3), drafting_s=round(t2 - t1 - verification_s, 3), verification_s=round(verification_s, 4)),
        usage=usage,
        requested_by=requested_by,
        **body,
    )


def draft_and_store(
    investigator: Investigator, case_id: str, *, model: str | None = None, requested_by: str | None = None
) -> InvestigationReport:
    report = draft_report(investigator, case_id, model=model, requested_by=requested_by)
    store.put_report(investigator.history, case_id=case_id, report=report.model_dump(mode="json"))
    return report
