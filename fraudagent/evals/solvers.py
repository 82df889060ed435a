"""The solvers an eval compares: `policy` (facts + rules, no LLM), `agent` (our pipeline), `naive`
(a plain LangChain agent, what a team would build first: see evals/naive.py).

A solver takes the investigator (the run's isolated stores) and a case id and
returns an `InvestigationReport`; an exception is recorded as the case's error.
"""

from __future__ import annotations

from collections.abc import Callable

from fraudagent.agent.pipeline import Investigator, draft_report
from fraudagent.agent.report import InvestigationReport
from fraudagent.evals.models import SolverName

Solver = Callable[[Investigator, str, str | None], InvestigationReport]


def policy_report(investigator: Investigator, case_id: str, model: str | None = None) -> InvestigationReport:
    """The deterministic report: computed facts and the policy file, no model call. The pipeline's own code with
    the model off (path `policy`), so it is exactly what the agent falls back to."""
    return draft_report(investigator, case_id, requested_by="eval", use_model=False)


def agent_report(investigator: Investigator, case_id: str, model: str | None = None) -> InvestigationReport:
    return draft_report(investigator, case_id, model=model, requested_by="eval", priority="background")


def naive_report(investigator: Investigator, case_id: str, model: str | None = None) -> InvestigationReport:
    from fraudagent.evals.naive import naive_report as run

    return run(investigator, case_id, model=model)


SOLVERS: dict[SolverName, Solver] = {"policy": policy_report, "agent": agent_report, "naive": naive_report}
