"""The reference gradient-boosted risk model (`ref-gbm-<n>`): the artefact, scoring, reason codes.

An artefact is a folder holding `model.txt` (LightGBM's text format) and
`meta.json` (`ModelMeta`: version, features, categories, calibration,
training data hash). Features come from `risk.event_features`, the same
time-ordered pass the rules scorer uses, so training and scoring read the
same numbers and an event never sees what came after it.

The booster outputs a raw log-odds score; a Platt map fitted on a calibration
slice turns it into a probability. Reason codes are the booster's exact
per-feature contributions (TreeSHAP, `pred_contrib=True`) to the raw score:
they sum with the base value to the raw score, before calibration.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightgbm as lgb
import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from fraudagent.core.bundle import json_path
from fraudagent.core.errors import InvalidInput, Problem
from fraudagent.core.models import Account, Event, EventType, Reason, Score
from fraudagent.risk.rules import MAX_REASONS, MODEL_FEATURES, event_features

MODEL_FILE = "model.txt"
META_FILE = "meta.json"
VERSION_PREFIX = "ref-gbm-"

CATEGORIES: dict[str, tuple[str, ...]] = {
    "event_type": tuple(t.value for t in EventType),
    "item_category": ("game", "dlc", "virtual_currency", "gift_card", "wallet", "subscription"),
    "payment_type": ("card", "paypal", "wallet", "store_balance"),
}
"""Categorical features read from the event's own fields; a value outside its list counts as missing."""

FEATURES: tuple[str, ...] = MODEL_FEATURES + tuple(CATEGORIES)
"""The model's columns, in order: the tracker's numeric features, then the categories."""

FeatureValue = float | str | None

PREDICT_THREADS = 1
"""Scoring runs on one thread: a request scores a handful of events, for which OpenMP's thread start-up
costs more than it saves, and the server's concurrency comes from serving requests in parallel."""


class Calibration(BaseModel):
    """Platt scaling: probability = sigmoid(slope * raw + intercept). Monotone, so it keeps the ranking."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    method: Literal["platt"] = "platt"
    slope: float
    intercept: float

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.slope * raw + self.intercept)))


class ModelMeta(BaseModel):
    """meta.json: everything needed to use and to audit an artefact besides the trees."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    lightgbm_version: str
    features: list[str]
    categories: dict[str, list[str]]
    calibration: Calibration
    label: str
    training: dict[str, str | int | float]
    holdout: dict[str, float | dict[str, float | None]]


@dataclass(frozen=True)
class FeatureRows:
    """Scored events and their model inputs: `matrix` for the booster, `values` as a reason shows them."""

    events: list[Event]
    matrix: np.ndarray  # float64, one row per event, NaN where a feature does not apply
    values: list[dict[str, FeatureValue]]


def feature_rows(
    events: Sequence[Event], accounts: Mapping[str, Account], *, only: Collection[str] | None = None
) -> FeatureRows:
    """Model inputs of every scored event (or of the ids in `only`); all events count as history."""
    kept: list[Event] = []
    values: list[dict[str, FeatureValue]] = []
    for event, features in event_features(events, accounts):
        if only is not None and event.event_id not in only:
            continue
        kept.append(event)
        values.append({**features, **_category_values(event)})
    matrix = np.array([[_encoded(name, row[name]) for name in FEATURES] for row in values], dtype=np.float64)
    return FeatureRows(kept, matrix.reshape(len(values), len(FEATURES)), values)


def _category_values(event: Event) -> dict[str, FeatureValue]:
    return {"event_type": event.type.value, "item_category": event.category, "payment_type": event.instrument_type}


def _encoded(name: str, value: FeatureValue) -> float:
    """Numbers as they are; a category as its index in CATEGORIES (LightGBM wants small integers)."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        vocabulary = CATEGORIES[name]
        return float(vocabulary.index(value)) if value in vocabulary else math.nan
    return float(value)


@dataclass(frozen=True)
class Explanation:
    """Exact additive explanation of raw scores: base_value + contributions.sum(axis=1) == raw."""

    base_value: np.ndarray  # per row (LightGBM reports it per row; it is the same for every row)
    contributions: np.ndarray  # rows x FEATURES

    @property
    def raw(self) -> np.ndarray:
        return self.base_value + self.contributions.sum(axis=1)


class RiskModel:
    """A loaded artefact: raw scores, calibrated probabilities and reason codes for events."""

    def __init__(self, booster: lgb.Booster, meta: ModelMeta) -> None:
        if tuple(booster.feature_name()) != FEATURES or tuple(meta.features) != FEATURES:
            raise InvalidInput(
                f"model {meta.version} was trained on other features than this code computes",
                [Problem("meta.json:$.features", "retrain with `fraudagent model train`")],
            )
        self.booster = booster
        self.meta = meta

    @property
    def version(self) -> str:
        return self.meta.version

    @classmethod
    def load(cls, folder: Path) -> RiskModel:
        missing = [name for name in (MODEL_FILE, META_FILE) if not (folder / name).is_file()]
        if missing:
            raise InvalidInput(
                f"no trained risk model in {folder}",
                [Problem(str(folder / name), "missing; run `fraudagent model train`") for name in missing],
            )
        try:
            meta = ModelMeta.model_validate_json((folder / META_FILE).read_text(encoding="utf-8"))
        except ValidationError as error:
            source = f"{folder / META_FILE}:$"
            problems = [Problem(json_path(tuple(e["loc"]), source), e["msg"]) for e in error.errors()]
            raise InvalidInput(f"unreadable model metadata in {folder}", problems) from None
        booster = lgb.Booster(model_str=(folder / MODEL_FILE).read_text(encoding="utf-8"))
        return cls(booster, meta)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MODEL_FILE).write_text(self.model_text(), encoding="utf-8")
        (folder / META_FILE).write_text(self.meta.model_dump_json(indent=2) + "\n", encoding="utf-8")

    def model_text(self) -> str:
        return self.booster.model_to_string()

    def raw_scores(self, matrix: np.ndarray) -> np.ndarray:
        if not len(matrix):
            return np.empty(0)
        return np.asarray(self.booster.predict(matrix, raw_score=True, num_threads=PREDICT_THREADS), dtype=np.float64)

    def explain(self, matrix: np.ndarray) -> Explanation:
        if not len(matrix):
            return Explanation(np.empty(0), np.empty((0, len(FEATURES))))
        contributions = np.asarray(
            self.booster.predict(matrix, pred_contrib=True, num_threads=PREDICT_THREADS), dtype=np.float64
        )
        return Explanation(base_value=contributions[:, -1], contributions=contributions[:, :-1])

    def score_rows(self, rows: FeatureRows) -> list[Score]:
        explanation = self.explain(rows.matrix)
        probabilities = self.meta.calibration.probabilities(explanation.raw)
        return [
            Score(
                event_id=event.event_id,
                model_version=self.version,
                score=round(float(probability), 4),
                reasons=_reasons(contributions, values),
            )
            for event, probability, contributions, values in zip(
                rows.events, probabilities, explanation.contributions, rows.values, strict=True
            )
        ]

    def score_events(
        self, events: Sequence[Event], accounts: Mapping[str, Account], *, only: Collection[str] | None = None
    ) -> list[Score]:
        """Scores of every money-moving event (or of the ids in `only`), in (ts, event_id) order.

        With `only` unset this is a `bundles.service.Scorer`: the loader can score with the model.
        """
        return self.score_rows(feature_rows(events, accounts, only=only))


def _reasons(contributions: np.ndarray, values: Mapping[str, FeatureValue]) -> list[Reason]:
    """The features that pushed the score up most, largest first (ties in column order)."""
    order = sorted(range(len(FEATURES)), key=lambda i: (-contributions[i], i))
    reasons: list[Reason] = []
    for i in order[:MAX_REASONS]:
        if contributions[i] <= 0:
            break
        name = FEATURES[i]
        contribution = round(float(contributions[i]), 4)
        reasons.append(Reason(feature=name, value=_reported(values[name]), contribution=contribution))
    return reasons


def _reported(value: FeatureValue) -> float | int | str | None:
    if value is None or isinstance(value, str):
        return value
    return int(value) if float(value).is_integer() else round(float(value), 2)


def next_version(models_dir: Path) -> str:
    """`ref-gbm-<n>` with n one past the highest artefact already in `models_dir`."""
    return f"{VERSION_PREFIX}{max(_numbers(models_dir), default=0) + 1}"


def latest_model_dir(models_dir: Path) -> Path:
    """The newest `ref-gbm-<n>` folder in `models_dir`."""
    numbers = _numbers(models_dir)
    if not numbers:
        raise InvalidInput(
            f"no trained risk model under {models_dir}",
            [Problem(str(models_dir), "run `fraudagent model train` or set FRAUDAGENT_RISK_MODEL_DIR")],
        )
    return models_dir / f"{VERSION_PREFIX}{max(numbers)}"


def _numbers(models_dir: Path) -> list[int]:
    if not models_dir.is_dir():
        return []
    suffixes = (p.name.removeprefix(VERSION_PREFIX) for p in models_dir.iterdir() if p.name.startswith(VERSION_PREFIX))
    return [int(s) for s in suffixes if s.isdigit()]
