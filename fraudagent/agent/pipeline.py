"""The investigation pipeline: evidence -> facts -> policy -> constrained draft by the LLM -> verifier -> report.

The model chooses within what code allows (agent/drafting.py: a per-case schema the
server enforces while decoding); code writes the findings from the items the model
names and checks the narrative claim by claim. Claims that don't hold are removed
and listed; a draft whose typology or actions the checks refuse is sent back once
with the problems appended to the conversation (the server's prompt cache keeps
the rest), and if it is refused again the report is built by code from the facts
and the policy, saying what the model proposed and why it was refused.

Three steps, each usable alone: `prepare` (policy, evidence block, schema),
`draft_with_retries` (model calls and checks), `assemble` (the report). The
policy-only solver is `assemble` without a draft.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from fraudagent import store
from fraudagent.agent import fallback, injection
from fraudagent.agent.drafting import (
    CONFIDENCE,
    Choices,
    ModelDraft,
    choices,
    draft_schema,
    narrative_so_far,
    parse_draft,
    render_unknowns,
)
from fraudagent.agent.evidence import EvidenceItem, EvidencePack, Known, gather_evidence
from fraudagent.agent.facts import add_facts
from fraudagent.agent.findings import item_finding, timeline_finding
from fraudagent.agent.llm import chat_model, response_format, stream_call, token_counter
from fraudagent.agent.pii import Pseudonyms
from fraudagent.agent.policy import ClassifyRule, Policy, cached_policy, facts_of
from fraudagent.agent.prompts import (
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    feedback_prompt,
    render_evidence,
    rules_line,
    shown_ids,
    user_prompt,
)
from fraudagent.agent.report import (
    MAX_NARRATIVE_CHARS,
    Finding,
    InvestigationReport,
    ModelProposal,
    SimilarCaseOutcome,
    Timings,
    Usage,
)
from fraudagent.agent.scheduler import ModelScheduler, Priority, Turn
from fraudagent.agent.verifier import Verdict, Vocabulary, required_findings, verify, vocabulary
from fraudagent.core.errors import InvalidInput
from fraudagent.core.models import Action, Disposition, Typology
from fraudagent.core.settings import Settings
from fraudagent.store.tables import Tables
from fraudagent.tools.scores import ScoreProvider
from fraudagent.tools.similar_cases import PastCases

log = logging.getLogger(__name__)


class ModelFactory(Protocol):
    """Makes the chat model for a call (agent/llm.py `chat_model`, or a scripted stand-in in tests)."""

    def __call__(self, settings: Settings, *, model: str | None = ..., max_tokens: int | None = ...) -> Any: ...


@dataclass
class Investigator:
    """What a report needs: the stores, the settings, the policy, and a chat model factory (fraudagent/bootstrap.py
    builds one from the settings)."""

    settings: Settings
    history: Tables
    past_cases: PastCases | None = None
    model_factory: ModelFactory | None = field(default=None)
    score_provider: ScoreProvider | None = None  # None: the scores stored on the events
    policy: Policy | None = None  # None: the file in settings.policy_path, else the packaged default
    scheduler: ModelScheduler | None = None  # None: one for this investigator, sized by the settings

    def __post_init__(self) -> None:
        if self.policy is None:
            self.policy = cached_policy(self.settings.policy_path)
        if self.scheduler is None:
            s = self.settings
            self.scheduler = ModelScheduler(
                slots=s.llm_parallel_calls,
                background_slots=s.llm_background_calls,
                max_waiting=s.llm_queue_max,
                interactive_wait_s=s.llm_queue_wait_s,
            )

    def model_turn(self, priority: Priority, *, origin: int | None = None) -> AbstractContextManager[Turn]:
        """A slot on the model endpoint (agent/scheduler.py): interactive work before background work."""
        assert self.scheduler is not None
        return self.scheduler.turn(priority, origin=origin)

    def evidence(self, case_id: str, *, known: Known | None = None) -> EvidencePack:
        """The case's evidence pack with its facts; `known`: what the caller read already (agent/evidence.py)."""
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
            known=known,
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
                data={
                    "count": len(flags),
                    "flags": [{"id": f.evidence_id, "field": f.field, "signs": list(f.signs)} for f in flags],
                },
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
        text = injection.finding_text(
            injection.Flag(flag["id"], flag["field"], tuple(flag["signs"])), pack.case.case_id
        )
        findings.append(Finding(statement=text, evidence_ids=ids, source="injection"))
    return findings


ProgressFn = Callable[[str, dict[str, Any]], None]


def _quiet(_stage: str, _data: dict[str, Any]) -> None:
    return None


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


# A background draft gives the model back to each chat turn that needs it and queues again; past this many times it
# counts as a failed call (the report falls back), so a busy day cannot hold a summary job for ever.
MAX_PREEMPTIONS = 10
CLEARING = frozenset({Action.close_no_action, Action.approve_refund})


def _injection_problems(draft: ModelDraft, pack: EvidencePack, rule: ClassifyRule) -> list[str]:
    """With planted instructions in the case, a draft may not clear a case the policy's fraud rules match."""
    if "fact:injection_attempt" not in pack.items:
        return []
    clears = draft.typology is Typology.legitimate or any(a in CLEARING for a in draft.actions)
    if clears and rule.typology is not Typology.legitimate:
        return [
            f"the draft clears the case, but the facts match {rule.id} "
            "and the case holds instruction-like customer text"
        ]
    return []


@dataclass
class Prepared:
    """Everything a draft of one case needs, computed once by code."""

    pack: EvidencePack
    facts: dict[str, dict[str, Any]]
    rule: ClassifyRule
    choices: Choices
    evidence: str
    schema: dict[str, Any]
    vocab: Vocabulary
    flagged: set[str]
    pseudonyms: Pseudonyms | None
    count_tokens: Callable[[str], int]


def prepare(investigator: Investigator, pack: EvidencePack) -> Prepared:
    """Policy decision, the evidence block (budgeted in the model's tokens), and the case's draft schema."""
    settings = investigator.settings
    policy = investigator.policy
    assert policy is not None
    facts = facts_of(pack.items)
    rule = policy.classify_case(facts)
    decision = policy.decide(rule.typology, facts)
    flagged = (
        {f["id"] for f in pack.items["fact:injection_attempt"].data["flags"]}
        if "fact:injection_attempt" in pack.items
        else set()
    )
    count = token_counter(settings)
    evidence = render_evidence(
        pack,
        max_events=settings.evidence_prompt_events,
        token_budget=settings.evidence_prompt_tokens,
        policy_line=rules_line(rule.typology.value, rule.id, [a.value for a in decision.suggested]),
        flagged=flagged,
        count_tokens=count,
    )
    allowed = choices(pack, policy, facts, shown=shown_ids(evidence))
    pseudonyms = None
    if settings.llm_is_external:  # personal data leaves as stable tokens and comes back in the report
        names = [i.data["display_name"] for i in pack.items.values() if i.kind == "acct" and i.data.get("display_name")]
        pseudonyms = Pseudonyms(names)
        evidence = pseudonyms.mask(evidence)
    return Prepared(
        pack=pack,
        facts=facts,
        rule=rule,
        choices=allowed,
        evidence=evidence,
        schema=draft_schema(allowed),
        vocab=vocabulary(pack, evidence),
        flagged=flagged,
        pseudonyms=pseudonyms,
        count_tokens=count,
    )


@dataclass
class DraftOutcome:
    accepted: tuple[ModelDraft, Verdict] | None = None
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    problems: list[str] = field(default_factory=list)
    proposal: ModelProposal | None = None
    verification_s: float = 0.0
    preemptions: int = 0


def _unwrap(settings: Settings, text: str) -> str:
    """Strict json_schema endpoints answer {"draft": {...}} (their root must be an object with fixed keys)."""
    if settings.llm_schema_mode != "json_schema":
        return text
    try:
        return json.dumps(json.loads(text)["draft"])
    except (ValueError, KeyError, TypeError):
        return text


def draft_with_retries(
    investigator: Investigator,
    prepared: Prepared,
    *,
    model: str | None = None,
    progress: ProgressFn = _quiet,
    priority: Priority = "interactive",
) -> DraftOutcome:
    """Model calls and checks: the first acceptable draft wins; a refused one is sent back with its problems."""
    settings = investigator.settings
    policy = investigator.policy
    assert policy is not None
    out = DraftOutcome()
    llm = investigator.chat(model)
    body: dict[str, Any] = {}
    if settings.llm_send_max_tokens:
        body["max_tokens"] = settings.draft_max_tokens
    if (fmt := response_format(settings, prepared.schema)) is not None:
        body["response_format"] = fmt
    messages: list[BaseMessage] = [SystemMessage(SYSTEM_PROMPT), HumanMessage(user_prompt(prepared.evidence))]
    for attempt in range(1, 2 + settings.verifier_max_retries):
        out.attempts = attempt
        progress("drafting", {"attempt": attempt})

        def on_delta(delta: str, text: str, attempt: int = attempt) -> None:
            progress("token", {"attempt": attempt, "delta": delta, "narrative": narrative_so_far(text)})

        for _ in range(MAX_PREEMPTIONS + 1):
            with investigator.model_turn(priority) as turn:  # ModelBusy propagates: the caller answers 503 or retries
                call = stream_call(
                    llm,
                    messages,
                    body=body,
                    deadline_s=settings.draft_timeout_s,
                    on_delta=on_delta,
                    cancel=turn.preempted if priority == "background" else None,
                )
            out.usage.completion_tokens += call.completion_tokens
            if not call.preempted:
                break
            out.preemptions += 1  # a chat turn took the model: queue again, this attempt starts over
            progress("preempted", {"attempt": attempt})
        out.usage.llm_calls += 1
        out.usage.prompt_tokens += call.prompt_tokens or sum(prepared.count_tokens(str(m.content)) for m in messages)
        if call.error is not None and (not call.text or call.preempted):  # preempted too often: a failed call
            out.problems.append(f"model call failed: {call.error}")
            break
        v0 = time.perf_counter()
        draft, why = parse_draft(_unwrap(settings, call.text))
        if draft is None:
            found = [why or "no draft"]
        else:
            verdict = verify(
                draft,
                prepared.pack,
                policy,
                prepared.vocab,
                choices=prepared.choices,
                max_narrative=MAX_NARRATIVE_CHARS,
            )
            steered = _injection_problems(draft, prepared.pack, prepared.rule)
            verdict.fatal += steered
            verdict.problems += steered
            found = verdict.problems
            if verdict.acceptable:
                out.accepted = (draft, verdict)
            else:
                out.proposal = ModelProposal(
                    typology=draft.typology, actions=list(draft.actions), refused_because=list(verdict.fatal)
                )
        out.verification_s += time.perf_counter() - v0
        progress("checks", {"attempt": attempt, "ok": out.accepted is not None, "problems": found})
        if out.accepted is not None:
            break
        out.problems.extend(found)
        if call.error is not None:  # past the deadline: a second call would wait as long again
            out.problems.append(f"model call failed: {call.error}")
            break
        messages += [AIMessage(call.text), HumanMessage(feedback_prompt(found))]
    return out


def _code_narrative(pack: EvidencePack, typology: Typology) -> str:
    facts = [
        i.line
        for i in pack.items.values()
        if i.kind == "fact" and i.id not in ("fact:injection_attempt", "fact:trigger_event")
    ]
    lead = f"Case {pack.case.case_id} on account {pack.case.account_id}, read as {typology.value.replace('_', ' ')}"
    return lead + (": " + "; ".join(facts[:2]) + "." if facts else ".")


def _with_supporting_facts(pack: EvidencePack, findings: list[Finding]) -> list[Finding]:
    """The model's findings first, in its order; then every other computed fact, written by code, so the report
    stands on all the evidence code computed (what the deterministic report lists too), not only on what was picked."""
    cited = {ref for f in findings for ref in f.evidence_ids}
    rest = [
        item_finding(pack, i.id, "code")
        for i in pack.items.values()
        if i.kind == "fact" and i.id not in cited and i.id != "fact:injection_attempt"
    ]
    return [*findings, *rest]


def assemble(
    investigator: Investigator,
    prepared: Prepared,
    outcome: DraftOutcome | None,
    *,
    model: str | None = None,
    requested_by: str | None = None,
    timings: Timings,
    replay_of: str | None = None,
) -> InvestigationReport:
    """The report: the accepted draft with code-written findings, or the policy's report (outcome None: the policy
    solver; outcome without an accepted draft: the fallback, with what the model proposed)."""
    policy = investigator.policy
    assert policy is not None
    pack = prepared.pack
    model_name = model or investigator.settings.llm_model
    removed: list[str] = []
    problems: list[str] = list(outcome.problems) if outcome else []
    if outcome is not None and outcome.accepted is not None:
        draft, verdict = outcome.accepted
        path = "llm" if outcome.attempts == 1 else "llm_retried"
        removed = verdict.removable
        problems += verdict.problems
        narrative = verdict.narrative
        if prepared.pseudonyms is not None:
            narrative = prepared.pseudonyms.restore(narrative)
        if not narrative:  # every sentence failed the checks: say what code knows instead (the rest is the model's)
            narrative = _code_narrative(pack, draft.typology)
        final = policy.decide(draft.typology, prepared.facts)
        body: dict[str, Any] = {
            "narrative": narrative,
            "findings": _with_supporting_facts(
                pack, verdict.findings + required_findings(pack, policy, draft.typology, verdict.findings)
            ),
            "typology": draft.typology,
            "recommended_actions": list(dict.fromkeys(draft.actions)),
            "confidence": CONFIDENCE[draft.confidence],
            "unknowns": render_unknowns(draft.unknowns),
            "abstained": False,
            "policy_rules": [prepared.rule.id, *final.rules],
            "suggested_actions": final.suggested,
        }
    else:
        path = "fallback" if outcome is not None else "policy"
        body = fallback.deterministic_report(pack, policy)
    timeline = timeline_finding(pack)
    body["findings"] = [*body["findings"], *([timeline] if timeline else []), *injection_findings(pack)]
    usage = outcome.usage if outcome else Usage()
    return InvestigationReport(
        report_id=f"R-{uuid.uuid4().hex[:12]}",
        case_id=pack.case.case_id,
        created_at=datetime.now(timezone.utc),
        similar_cases=similar_outcomes(pack),
        similar_cases_summary=pack.similar_summary,
        path=path,  # type: ignore[arg-type]
        problems=problems,
        removed_claims=removed,
        model_proposal=outcome.proposal if outcome is not None and outcome.accepted is None else None,
        policy_version=policy.version,
        injection_flags=sorted(prepared.flagged),
        model={"fallback": f"deterministic ({model_name} rejected or unavailable)", "policy": "none (policy only)"}.get(
            path, model_name
        ),
        prompt_version=PROMPT_VERSION,
        evidence_hash=pack.snapshot_hash(),
        evidence_cuts=pack.cuts,
        evidence_sources=pack.sources,
        timings=timings,
        usage=usage,
        requested_by=requested_by,
        replay_of=replay_of,
        **body,
    )


def _gather(investigator: Investigator, case_id: str, progress: ProgressFn) -> tuple[EvidencePack, float]:
    t0 = time.perf_counter()
    pack = investigator.evidence(case_id)
    seconds = time.perf_counter() - t0
    progress("evidence", {"items": len(pack.items), "events": len(pack.events), "seconds": round(seconds, 3)})
    return pack, seconds


def report_from_pack(
    investigator: Investigator,
    pack: EvidencePack,
    *,
    model: str | None = None,
    requested_by: str | None = None,
    use_model: bool = True,
    evidence_s: float = 0.0,
    replay_of: str | None = None,
    progress: ProgressFn = _quiet,
    priority: Priority = "interactive",
) -> InvestigationReport:
    """Prepare, draft (unless `use_model` is off) and assemble over a gathered (or stored) evidence pack."""
    t1 = time.perf_counter()
    prepared = prepare(investigator, pack)
    outcome = (
        draft_with_retries(investigator, prepared, model=model, progress=progress, priority=priority)
        if use_model
        else None
    )
    verification_s = outcome.verification_s if outcome else 0.0
    timings = Timings(
        evidence_s=round(evidence_s, 3),
        drafting_s=round(time.perf_counter() - t1 - verification_s, 3),
        verification_s=round(verification_s, 4),
    )
    return assemble(
        investigator, prepared, outcome, model=model, requested_by=requested_by, timings=timings, replay_of=replay_of
    )


def draft_report(
    investigator: Investigator,
    case_id: str,
    *,
    model: str | None = None,
    requested_by: str | None = None,
    use_model: bool = True,
    progress: ProgressFn = _quiet,
    priority: Priority = "interactive",
) -> InvestigationReport:
    """The pipeline for one case. `use_model=False` is the policy-only solver: facts and policy, no LLM
    (path `policy`)."""
    pack, seconds = _gather(investigator, case_id, progress)
    return report_from_pack(
        investigator,
        pack,
        model=model,
        requested_by=requested_by,
        use_model=use_model,
        evidence_s=seconds,
        progress=progress,
        priority=priority,
    )


def draft_and_store(
    investigator: Investigator,
    case_id: str,
    *,
    model: str | None = None,
    requested_by: str | None = None,
    use_model: bool = True,
    progress: ProgressFn | None = None,
    priority: Priority = "interactive",
) -> InvestigationReport:
    """Draft a report and store it with its audit record: the evidence snapshot it was drafted from.
    `progress(stage, data)` hears evidence, drafting, token and checks events as they happen (the streaming route);
    `priority` orders the model call among others (background: summary jobs, eval runs)."""
    progress = progress or _quiet
    pack, seconds = _gather(investigator, case_id, progress)
    report = report_from_pack(
        investigator,
        pack,
        model=model,
        requested_by=requested_by,
        use_model=use_model,
        evidence_s=seconds,
        progress=progress,
        priority=priority,
    )
    store.reports.put_report(
        investigator.history, case_id=case_id, report=report.model_dump(mode="json"), snapshot=pack.model_dump_json()
    )
    return report


def policy_report(
    investigator: Investigator, known: Known, *, requested_by: str | None = None
) -> tuple[InvestigationReport, EvidencePack]:
    """The rule-based report (facts and policy, no model) of a case that need not be stored yet, with the pack it was
    built from; nothing is stored (alert intake writes the report with the case it opens, in one transaction)."""
    t0 = time.perf_counter()
    pack = investigator.evidence(known.record.case.case_id, known=known)
    report = report_from_pack(
        investigator, pack, requested_by=requested_by, use_model=False, evidence_s=time.perf_counter() - t0
    )
    return report, pack


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
    stored, snapshot = store.reports.report_with_snapshot(investigator.history, case_id=case_id, report_id=report_id)
    pack = EvidencePack.model_validate_json(snapshot)
    if pack.snapshot_hash() != stored["evidence_hash"]:
        raise InvalidInput(f"the snapshot of report {report_id} does not match its evidence hash", [])
    return report_from_pack(
        investigator, pack, model=model, requested_by=requested_by, use_model=use_model, replay_of=report_id
    )
