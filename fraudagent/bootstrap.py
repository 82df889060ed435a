"""The composition root: the one place that wires settings to the stores, the score provider and the models.

`build_investigator(settings)` opens what the settings name (DynamoDB tables, the past-case store, the score
provider); pass any of them to reuse one that is open or to stand in a fake. The CLI, the eval runner and the
benchmarks build their investigators here; the web app's factory (`fraudagent.api.app:app_from_env`, for
`uvicorn --factory`) builds its own through this function too.
"""

from __future__ import annotations

from fraudagent.agent.pipeline import Investigator, ModelFactory
from fraudagent.agent.policy import Policy
from fraudagent.agent.scheduler import ModelScheduler
from fraudagent.bundles.service import Scorer
from fraudagent.core.errors import InvalidInput
from fraudagent.core.settings import Settings
from fraudagent.retrieval.past_cases import PastCaseStore
from fraudagent.store.tables import Tables
from fraudagent.tools.scores import ScoreProvider, score_provider
from fraudagent.tools.similar_cases import PastCases


def build_investigator(
    settings: Settings,
    *,
    tables: Tables | None = None,
    past_cases: PastCases | None = None,
    similar_cases: bool = True,
    scores: ScoreProvider | None = None,
    model_factory: ModelFactory | None = None,
    scheduler: ModelScheduler | None = None,
    policy: Policy | None = None,
) -> Investigator:
    """An investigator on the configured stores. `similar_cases=False` leaves the past-case store out (no
    embedding model is loaded); `past_cases` passes one that is open. Each other keyword stands in for the
    configured one."""
    if past_cases is None and similar_cases:
        past_cases = PastCaseStore.from_settings(settings)
    return Investigator(
        settings=settings,
        history=tables if tables is not None else Tables.connect(settings),
        past_cases=past_cases,
        model_factory=model_factory,
        score_provider=scores if scores is not None else score_provider(settings),
        policy=policy,
        scheduler=scheduler,
    )


def load_scorer(settings: Settings) -> Scorer:
    """What scores events that arrive without scores: the configured endpoint, else the newest trained
    model, else the simulator's documented rules scorer."""
    from fraudagent.risk.model import RiskModel, latest_model_dir
    from fraudagent.risk.rules import score_events

    provider = score_provider(settings)
    if provider.name != "stored":
        return provider.score_events  # type: ignore[attr-defined]  # the remote providers also score bundles
    if settings.risk_model_dir is not None:
        return RiskModel.load(settings.risk_model_dir).score_events
    try:
        return RiskModel.load(latest_model_dir(settings.data_dir / "models")).score_events
    except InvalidInput:  # no trained model yet
        return score_events
