"""`fraudagent model …`: train the reference risk model with its model card, and serve it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fraudagent.cli.support import cli_settings as _settings
from fraudagent.cli.support import console, err
from fraudagent.cli.support import failure as _fail
from fraudagent.core.errors import FraudAgentError
from fraudagent.core.settings import Settings

if TYPE_CHECKING:  # the heavy modules load only when a command runs
    from fraudagent.risk.training import TrainingRun

model_app = typer.Typer(help="The reference risk model: train it, serve it.", no_args_is_help=True)


def models_dir(settings: Settings) -> Path:
    return settings.data_dir / "models"


def model_dir(settings: Settings, override: Path | None) -> Path:
    """The artefact to serve: --model, else FRAUDAGENT_RISK_MODEL_DIR, else the newest one trained here."""
    from fraudagent.risk.model import latest_model_dir

    return override or settings.risk_model_dir or latest_model_dir(models_dir(settings))


@model_app.command()
def train(
    seed: Annotated[int | None, typer.Option(help="world and training seed [default: FRAUDAGENT_SIM_SEED]")] = None,
    accounts: Annotated[int | None, typer.Option(min=10, help="accounts [default: FRAUDAGENT_SIM_ACCOUNTS]")] = None,
    days: Annotated[int | None, typer.Option(min=7, help="simulated days [default: FRAUDAGENT_SIM_DAYS]")] = None,
    out: Annotated[Path | None, typer.Option(help="folder of artefacts [default: FRAUDAGENT_DATA_DIR/models]")] = None,
) -> None:
    """Train ref-gbm-<n> on the simulated store; write model.txt, meta.json and the model card."""
    from fraudagent.risk.card import write_model_card
    from fraudagent.risk.model import next_version
    from fraudagent.risk.training import train_model
    from fraudagent.sim.world import simulated_store

    settings = _settings()
    seed = settings.sim_seed if seed is None else seed
    accounts, days = accounts or settings.sim_accounts, days or settings.sim_days
    parent = out or models_dir(settings)
    version = next_version(parent)
    try:
        with err.status(f"simulating {accounts} accounts over {days} days (seed {seed})"):
            world = simulated_store(seed, accounts, days)
        with err.status(f"training {version}"):
            run = train_model(world, seed=seed, version=version)
        with err.status("writing the artefact and the model card"):
            run.model.save(parent / version)
            card = write_model_card(run, parent / version)
    except FraudAgentError as error:
        raise _fail(error) from None
    console.print(_headline(run))
    console.print(f"wrote {parent / version} (model card: {card})")


def _headline(run: TrainingRun) -> Table:
    from fraudagent.risk.rules import SCORER_VERSION

    table = Table(title="holdout", title_justify="left")
    table.add_column("metric")
    table.add_column(run.model.version, justify="right")
    table.add_column(SCORER_VERSION, justify="right")
    model, rules = run.model_metrics, run.rules_metrics
    table.add_row("PR-AUC", f"{model.pr_auc:.4f}", f"{rules.pr_auc:.4f}")
    table.add_row("ROC-AUC", f"{model.roc_auc:.4f}", f"{rules.roc_auc:.4f}")
    table.add_row("recall at 1% alerts", f"{model.recall_at_alert_rate:.4f}", f"{rules.recall_at_alert_rate:.4f}")
    return table


@model_app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address [default: FRAUDAGENT_SCORING_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="port [default: FRAUDAGENT_SCORING_PORT]")] = None,
    model: Annotated[Path | None, typer.Option(help="artefact folder [default: the newest trained]")] = None,
) -> None:
    """Serve the model with the SageMaker container contract: GET /ping, POST /invocations."""
    import uvicorn

    from fraudagent.risk.model import RiskModel
    from fraudagent.risk.server import create_scoring_app

    settings = _settings()
    try:
        loaded = RiskModel.load(model_dir(settings, model))
    except FraudAgentError as error:
        raise _fail(error) from None
    bind, listen = host or settings.scoring_host, port or settings.scoring_port
    console.print(f"serving {loaded.version} on http://{bind}:{listen} (Ctrl-C to stop)")
    uvicorn.run(create_scoring_app(loaded), host=bind, port=listen, log_level="warning")
