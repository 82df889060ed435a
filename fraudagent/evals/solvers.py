"""The solvers an eval compares: `policy` (facts + rules, no LLM), `agent` (our pipeline), `naive`
(a plain LangChain agent, what a team would build first: see evals/naive.py).

A solver takes the investigator (the run's isolated stores) and a case id and
returns an `InvestigationReport`; an exception is recorded as the case's error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from fraudagent.agent import fallback
from fraudagent.agent.pipeline import Investigator, draft_report, injection_findings, similar_outcomes
from fraudagent.agent.report import InvestigationReport, Timings, Usage
from fraudagent.evals.models import SolverName

Solver = Callable[[Investigator, str, str | None], InvestigationReport]


def policy_report(investigator: Investigator, case_id: str, model: str | None = None) -> InvestigationReport:
    """The deterministic report: computed facts and the policy file, no model call (what the pipeline
    falls back to, plus the injection detector's findings, as the pipeline adds them)."""
    policy = investigator.policy
    assert policy is not None
    t0 = time.perf_counter()
    pack = investigator.evidence(case_id)
    t1 = time.perf_counter()
    body = fallback.deterministic_report(pack, policy)
    body["findings"] = [*body["findings"], *injection_findings(pack)]
    flagged = sorted({f["id"] for f in pack.items["fact:injection_attempt"].data["flags"]}) if "fact:injection_attempt" in pack.items else []
    return InvestigationReport(
        report_id=f"R-{uuid.uuid4().hex[:12]}",
        case_id=case_id,
        created_at=datetime.now(timezone.utc),
        similar_cases=similar_outcomes(pack),
        similar_cases_summary=pack.similar_summary,
        path="fallback",
        policy_version=policy.version,
        injection_flags=flagged,
        model="deterministic (policy solver, no model)",
        prompt_version="none",
        evidence_hash=pack.snapshot_hash(),
        evidence_cuts=pack.cuts,
        evidence_sources=pack.sources,
        timings=Timings(evidence_s=round(t1 - t0, 3), verification_s=round(time.perf_counter() - t1, 4)),
        usage=Usage(),
        requested_by="eval",
        **body,
    )


def agent_report(investigator: Investigator, case_id: str, model: str | None = None) -> InvestigationReport:
    return draft_report(investigator, case_id, model=model, requested_by="eval")


def naive_report(investigator: Investigator, case_id: str, model: str | None = None) -> InvestigationReport:
    from fraudagent.evals.naive import naive_report as run

    return run(investigator, case_id, model=model)


SOLVERS: dict[SolverName, Solver] = {"policy": policy_report, "agent": agent_report, "naive": naive_report}
