"""The model card: what a trained model is, how it was measured, and how it compares with the rules.

Written next to the artefact: `model_card.md`, `calibration.png` (reliability
of the probabilities) and `score_distribution.png` (fraud and legitimate
scores), each with the model and the rules baseline measured on the same
holdout in the same run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # the object API: no pyplot global state, no display backend

from fraudagent.core.models import Typology
from fraudagent.risk.model import CATEGORIES, FEATURES
from fraudagent.risk.rules import FEATURE_MEANINGS, SCORER_VERSION
from fraudagent.risk.training import ALERT_RATE, HOLDOUT_FRACTION, LABEL, Metrics, TrainingRun

CARD_FILE = "model_card.md"
CALIBRATION_PLOT = "calibration.png"
DISTRIBUTION_PLOT = "score_distribution.png"
_BINS = 10


def write_model_card(run: TrainingRun, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _calibration_plot(run, folder / CALIBRATION_PLOT)
    _distribution_plot(run, folder / DISTRIBUTION_PLOT)
    path = folder / CARD_FILE
    path.write_text(_card_text(run), encoding="utf-8")
    return path


def _scorers(run: TrainingRun) -> list[tuple[str, np.ndarray]]:
    return [(run.model.version, run.model_scores), (SCORER_VERSION, run.rules_scores)]


def _calibration_plot(run: TrainingRun, path: Path) -> None:
    figure = Figure(figsize=(5.5, 5))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    edges = np.linspace(0, 1, _BINS + 1)
    for name, scores in _scorers(run):
        bins = np.clip(np.digitize(scores, edges) - 1, 0, _BINS - 1)
        filled = [b for b in range(_BINS) if (bins == b).any()]
        predicted = [scores[bins == b].mean() for b in filled]
        observed = [run.labels[bins == b].mean() for b in filled]
        axes.plot(predicted, observed, marker="o", label=name)
    axes.set(xlabel="mean predicted probability", ylabel="observed fraud rate", xlim=(0, 1), ylim=(0, 1))
    axes.set_title("Calibration on the holdout")
    axes.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _distribution_plot(run: TrainingRun, path: Path) -> None:
    figure = Figure(figsize=(10, 4))
    panels = figure.subplots(1, 2, sharey=True)
    edges = np.linspace(0, 1, 41)
    for axes, (name, scores) in zip(panels, _scorers(run), strict=True):
        axes.hist(scores[run.labels == 0], bins=edges, alpha=0.6, label="legitimate", color="tab:blue")
        axes.hist(scores[run.labels == 1], bins=edges, alpha=0.6, label="fraud", color="tab:red")
        axes.axvline(_alert_threshold(scores), color="black", linestyle="--", label=f"top {ALERT_RATE:.0%} cut")
        axes.set(yscale="log", xlabel="score", title=name)
        axes.legend()
    panels[0].set_ylabel("holdout events (log scale)")
    figure.suptitle("Score distribution on the holdout")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _alert_threshold(scores: np.ndarray) -> float:
    alerts = max(1, int(np.ceil(ALERT_RATE * len(scores))))
    return float(np.sort(scores)[::-1][alerts - 1])


def _card_text(run: TrainingRun) -> str:
    meta = run.model.meta
    training = meta.training
    model, rules = run.model_metrics, run.rules_metrics
    lines = [
        f"# Model card: {meta.version}",
        "",
        "A gradient-boosted tree model (LightGBM "
        f"{meta.lightgbm_version}) scoring money-moving events of the digital game store for fraud,",
        "with reason codes from its exact per-feature contributions (TreeSHAP). Trained and measured on the",
        f"simulated store (seed {training['world_seed']}, {training['world_accounts']} accounts, "
        f"{training['world_days']} days): these figures describe the simulator, not production traffic.",
        "",
        "## Data",
        "",
        f"- Label: {LABEL}.",
        f"- Split by time: trees on events before {training['calibrate_from']}, Platt calibration on events from then",
        f"  until {training['holdout_from']}, holdout (the last {HOLDOUT_FRACTION:.0%} of the window) after that.",
        f"- Rows: {training['train_rows']} train ({training['train_positives']} fraud), "
        f"{training['calibration_rows']} calibration, {len(run.labels)} holdout ({int(run.labels.sum())} fraud).",
        f"- Training data sha256 (features and labels of train + calibration): `{training['data_sha256']}`.",
        f"- Seed {training['seed']}, {training['boost_rounds']} rounds, `deterministic=True`, fixed thread count.",
        "",
        f"## Holdout: {meta.version} against the rules baseline {SCORER_VERSION}",
        "",
        f"Both scorers measured in the same run on the same {len(run.labels)} holdout events. "
        f"Recall at a {ALERT_RATE:.0%} alert rate: the share of fraud events among the top "
        f"{model.alerts} scores (ties broken by time).",
        "",
        f"| metric | {meta.version} | {SCORER_VERSION} |",
        "|---|---|---|",
        f"| PR-AUC (average precision) | {model.pr_auc:.4f} | {rules.pr_auc:.4f} |",
        f"| ROC-AUC | {model.roc_auc:.4f} | {rules.roc_auc:.4f} |",
        f"| recall at {ALERT_RATE:.0%} alert rate | {model.recall_at_alert_rate:.4f} "
        f"| {rules.recall_at_alert_rate:.4f} |",
        f"| best possible recall at {ALERT_RATE:.0%} | {_recall_ceiling(run, model):.4f} "
        f"| {_recall_ceiling(run, rules):.4f} |",
        "",
        f"### Recall at {ALERT_RATE:.0%} by typology",
        "",
        f"| typology | holdout fraud events | {meta.version} | {SCORER_VERSION} |",
        "|---|---|---|---|",
        *_typology_rows(run, model, rules),
        "",
        "## Figures",
        "",
        f"![calibration]({CALIBRATION_PLOT})",
        "",
        f"![score distribution]({DISTRIBUTION_PLOT})",
        "",
        "## Calibration",
        "",
        f"Platt scaling on the calibration slice: probability = sigmoid({meta.calibration.slope:.4f} x raw "
        f"+ {meta.calibration.intercept:.4f}). Monotone, so the ranking (PR-AUC, ROC-AUC, recall) is the trees'.",
        "",
        "## Reason codes",
        "",
        "Each score lists up to five features that raised it most, with their value and their contribution to",
        "the raw log-odds; all contributions plus the base value equal the raw score before calibration.",
        '`fraudagent.core.reasons.describe_reason` words a reason for people ("19 minutes after a password reset").',
        "",
        "## Features",
        "",
        "Computed in one time-ordered pass (`risk/rules.py` `FeatureTracker`, shared with the rules): an event's",
        "features read only the events before it.",
        "",
        "| feature | meaning |",
        "|---|---|",
        *(f"| `{name}` | {_meaning(name)} |" for name in FEATURES),
        "",
        "## Limits",
        "",
        "- Simulated data: the typologies, their rates and the legitimate look-alikes are the simulator's.",
        "- Friendly fraud and refund abuse look like honest purchases when they happen; event scores catch",
        "  them late or not at all. Case-level evidence (disputes, refund history) is what exposes them.",
        "- Trained on one world; retrain when the simulator or the features change (the artefact refuses",
        "  to load against a different feature list).",
        "",
    ]
    return "\n".join(lines)


def _recall_ceiling(run: TrainingRun, metrics: Metrics) -> float:
    """Recall if every alert were fraud: with more fraud than alerts, even a perfect ranking stops here."""
    return min(1.0, metrics.alerts / max(1, int(run.labels.sum())))


def _typology_rows(run: TrainingRun, model: Metrics, rules: Metrics) -> list[str]:
    counts = {t: sum(1 for typology in run.typologies if typology is t) for t in Typology}
    return [
        f"| {t.value} | {counts[t]} | {_fmt(model.per_typology_recall[t.value])} | "
        f"{_fmt(rules.per_typology_recall[t.value])} |"
        for t in Typology
        if t is not Typology.legitimate
    ]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _meaning(name: str) -> str:
    if name in CATEGORIES:
        return f"the event's {name.replace('_', ' ')}: one of {', '.join(CATEGORIES[name])}"
    return FEATURE_MEANINGS[name]
