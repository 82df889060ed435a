"""Training the reference risk model on the simulated store, and measuring it against the rules.

Label: an event is positive when it is fraud activity, `World.fraud_events`
(the events a fraud storyline wrote itself, and every event of an account
that exists for a scheme). Account-level truth alone would also mark the
honest purchases of a takeover victim before and after the takeover.

Split by time, never at random, so the model is judged on days it has not
seen, as it would be in production: the last quarter of the window is the
holdout; of the days before, the last fifth calibrates (Platt scaling) and
the rest trains the trees. The rules scorer `ref-rules-1` is measured on the
same holdout in the same run.

Training is deterministic for a seed: the world is, and LightGBM runs with
`deterministic=True`, a fixed thread count and fixed seeds.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import Typology
from fraudagent.risk.model import CATEGORIES, FEATURES, Calibration, FeatureRows, ModelMeta, RiskModel, feature_rows
from fraudagent.risk.rules import SCORER_VERSION

if TYPE_CHECKING:  # the simulated world is the training data; the simulator imports this package, not the reverse
    from fraudagent.sim.world import World

LABEL = "fraud activity: events a fraud storyline wrote, and every event of an account that exists for a scheme"
HOLDOUT_FRACTION = 0.25
CALIBRATION_FRACTION = 0.2  # of the training period, its latest part
ALERT_RATE = 0.01  # the share of events an alert queue can take: recall is measured there
NUM_THREADS = 2  # fixed: LightGBM's results may differ between thread counts
BOOST_ROUNDS = 200


def lightgbm_params(seed: int) -> dict[str, object]:
    return {
        "objective": "binary",
        "learning_rate": 0.07,
        "num_leaves": 15,
        "max_depth": 6,  # shallow trees: TreeSHAP reason codes cost grows with depth squared
        "min_data_in_leaf": 20,
        "min_data_per_group": 20,  # categories are few and the smallest worlds small
        "lambda_l2": 1.0,
        "feature_fraction": 0.8,
        "seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": NUM_THREADS,
        "verbosity": -1,
    }


@dataclass(frozen=True)
class LabelledRows:
    rows: FeatureRows
    labels: np.ndarray  # 1 for fraud activity
    typologies: list[Typology]  # of the event's account for fraud events, legitimate otherwise


def labelled_rows(world: World) -> LabelledRows:
    rows = feature_rows(world.events, {a.account_id: a for a in world.accounts})
    labels = np.array([e.event_id in world.fraud_events for e in rows.events], dtype=np.int8)
    typologies = [
        world.truth[e.account_id] if label else Typology.legitimate
        for e, label in zip(rows.events, labels, strict=True)
    ]
    return LabelledRows(rows, labels, typologies)


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # boolean masks over the rows
    calibration: np.ndarray
    holdout: np.ndarray
    calibrate_from: datetime
    holdout_from: datetime


def split_by_time(rows: FeatureRows, start: datetime, end: datetime) -> Split:
    holdout_from = end - (end - start) * HOLDOUT_FRACTION
    calibrate_from = holdout_from - (holdout_from - start) * CALIBRATION_FRACTION
    times = [e.ts for e in rows.events]
    holdout = np.array([t >= holdout_from for t in times])
    calibration = np.array([calibrate_from <= t < holdout_from for t in times])
    return Split(~holdout & ~calibration, calibration, holdout, calibrate_from, holdout_from)


@dataclass(frozen=True)
class Metrics:
    pr_auc: float
    roc_auc: float
    recall_at_alert_rate: float
    per_typology_recall: dict[str, float | None]  # None: the typology has no event in the holdout
    alerts: int  # events in the top ALERT_RATE

    def summary(self) -> dict[str, float | dict[str, float | None]]:
        return {
            "pr_auc": round(self.pr_auc, 4),
            "roc_auc": round(self.roc_auc, 4),
            "recall_at_1pct": round(self.recall_at_alert_rate, 4),
            "per_typology_recall_at_1pct": self.per_typology_recall,
        }


def evaluate(labels: np.ndarray, scores: np.ndarray, typologies: Sequence[Typology]) -> Metrics:
    """Ranking quality, and what an alert queue taking the top 1% of events would catch.

    The top 1% is taken by score, ties broken by event order (time), so a
    scorer with many equal scores gains nothing from the ties.
    """
    alerts = max(1, math.ceil(ALERT_RATE * len(scores)))
    order = np.lexsort((np.arange(len(scores)), -scores))
    alerted = np.zeros(len(scores), dtype=bool)
    alerted[order[:alerts]] = True
    positives = labels == 1
    per_typology: dict[str, float | None] = {}
    for typology in Typology:
        if typology is Typology.legitimate:
            continue
        of_type = positives & np.array([t is typology for t in typologies])
        per_typology[typology.value] = round(float(alerted[of_type].mean()), 4) if of_type.any() else None
    return Metrics(
        pr_auc=float(average_precision_score(labels, scores)),
        roc_auc=float(roc_auc_score(labels, scores)),
        recall_at_alert_rate=float(alerted[positives].mean()),
        per_typology_recall=per_typology,
        alerts=alerts,
    )


@dataclass(frozen=True)
class TrainingRun:
    """A trained model and its holdout: the labels and both scorers' probabilities, and their metrics."""

    model: RiskModel
    split: Split
    labels: np.ndarray  # holdout only, from here on
    typologies: list[Typology]
    model_scores: np.ndarray
    rules_scores: np.ndarray
    model_metrics: Metrics
    rules_metrics: Metrics
    train_rows: int
    calibration_rows: int


def train_model(world: World, *, seed: int, version: str) -> TrainingRun:
    """Train, calibrate and measure a model on `world`; the rules are measured on the same holdout."""
    data = labelled_rows(world)
    split = split_by_time(data.rows, world.start, world.end)
    _require_both_classes(data.labels, split)
    matrix = data.rows.matrix
    booster = lgb.train(
        lightgbm_params(seed),
        lgb.Dataset(
            matrix[split.train],
            label=data.labels[split.train],
            feature_name=list(FEATURES),
            categorical_feature=list(CATEGORIES),
            free_raw_data=False,
        ),
        num_boost_round=BOOST_ROUNDS,
    )
    raw = np.asarray(booster.predict(matrix, raw_score=True), dtype=np.float64)
    calibration = _platt(raw[split.calibration], data.labels[split.calibration])
    holdout = split.holdout
    labels = data.labels[holdout]
    typologies = [t for t, kept in zip(data.typologies, holdout, strict=True) if kept]
    model_scores = calibration.probabilities(raw[holdout])
    rules_scores = _rules_scores(world, data.rows, holdout)
    model_metrics = evaluate(labels, model_scores, typologies)
    rules_metrics = evaluate(labels, rules_scores, typologies)
    meta = ModelMeta(
        version=version,
        lightgbm_version=lgb.__version__,
        features=list(FEATURES),
        categories={name: list(values) for name, values in CATEGORIES.items()},
        calibration=calibration,
        label=LABEL,
        training=_training_record(world, seed, split, data),
        holdout={**model_metrics.summary(), "rules_pr_auc": round(rules_metrics.pr_auc, 4)},
    )
    return TrainingRun(
        model=RiskModel(booster, meta),
        split=split,
        labels=labels,
        typologies=typologies,
        model_scores=model_scores,
        rules_scores=rules_scores,
        model_metrics=model_metrics,
        rules_metrics=rules_metrics,
        train_rows=int(split.train.sum()),
        calibration_rows=int(split.calibration.sum()),
    )


def _require_both_classes(labels: np.ndarray, split: Split) -> None:
    problems = [
        Problem(f"$.{part}", "needs both fraud and legitimate events; simulate more accounts or days")
        for part, mask in (("train", split.train), ("calibration", split.calibration), ("holdout", split.holdout))
        if len(set(labels[mask].tolist())) < 2
    ]
    if problems:
        raise InvalidInput("the simulated store is too small to train and measure a model", problems)


def _platt(raw: np.ndarray, labels: np.ndarray) -> Calibration:
    fit = LogisticRegression(C=1e6).fit(raw.reshape(-1, 1), labels)
    return Calibration(slope=float(fit.coef_[0][0]), intercept=float(fit.intercept_[0]))


def _rules_scores(world: World, rows: FeatureRows, holdout: np.ndarray) -> np.ndarray:
    """The rules scorer's probabilities for the holdout events; `generate_world` scored every event with it."""
    by_event: Mapping[str, float] = {s.event_id: s.score for s in world.scores if s.model_version == SCORER_VERSION}
    return np.array([by_event[e.event_id] for e, kept in zip(rows.events, holdout, strict=True) if kept])


def _training_record(world: World, seed: int, split: Split, data: LabelledRows) -> dict[str, str | int | float]:
    used = split.train | split.calibration
    return {
        "seed": seed,
        "world_seed": world.seed,
        "world_accounts": len(world.accounts),
        "world_days": world.days,
        "window_start": world.start.isoformat(),
        "calibrate_from": split.calibrate_from.isoformat(),
        "holdout_from": split.holdout_from.isoformat(),
        "window_end": world.end.isoformat(),
        "train_rows": int(split.train.sum()),
        "calibration_rows": int(split.calibration.sum()),
        "holdout_rows": int(split.holdout.sum()),
        "train_positives": int(data.labels[split.train].sum()),
        "boost_rounds": BOOST_ROUNDS,
        "data_sha256": _data_hash(data.rows.matrix[used], data.labels[used]),
    }


def _data_hash(matrix: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the feature names, the training and calibration rows and their labels."""
    digest = hashlib.sha256("\n".join(FEATURES).encode())
    digest.update(np.ascontiguousarray(matrix, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int8).tobytes())
    return digest.hexdigest()
