"""The `naive` baseline: a plain LangChain 1.x `create_agent` with the same tools and a straightforward
prompt, returning the report through the agent's structured output (`response_format`).

This is what a team would build first, kept honest on purpose: no evidence
ids checked, no facts computed, no policy, customer text passed through as
the tools return it, no retry, no fallback. Whatever goes wrong (no
structured response, invented arguments, a server error) is the case's error.

The one accommodation for the local llama.cpp server (DESIGN.md): an
assistant message that carries tool calls is sent with `content: ""` instead
of `null`, which the server answers with HTTP 500. Nothing else is adapted
(the agent asks for tool_choice "any" as LangChain does; small models are
unreliable with it, and that is part of what this baseline measures).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from langchain.agents import create_agent
from langchain.agents.structured_output import ToolStrategy
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import StructuredTool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from fraudagent import store
from fraudagent.agent.pipeline import Investigator
from fraudagent.agent.report import Finding, InvestigationReport, Timings, Usage
from fraudagent.core.models import Action, Typology
from fraudagent.tools.similar_cases import similar_cases_tool

NAIVE_PROMPT_VERSION = "naive-1"
NAIVE_PROMPT = (
    "You are a fraud analyst assistant for a digital game store. Use the tools to look at the case's "
    "events, the account, linked accounts and similar past cases. Then write an investigation report: "
    "a short narrative, findings that cite the ids of the events they rest on (e.g. txn:E-123), the "
    "fraud typology, recommended actions from the catalogue, a confidence between 0 and 1 and what is unknown."
)


class NaiveFinding(BaseModel):
    statement: str
    evidence_ids: list[str] = Field(description="ids of the events or records this rests on")


class NaiveReport(BaseModel):
    """The investigation report."""

    narrative: str
    findings: list[NaiveFinding]
    typology: Typology
    recommended_actions: list[Action]
    confidence: float
    unknowns: list[str] = Field(default_factory=list)


class LlamaCppChat(ChatOpenAI):
    """ChatOpenAI that sends `content: ""` rather than null on assistant tool-call messages (llama.cpp 500s on null)."""

    def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        payload = super()._get_request_payload(input_, stop=stop, **kwargs)
        for message in payload.get("messages", []):
            if message.get("content") is None:
                message["content"] = ""
        return payload


def _event_record(scored: store.events.ScoredEvent) -> dict[str, Any]:
    record = {"id": f"txn:{scored.event.event_id}"} | scored.event.model_dump(mode="json", exclude_none=True)
    if scored.score is not None:
        record["risk_score"] = scored.score.score
        record["reasons"] = [r.feature for r in scored.score.reasons[:3]]
    return record


def case_tools(investigator: Investigator, case_id: str) -> list[StructuredTool]:
    """The case's tools, bound to it: events, account, linked accounts, similar past cases."""
    history = investigator.history
    record = store.cases.get_case(history, case_id)
    case = record.case
    start = case.opened_at - timedelta(days=investigator.settings.evidence_window_days)
    end = case.opened_at + timedelta(days=1)

    def case_events(limit: int = 15) -> str:
        """The case account's most recent events (purchases, logins, refunds...) with risk scores."""
        events, _ = store.events.account_events(
            history, case.account_id, start=start, end=end, max_items=max(1, min(limit, 50))
        )
        return json.dumps([_event_record(e) for e in events])

    def account_profile() -> str:
        """The case account's profile."""
        accounts = store.events.get_accounts(history, [case.account_id])
        account = accounts.get(case.account_id)
        return json.dumps(
            {
                "case": case.model_dump(mode="json", exclude_none=True),
                "account": account.model_dump(mode="json", exclude_none=True) if account else None,
            }
        )

    def linked_accounts() -> str:
        """Other accounts that used the same devices or payment instruments."""
        events, _ = store.events.account_events(history, case.account_id, start=start, end=end, max_items=200)
        found: dict[str, list[str]] = {}
        links: tuple[tuple[store.events.LinkKind, str], ...] = (
            ("device", "device_id"),
            ("instrument", "instrument_id"),
        )
        for kind, attr in links:
            for value in list(dict.fromkeys(getattr(e.event, attr) for e in events if getattr(e.event, attr)))[-3:]:
                linked, _ = store.events.linked_events(history, kind, value, start=start, end=end, max_items=100)
                for e in linked:
                    if e.event.account_id != case.account_id:
                        found.setdefault(e.event.account_id, []).append(f"{kind} {value}")
        return json.dumps([{"account_id": a, "shared": sorted(set(v))} for a, v in sorted(found.items())][:10])

    tools = [
        StructuredTool.from_function(case_events),
        StructuredTool.from_function(account_profile),
        StructuredTool.from_function(linked_accounts),
    ]
    if investigator.past_cases is not None:
        tools.append(similar_cases_tool(investigator.past_cases, exclude_account_ids=[case.account_id]))
    return tools


def naive_chat(investigator: Investigator, model: str | None) -> Any:
    if investigator.model_factory is not None:  # tests: a scripted model
        return investigator.model_factory(investigator.settings, model=model)
    s = investigator.settings
    return LlamaCppChat(
        base_url=s.llm_base_url,
        api_key=s.llm_api_key,
        model=model or s.llm_model,
        temperature=s.llm_temperature,
        max_tokens=s.llm_max_tokens,
        timeout=s.llm_timeout_s,
        max_retries=s.llm_max_retries,
    )


class NaiveFailure(RuntimeError):
    """The naive agent ended without a report; the message says how (and the usage it spent)."""

    def __init__(self, message: str, usage: Usage) -> None:
        super().__init__(message)
        self.usage = usage


def _usage(messages: list[Any]) -> Usage:
    usage = Usage()
    for m in messages:
        if isinstance(m, AIMessage):
            meta: dict[str, Any] = dict(m.usage_metadata or {})
            usage.prompt_tokens += int(meta.get("input_tokens", 0))
            usage.completion_tokens += int(meta.get("output_tokens", 0))
            usage.llm_calls += 1
    return usage


def naive_report(investigator: Investigator, case_id: str, *, model: str | None = None) -> InvestigationReport:
    t0 = time.perf_counter()
    agent = create_agent(
        model=naive_chat(investigator, model),
        tools=case_tools(investigator, case_id),
        system_prompt=NAIVE_PROMPT,
        response_format=ToolStrategy(NaiveReport),
    )
    try:
        state = agent.invoke(
            {"messages": [HumanMessage(f"Investigate case {case_id} and write the report.")]},
            config={"recursion_limit": 12},
        )
    except Exception as error:  # recorded as the case's failure, not repaired
        raise NaiveFailure(f"agent failed: {type(error).__name__}: {str(error)[:200]}", Usage()) from error
    usage = _usage(state.get("messages", []))
    parsed: NaiveReport | None = state.get("structured_response")
    if parsed is None:
        raise NaiveFailure(f"no structured response after {usage.llm_calls} model call(s)", usage)
    elapsed = time.perf_counter() - t0
    return InvestigationReport(
        report_id=f"R-{uuid.uuid4().hex[:12]}",
        case_id=case_id,
        created_at=datetime.now(timezone.utc),
        narrative=parsed.narrative,
        findings=[Finding(statement=f.statement, evidence_ids=f.evidence_ids) for f in parsed.findings],
        typology=parsed.typology,
        recommended_actions=parsed.recommended_actions,
        confidence=parsed.confidence,
        unknowns=parsed.unknowns,
        similar_cases=[],
        path="llm",
        model=model or investigator.settings.llm_model,
        prompt_version=NAIVE_PROMPT_VERSION,
        evidence_hash="",
        timings=Timings(drafting_s=round(elapsed, 3)),
        usage=usage,
        requested_by="eval",
    )
