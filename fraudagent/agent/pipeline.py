"""The investigation pipeline: evidence -> facts -> policy -> draft by the LLM -> verifier -> report.

The model drafts; code checks. The verifier checks every claim (ids, numbers,
dates), the typology against the facts and the actions against the policy. A
draft that fails is sent back with the specific problems (bounded); at the last
attempt, claims that don't hold are removed if what remains stands on its own;
otherwise the report is built by code from the facts and the policy. The report
says which path produced it and lists what was removed.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from fraudagent.agent import fallback, injection
from fraudagent.agent.evidence import EvidenceItem, EvidencePack, gather_evidence
from fraudagent.agent.facts import add_facts
from fraudagent.agent.llm import chat_model, structured, usage_of
from fraudagent.agent.pii import Pseudonyms
from fraudagent.agent.policy import Policy, cached_policy, facts_of
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
from fraudagent.agent.verifier import Verdict, required_findings, verify, vocabulary
from fraudagent.core.errors import InvalidInput
from fraudagent.core.models import Action, Disposition, Typology
from fraudagent.core.settings import Settings
from fraudagent.tools import history as store
from fraudagent.tools.history import History

log = logging.getLogger(__name__)


@dataclass
class Investigator:
    """What a report needs: the stores, the settings, the policy, and a chat model factory."""

    settings: Settings
    history: History
    past_cases: Any | None = None
    model_factory: Any = field(default=None)
    score_provider: Any | None = None  # tools.scores.ScoreProvider; None: the scores stored on the events
    policy: Policy | None = None  # None: the file in settings.policy_path, else the packaged default

    def __post_init__(self) -> None:
        if self.policy is None:
            self.policy = cached_policy(self.settings.policy_path)

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
            timeouts=s.evidence_timeouts_s,
        )
        add_facts(pack)
        add_injection_fact(pack)
        return pack

    def chat(self, model: str | None) -> Any:
        return (self.model_factory or chat_model)(self.settings, model=model)


def add_injection_fact(pack: EvidencePack) -> list[injection.Flag]:
    """Scan the pack's customer-written text; record what reads like instructions as a fact of its own."""
    flags = injection.scan(pack)
    if flags:
        where = "; ".join(f"{f.field} ({f.evidence_id})" for f in flags[:5])
        pack.add(
            EvidenceItem(
                id="fact:injection_attempt",
                kind="fact",
                line=f"{len(flags)} customer-written text(s) contain instructions addressed to the reviewer: {where}",
                rests_on=[f.evidence_id.removeprefix("txn:") for f in flags if f.evidence_id.startswith("txn:")],
                data={"count": len(flags), "flags": [{"id": f.evidence_id, "field": f.field, "signs": list(f.signs)} for f in flags]},
            )
        )
    return flags


def injection_findings(pack: EvidencePack) -> list[Finding]:
    fact = pack.items.get("fact:injection_attempt")
    if fact is None:
        return []
    findings = []
    for flag in fact.data["flags"]:
        ids = ["fact:injection_attempt"] + ([flag["id"]] if flag["id"] in pack.items else [])
        text = injection.finding_text(injection.Flag(flag["id"], flag["field"], tuple(flag["signs"])), pack.case.case_id)
        findings.append(Finding(statement=text, evidence_ids=ids, source="injection"))
    return findings


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


CLEARING = frozenset({Action.close_no_action, Action.approve_refund})


def _injection_problems(draft: Draft, pack: EvidencePack, policy: Policy) -> list[str]:
    """With planted instructions in the case, a draft may not clear a case the policy's fraud rules match."""
    if "fact:injection_attempt" not in pack.items:
        return []
    rule = policy.classify_case(facts_of(pack.items))
    clears = draft.typology is Typology.legitimate or any(a in CLEARING for a in draft.recommended_actions)
    if clears and rule.typology is not Typology.legitimate:
        return [f"the draft clears the case, but the facts match {rule.id} and the case holds instruction-like customer text"]
    return []


def draft_report(
    investigator: Investigator,
    case_id: str,
    *,
    model: str | None = None,
    requested_by: str | None = None,
    use_model: bool = True,
) -> InvestigationReport:
    """The pipeline for one case. `use_model=False` is the policy-only solver: facts and policy, no LLM (path `policy`)."""
    t0 = time.perf_counter()
    pack = investigator.evidence(case_id)
    return report_from_pack(investigator, pack, model=model, requested_by=requested_by, use_model=use_model, started=t0)


def report_from_pack(
    investigator: Investigator,
    pack: EvidencePack,
    *,
    model: str | None = None,
    requested_by: str | None = None,
    use_model: bool = True,
    started: float | None = None,
    replay_of: str | None = None,
) -> InvestigationReport:
    """Policy, prompt, draft, verification and assembly over a gathered (or stored) evidence pack."""
    t0 = started if started is not None else time.perf_counter()
    case_id = pack.case.case_id
    settings = investigator.settings
    policy = investigator.policy
    assert policy is not None
    facts = facts_of(pack.items)
    rule = policy.classify_case(facts)
    decision = policy.decide(rule.typology, facts)
    policy_line = (
        f"POLICY (code): facts match {rule.id}; allowed: {', '.join(a.value for a in decision.allowed)};"
        f" suggested: {', '.join(a.value for a in decision.suggested)}"
    )
    flagged = {f["id"] for f in pack.items["fact:injection_attempt"].data["flags"]} if "fact:injection_attempt" in pack.items else set()
    evidence = render_evidence(
        pack, max_events=settings.evidence_prompt_events, token_budget=settings.evidence_prompt_tokens,
        policy_line=policy_line, flagged=flagged,
    )  # fmt: skip
    pseudonyms = None
    if settings.llm_is_external:  # personal data leaves as stable tokens and comes back in the report
        names = [i.data["display_name"] for i in pack.items.values() if i.kind == "acct" and i.data.get("display_name")]
        pseudonyms = Pseudonyms(names)
        evidence = pseudonyms.mask(evidence)
    vocab = vocabulary(pack, evidence)
    t1 = time.perf_counter()

    usage = Usage()
    problems: list[str] = []
    feedback: list[str] | None = None
    accepted: tuple[Draft, Verdict] | None = None
    path = "llm"
    verification_s = 0.0
    model_name = model or settings.llm_model
    runnable = structured(investigator.chat(model), Draft) if use_model else None
    attempts = 1 + settings.verifier_max_retries if use_model else 0
    for attempt in range(attempts):
        messages = [SystemMessage(SYSTEM_PROMPT), HumanMessage(user_prompt(evidence, feedback))]
        try:
            result = runnable.invoke(messages)  # type: ignore[union-attr]
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
            verdict = verify(draft, pack, policy, vocab, max_narrative=MAX_NARRATIVE_CHARS, max_findings=MAX_FINDINGS)
            steered = _injection_problems(draft, pack, policy)
            verdict.fatal += steered
            verdict.problems += steered
            found = verdict.problems
            last = attempt == attempts - 1
            if verdict.ok or (last and not verdict.fatal):
                accepted = (draft, verdict)  # at the last attempt, claims that don't hold are removed
        verification_s += time.perf_counter() - v0
        if accepted:
            path = "llm" if attempt == 0 else "llm_retried"
            break
        problems.extend(found)
        feedback = found
    t2 = time.perf_counter()

    removed: list[str] = []
    if accepted:
        draft, verdict = accepted
        removed = verdict.removable if not verdict.ok else []
        problems.extend(verdict.problems if not verdict.ok else [])
        typology = draft.typology
        findings = verdict.findings + required_findings(pack, policy, typology, verdict.findings)
        actions = list(dict.fromkeys(draft.recommended_actions))
        if draft.insufficient_evidence:
            actions = [Action.escalate]  # abstaining hands the case to a human; nothing else is recommended
        if pseudonyms is not None:
            verdict.narrative = pseudonyms.restore(verdict.narrative)
            verdict.findings = [f.model_copy(update={"statement": pseudonyms.restore(f.statement)}) for f in verdict.findings]
            draft.unknowns = [pseudonyms.restore(u) for u in draft.unknowns]
        body: dict[str, Any] = {
            "narrative": verdict.narrative,
            "findings": findings,
            "typology": typology,
            "recommended_actions": actions,
            "confidence": round(draft.confidence, 2),
            "unknowns": draft.unknowns,
            "abstained": draft.insufficient_evidence,
        }
        final = policy.decide(typology, facts)
        body["policy_rules"] = [rule.id, *final.rules]
        body["suggested_actions"] = final.suggested
    else:
        path = "fallback" if use_model else "policy"
        body = fallback.deterministic_report(pack, policy)
    body["findings"] = [*body["findings"], *injection_findings(pack)]
    return InvestigationReport(
        report_id=f"R-{uuid.uuid4().hex[:12]}",
        case_id=case_id,
        created_at=datetime.now(timezone.utc),
        similar_cases=similar_outcomes(pack),
        similar_cases_summary=pack.similar_summary,
        path=path,  # type: ignore[arg-type]
        problems=problems,
        removed_claims=removed,
        policy_version=policy.version,
        injection_flags=sorted(flagged),
        model={"fallback": f"deterministic ({model_name} rejected or unavailable)", "policy": "none (policy only)"}.get(path, model_name),
        prompt_version=PROMPT_VERSION,
        evidence_hash=pack.snapshot_hash(),
        evidence_cuts=pack.cuts,
        evidence_sources=pack.sources,
        timings=Timings(evidence_s=round(t1 - t0, 3), drafting_s=round(t2 - t1 - verification_s, 3), verification_s=round(verification_s, 4)),
        usage=usage,
        requested_by=requested_by,
        replay_of=replay_of,
        **body,
    )


def draft_and_store(
    investigator: Investigator,
    case_id: str,
    *,
    model: str | None = None,
    requested_by: str | None = None,
    use_model: bool = True,
) -> InvestigationReport:
    """Draft a report and store it with its audit record: the evidence snapshot it was drafted from."""
    t0 = time.perf_counter()
    pack = investigator.evidence(case_id)
    report = report_from_pack(investigator, pack, model=model, requested_by=requested_by, use_model=use_model, started=t0)
    store.put_report(investigator.history, case_id=case_id, report=report.model_dump(mode="json"), snapshot=pack.model_dump_json())
    return report


def replay_report(
    investigator: Investigator,
    case_id: str,
    report_id: str,
    *,
    model: str | None = None,
    requested_by: str | None = None,
    use_model: bool = True,
) -> InvestigationReport:
    """Draft again from the exact evidence a stored report saw (its snapshot), e.g. with another model or policy."""
    stored, snapshot = store.report_with_snapshot(investigator.history, case_id=case_id, report_id=report_id)
    pack = EvidencePack.model_validate_json(snapshot)
    if pack.snapshot_hash() != stored["evidence_hash"]:
        raise InvalidInput(f"the snapshot of report {report_id} does not match its evidence hash", [])
    return report_from_pack(investigator, pack, model=model, requested_by=requested_by, use_model=use_model, replay_of=report_id)
