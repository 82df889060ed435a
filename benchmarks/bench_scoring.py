"""Scoring speed: the trained model against the rules scorer `ref-rules-1`, measured in the same run.

    .venv/bin/python benchmarks/bench_scoring.py [--model DIR] [--samples N]

Prints a markdown table:

- per-event latency (p50/p95): score one event the way an online check does,
  from the account's history up to and including it (features for the whole
  history, a score for the last event);
- batch throughput: 10,000 money-moving events with the history before them;
- the scoring server over HTTP on loopback (uvicorn in a thread of this
  process, `POST /invocations` with the same one-event payloads).

Without --model it trains a model on a small simulated store first (the tree
count and depth, which set the cost, do not depend on the store's size).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import uvicorn

from fraudagent.cli.services import free_port
from fraudagent.core.models import Account, Event
from fraudagent.core.scoring import InvocationRequest
from fraudagent.risk.model import RiskModel
from fraudagent.risk.rules import SCORED_EVENTS, SCORER_VERSION, score_events
from fraudagent.risk.server import create_scoring_app
from fraudagent.risk.training import train_model
from fraudagent.sim.world import World, simulated_store

BATCH = 10_000
SEED = 7


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _online_cases(world: World, samples: int) -> list[tuple[list[Event], str]]:
    """(the account's history up to the event, the event's id) for evenly spread money-moving events."""
    scored = [e for e in world.events if e.type in SCORED_EVENTS]
    step = max(1, len(scored) // samples)
    by_account: dict[str, list[Event]] = {}
    for event in world.events:
        by_account.setdefault(event.account_id, []).append(event)
    cases = []
    for target in scored[::step][:samples]:
        history = [e for e in by_account[target.account_id] if (e.ts, e.event_id) <= (target.ts, target.event_id)]
        cases.append((history, target.event_id))
    return cases


def _batch(world: World) -> list[Event]:
    """Events up to the BATCH-th money-moving one: BATCH events to score, with the history before them."""
    seen = 0
    for index, event in enumerate(world.events):
        seen += event.type in SCORED_EVENTS
        if seen == BATCH:
            return world.events[: index + 1]
    raise SystemExit(f"the simulated store has fewer than {BATCH} money-moving events")


class _Server:
    def __init__(self, model: RiskModel) -> None:
        self.port = free_port()
        config = uvicorn.Config(create_scoring_app(model), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a trained artefact folder (default: train a small one)")
    parser.add_argument("--samples", type=int, default=300, help="events timed one by one")
    args = parser.parse_args()

    world = simulated_store(SEED, 3000, 60)
    model = RiskModel.load(args.model) if args.model else _small_model()
    accounts: dict[str, Account] = {a.account_id: a for a in world.accounts}
    cases = _online_cases(world, args.samples)
    batch = _batch(world)

    def model_one(history: list[Event], event_id: str) -> object:
        return model.score_events(history, accounts, only={event_id})

    def rules_one(history: list[Event], _: str) -> object:
        return score_events(history, accounts)

    # Warm-up: first calls pay for imports and allocations.
    for history, event_id in cases[:10]:
        model_one(history, event_id)
        rules_one(history, event_id)
    model_latency = [_timed(lambda h=h, i=i: model_one(h, i)) for h, i in cases]
    rules_latency = [_timed(lambda h=h, i=i: rules_one(h, i)) for h, i in cases]
    model_batch = _timed(lambda: model.score_events(batch, accounts))
    rules_batch = _timed(lambda: score_events(batch, accounts))
    http_latency = _http_latencies(model, accounts, cases)

    rows = [
        ("in-process p50 per event (ms)", _ms(_percentile(model_latency, 0.5)), _ms(_percentile(rules_latency, 0.5))),
        ("in-process p95 per event (ms)", _ms(_percentile(model_latency, 0.95)), _ms(_percentile(rules_latency, 0.95))),
        (f"batch of {BATCH:,} events (events/s)", BATCH / model_batch, BATCH / rules_batch),
    ]
    print(
        f"Scoring benchmark: {model.version} against {SCORER_VERSION}, {len(cases)} single events, "
        f"histories of {statistics.mean(len(h) for h, _ in cases):.0f} events on average\n"
    )
    print(f"| measure | {model.version} | {SCORER_VERSION} | ratio (model / rules) |")
    print("|---|---:|---:|---:|")
    for name, ours, baseline in rows:
        print(f"| {name} | {ours:,.2f} | {baseline:,.2f} | {ours / baseline:.2f}x |")
    for label, q in (("p50", 0.5), ("p95", 0.95)):
        over_http, in_process = _ms(_percentile(http_latency, q)), _ms(_percentile(model_latency, q))
        rules = _ms(_percentile(rules_latency, q))
        print(
            f"| scoring server over HTTP, {label} per event (ms) | {over_http:,.2f} | {rules:,.2f} (in-process) "
            f"| {over_http / rules:.2f}x ({over_http / in_process:.2f}x the model in-process) |"
        )


def _small_model() -> RiskModel:
    return train_model(simulated_store(SEED, 1500, 30), seed=SEED, version="ref-gbm-bench").model


def _http_latencies(
    model: RiskModel, accounts: dict[str, Account], cases: list[tuple[list[Event], str]]
) -> list[float]:
    payloads = [
        InvocationRequest(events=history, accounts=[accounts[history[0].account_id]], event_ids=[event_id])
        .model_dump_json(exclude_none=True)
        .encode()
        for history, event_id in cases
    ]
    with _Server(model) as url, httpx.Client(base_url=url, headers={"Content-Type": "application/json"}) as client:
        for payload in payloads[:10]:
            client.post("/invocations", content=payload).raise_for_status()
        return [_timed(lambda p=p: client.post("/invocations", content=p).raise_for_status()) for p in payloads]


def _ms(seconds: float) -> float:
    return seconds * 1000


if __name__ == "__main__":
    main()
