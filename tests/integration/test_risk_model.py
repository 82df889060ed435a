"""The trained risk model: no leakage, determinism, reason codes, the scoring server and the score providers."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from fraudagent.bundles.service import load_records
from fraudagent.cli.services import free_port
from fraudagent.core.errors import DependencyUnavailable, InvalidInput
from fraudagent.core.models import Account, Event, Reason, Score
from fraudagent.core.reasons import describe_reason, described_features
from fraudagent.core.settings import Settings
from fraudagent.risk.model import FEATURES, RiskModel, feature_rows, latest_model_dir, next_version
from fraudagent.risk.rules import MAX_REASONS
from fraudagent.risk.server import create_scoring_app
from fraudagent.risk.training import TrainingRun, train_model
from fraudagent.sim.world import World, simulated_store
from fraudagent.store.events import ScoredEvent, account_events
from fraudagent.store.tables import Tables
from fraudagent.tools.scores import (
    EndpointScores,
    SageMakerScores,
    StoredScores,
    invocation_body,
    score_provider,
)
from tests.conftest import LiveServer

SEED = 11
ENDPOINT = "fraud-scoring"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fraudagent.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def world() -> World:
    return simulated_store(SEED, 600, 30)


@pytest.fixture(scope="module")
def run(world: World) -> TrainingRun:
    return train_model(world, seed=SEED, version="ref-gbm-1")


@pytest.fixture(scope="module")
def model(run: TrainingRun) -> RiskModel:
    return run.model


@pytest.fixture(scope="module")
def trained_by_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`fraudagent model train` on the same small world, in its own process."""
    out = tmp_path_factory.mktemp("models")
    done = _cli("model", "train", "--seed", str(SEED), "--accounts", "600", "--days", "30", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out / "ref-gbm-1"


@pytest.fixture(scope="module")
def server(model: RiskModel) -> Iterator[LiveServer]:
    with LiveServer(create_scoring_app(model)) as live:
        yield live


@pytest.fixture(scope="module")
def sample(world: World) -> tuple[list[Event], list[Account]]:
    """A few busy accounts, fraud among them, with their whole history: a realistic payload."""
    fraud_accounts = sorted({e.account_id for e in world.events if e.event_id in world.fraud_events})[:3]
    others = [a.account_id for a in world.accounts if a.account_id not in fraud_accounts][:5]
    chosen = set(fraud_accounts + others)
    events = [e for e in world.events if e.account_id in chosen]
    return events, [a for a in world.accounts if a.account_id in chosen]


def _accounts(world: World) -> dict[str, Account]:
    return {a.account_id: a for a in world.accounts}


# --- features and training ------------------------------------------------------


def test_features_never_change_when_later_events_are_added(world: World) -> None:
    accounts = _accounts(world)
    cutoff = world.events[len(world.events) // 2].ts
    before = [e for e in world.events if e.ts < cutoff]
    later = [e for e in world.events if e.ts >= cutoff]
    tampered = [
        e.model_copy(update={"device_id": "D-PC-99999", "ip": "198.51.100.7", "ip_country": "RO", "status": "declined"})
        for e in later
    ]
    earlier = {e.event_id for e in before}
    baseline = feature_rows(world.events, accounts, only=earlier)
    assert len(baseline.events) > 100
    for variant in (before, before + tampered):
        rows = feature_rows(variant, accounts, only=earlier)
        assert [e.event_id for e in rows.events] == [e.event_id for e in baseline.events]
        assert np.array_equal(rows.matrix, baseline.matrix, equal_nan=True)


def test_labels_mark_fraud_activity_not_whole_victim_accounts(world: World) -> None:
    fraud_accounts = {e.account_id for e in world.events if e.event_id in world.fraud_events}
    assert all(world.truth[a].value != "legitimate" for a in fraud_accounts)
    victim_events = [e for e in world.events if e.account_id in fraud_accounts and e.event_id not in world.fraud_events]
    assert victim_events, "takeover victims and friendly fraudsters also act honestly"


def test_training_is_deterministic_for_a_seed(
    trained_by_cli: Path, model: RiskModel, sample: tuple[list[Event], list[Account]]
) -> None:
    """Another process, the same seed: the same trees, metadata and scores."""
    again = RiskModel.load(trained_by_cli)
    assert again.model_text() == model.model_text()
    assert again.meta == model.meta
    events, accounts = sample
    assert _in_process(again, events, accounts) == _in_process(model, events, accounts)


def test_model_beats_the_rules_on_the_holdout(run: TrainingRun) -> None:
    assert run.labels.sum() > 0 and len(run.labels) > 0
    assert run.model_metrics.pr_auc > run.rules_metrics.pr_auc
    assert run.model_metrics.recall_at_alert_rate >= run.rules_metrics.recall_at_alert_rate
    assert run.split.calibrate_from < run.split.holdout_from


def test_artefact_round_trips_with_its_metadata(
    model: RiskModel, sample: tuple[list[Event], list[Account]], tmp_path: Path
) -> None:
    model.save(tmp_path / "ref-gbm-1")
    loaded = RiskModel.load(latest_model_dir(tmp_path))
    meta = json.loads((tmp_path / "ref-gbm-1" / "meta.json").read_text())
    assert meta["version"] == "ref-gbm-1" and meta["features"] == list(FEATURES)
    assert meta["calibration"]["method"] == "platt" and len(meta["training"]["data_sha256"]) == 64
    assert next_version(tmp_path) == "ref-gbm-2"
    events, accounts = sample
    assert _in_process(loaded, events, accounts) == _in_process(model, events, accounts)


def test_a_missing_artefact_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        RiskModel.load(tmp_path)
    assert "fraudagent model train" in str(caught.value.problems[0])


# --- scores and reason codes ------------------------------------------------------


def test_reason_contributions_sum_with_the_base_value_to_the_raw_score(model: RiskModel, world: World) -> None:
    rows = feature_rows(world.events, _accounts(world))
    explanation = model.explain(rows.matrix)
    assert np.allclose(explanation.raw, model.raw_scores(rows.matrix), atol=1e-9)
    assert np.allclose(explanation.base_value, explanation.base_value[0])
    scores = model.score_rows(rows)
    for score, contributions in zip(scores, explanation.contributions, strict=True):
        top = sorted(contributions[contributions > 0], reverse=True)[:MAX_REASONS]
        assert [r.contribution for r in score.reasons] == [round(float(c), 4) for c in top]
        assert all(r.feature in FEATURES for r in score.reasons)
        assert score.model_version == "ref-gbm-1" and 0 <= score.score <= 1


def test_fraud_events_score_higher_than_legitimate_ones(run: TrainingRun) -> None:
    assert run.model_scores[run.labels == 1].mean() > 5 * run.model_scores[run.labels == 0].mean()


def test_reasons_read_as_words_for_every_feature() -> None:
    assert set(FEATURES) <= described_features()
    assert describe_reason(Reason(feature="mins_since_password_reset", value=19, contribution=0.4)) == (
        "19 minutes after a password reset"
    )
    assert describe_reason(Reason(feature="device_first_use", value=1, contribution=0.2)) == "first use of this device"
    assert describe_reason(Reason(feature="event_type", value="gift_card_purchase", contribution=0.1)) == (
        "event: gift card purchase"
    )
    assert describe_reason(Reason(feature="mins_since_mfa_change", value=None, contribution=0.1)) == (
        "no MFA change on record"
    )


# --- the scoring server over HTTP ---------------------------------------------------


def _in_process(model: RiskModel, events: list[Event], accounts: list[Account]) -> list[Score]:
    return model.score_events(events, {a.account_id: a for a in accounts})


def test_server_answers_ping_and_invocations_like_in_process_scoring(
    server: LiveServer, model: RiskModel, sample: tuple[list[Event], list[Account]]
) -> None:
    events, accounts = sample
    with httpx.Client(base_url=server.url, timeout=30) as client:
        ping = client.get("/ping")
        assert ping.status_code == 200 and ping.json()["model_version"] == "ref-gbm-1"
        answer = client.post(
            "/invocations", content=invocation_body(events, accounts), headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == "ref-gbm-1"
    assert [Score.model_validate(s) for s in body["scores"]] == _in_process(model, events, accounts)


def test_server_scores_only_the_requested_events_with_the_rest_as_history(
    server: LiveServer, model: RiskModel, sample: tuple[list[Event], list[Account]]
) -> None:
    events, accounts = sample
    expected = _in_process(model, events, accounts)[-2:]
    payload = json.loads(invocation_body(events, accounts)) | {"event_ids": [s.event_id for s in expected]}
    answer = httpx.post(f"{server.url}/invocations", json=payload, timeout=30)
    assert [Score.model_validate(s) for s in answer.json()["scores"]] == expected


@pytest.mark.parametrize(
    ("content", "content_type", "status", "pointer"),
    [
        (b"{not json", "application/json", 400, None),
        (b'{"events": []}', "text/plain", 415, None),
        (b'{"events": []}', "application/json", 422, "$.events"),
        (b'{"events": [{"event_id": "E-1"}], "accounts": []}', "application/json", 422, "$.events[0].account_id"),
        (b'{"instances": [1, 2]}', "application/json", 422, "$.instances"),
    ],
)
def test_bad_payloads_get_a_4xx_problem(
    server: LiveServer, content: bytes, content_type: str, status: int, pointer: str | None
) -> None:
    answer = httpx.post(f"{server.url}/invocations", content=content, headers={"Content-Type": content_type})
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == status and problem["detail"]
    if pointer:
        assert pointer in [e["pointer"] for e in problem["errors"]]


def test_payload_naming_unknown_accounts_or_events_is_refused(
    server: LiveServer, sample: tuple[list[Event], list[Account]]
) -> None:
    events, accounts = sample
    payload = json.loads(invocation_body(events, accounts[1:])) | {"event_ids": ["E-nope"]}
    answer = httpx.post(f"{server.url}/invocations", json=payload)
    assert answer.status_code == 422
    pointers = [e["pointer"] for e in answer.json()["errors"]]
    assert "$.event_ids[0]" in pointers and any(p.endswith(".account_id") for p in pointers)


# --- score providers ---------------------------------------------------------------


def _scored(events: list[Event], scores: list[Score] | None = None) -> list[ScoredEvent]:
    by_event = {s.event_id: s for s in scores or []}
    return [ScoredEvent(event=e, score=by_event.get(e.event_id)) for e in events]


def test_stored_provider_returns_the_scores_on_the_events(sample: tuple[list[Event], list[Account]]) -> None:
    events, accounts = sample
    stored = [Score(event_id=events[0].event_id, model_version="ref-rules-1", score=0.5)]
    assert StoredScores().scores(_scored(events, stored), accounts) == stored
    assert isinstance(score_provider(Settings()), StoredScores)


def test_http_provider_matches_in_process_scoring(
    server: LiveServer, model: RiskModel, sample: tuple[list[Event], list[Account]]
) -> None:
    events, accounts = sample
    provider = score_provider(Settings(score_provider="http", scoring_url=server.url))
    assert isinstance(provider, EndpointScores) and provider.ping()
    assert provider.scores(_scored(events), accounts) == _in_process(model, events, accounts)


def test_http_provider_relays_a_refused_payload_with_its_problems(
    server: LiveServer, sample: tuple[list[Event], list[Account]]
) -> None:
    events, accounts = sample
    provider = EndpointScores(server.url, timeout_s=10, max_attempts=1)
    with pytest.raises(InvalidInput) as caught:
        provider.scores(_scored(events), accounts[1:])
    assert any(p.path.endswith(".account_id") for p in caught.value.problems)


def test_http_provider_retries_then_reports_the_server_unavailable(
    sample: tuple[list[Event], list[Account]],
) -> None:
    events, accounts = sample
    provider = EndpointScores(f"http://127.0.0.1:{free_port()}", timeout_s=2, max_attempts=2)
    assert not provider.ping()
    with pytest.raises(DependencyUnavailable, match="scoring server"):
        provider.scores(_scored(events), accounts)


def _sagemaker(stubbed_body: bytes | None, expected_body: bytes) -> tuple[SageMakerScores, Stubber]:
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    stubber = Stubber(client)
    expected = {"EndpointName": ENDPOINT, "ContentType": "application/json", "Accept": "application/json"}
    if stubbed_body is None:
        stubber.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            service_message="the container answered 422",
            http_status_code=424,
            modeled_fields={"OriginalStatusCode": 422},
            expected_params=expected | {"Body": expected_body},
        )
    else:
        stubber.add_response(
            "invoke_endpoint",
            {
                "Body": StreamingBody(io.BytesIO(stubbed_body), len(stubbed_body)),
                "ContentType": "application/json",
            },
            expected_params=expected | {"Body": expected_body},
        )
    stubber.activate()
    return SageMakerScores(ENDPOINT, client), stubber


def test_sagemaker_provider_sends_the_same_payload_and_matches_in_process_scoring(
    server: LiveServer, model: RiskModel, sample: tuple[list[Event], list[Account]]
) -> None:
    events, accounts = sample
    payload = invocation_body(events, accounts)
    # The endpoint's answer is what the real container (our server) answers to that payload.
    container_answer = httpx.post(
        f"{server.url}/invocations", content=payload, headers={"Content-Type": "application/json"}
    ).content
    provider, stubber = _sagemaker(container_answer, payload)
    with stubber:
        assert provider.scores(_scored(events), accounts) == _in_process(model, events, accounts)
        stubber.assert_no_pending_responses()


def test_sagemaker_provider_reports_a_refused_payload(sample: tuple[list[Event], list[Account]]) -> None:
    events, accounts = sample
    provider, stubber = _sagemaker(None, invocation_body(events, accounts))
    with stubber, pytest.raises(InvalidInput, match="refused"):
        provider.scores(_scored(events), accounts)


def test_sagemaker_provider_needs_an_endpoint_name() -> None:
    with pytest.raises(InvalidInput):
        score_provider(Settings(score_provider="sagemaker", sagemaker_endpoint=None))


# --- the model as the loader's scorer, against DynamoDB Local --------------------------


def test_loader_stores_the_models_scores_on_the_events(
    history: Tables, model: RiskModel, sample: tuple[list[Event], list[Account]]
) -> None:
    events, accounts = sample
    counts = load_records(
        history,
        accounts=accounts,
        events=events,
        scores=None,
        past_cases=[],
        past_case_store=None,
        scorer=model.score_events,
    )
    expected = {s.event_id: s for s in _in_process(model, events, accounts)}
    assert counts.scored_on_load == len(expected) > 0
    read_back: dict[str, Score] = {}
    window = {"start": events[0].ts - timedelta(days=1), "end": events[-1].ts + timedelta(days=1)}
    for account in accounts:
        stored, _ = account_events(history, account.account_id, **window, max_items=10_000)
        read_back |= {s.event.event_id: s.score for s in stored if s.score is not None}
    assert read_back == expected


# --- the CLI ----------------------------------------------------------------------------


def test_cli_train_writes_a_versioned_artefact_and_its_model_card(trained_by_cli: Path) -> None:
    names = {p.name for p in trained_by_cli.iterdir()}
    assert {"model.txt", "meta.json", "model_card.md", "calibration.png", "score_distribution.png"} <= names
    card = (trained_by_cli / "model_card.md").read_text()
    assert "PR-AUC" in card and "ref-rules-1" in card and "account_takeover" in card


def test_cli_serve_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    done = _cli("model", "serve", "--model", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "fraudagent model train" in done.stderr and "Traceback" not in done.stderr
