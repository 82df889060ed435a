"""Ticketing summaries under a burst, and (with --llm) chat and summary latency with the embedded model.

    .venv/bin/python benchmarks/bench_summaries.py [--jobs 100] [--workers 1,2,4] [--llm]

Starts DynamoDB Local in memory, loads three small cases, drafts their reports beforehand (the
deterministic path: no model is reachable), serves the API with N summary workers (uvicorn in a
thread of this process), and POSTs a burst of summary requests, each with a callback to a loopback
receiver. It checks that every job completes and that the receiver got each job exactly once, and
prints a markdown table; ratios are against the first worker count in the same run.

With --llm it also starts the llama.cpp server (the packaged 0.5B weights) and measures, once each,
the time to the first streamed chat token and the latency of a summary job that has to draft its
report with the model.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from fraudagent.agent.pipeline import Investigator, draft_and_store
from fraudagent.api.app import create_app
from fraudagent.bootstrap import build_investigator
from fraudagent.bundles.service import load_bundle
from fraudagent.cli.services import ManagedProcess, free_port, start_dynamodb_local, start_llama_server
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables
from fraudagent.summaries import callbacks

KEY = "bench-" + uuid.uuid4().hex


def bundle(case_id: str, account_id: str, day: int) -> dict[str, Any]:
    return {
        "bundle_version": 1,
        "case": {
            "case_id": case_id,
            "account_id": account_id,
            "opened_at": f"2026-03-{day:02d}T14:05:00Z",
            "trigger": {"kind": "model", "detail": f"score 0.91 on {case_id}-E3"},
            "priority": "high",
            "note": "customer says they did not buy these",
        },
        "accounts": [
            {
                "account_id": account_id,
                "created_at": "2019-06-01T10:00:00Z",
                "country": "US",
                "email_domain": "example.com",
            }
        ],
        "events": [
            {
                "event_id": f"{case_id}-E1",
                "account_id": account_id,
                "ts": "2026-02-10T18:00:00Z",
                "type": "login",
                "device_id": f"D-{case_id}-1",
                "ip": "198.51.100.20",
                "ip_country": "US",
            },
            {
                "event_id": f"{case_id}-E2",
                "account_id": account_id,
                "ts": f"2026-03-{day:02d}T13:42:00Z",
                "type": "password_reset",
                "device_id": f"D-{case_id}-2",
                "ip": "203.0.113.9",
                "ip_country": "RO",
            },
            {
                "event_id": f"{case_id}-E3",
                "account_id": account_id,
                "ts": f"2026-03-{day:02d}T14:01:10Z",
                "type": "gift_card_purchase",
                "amount": "100.00",
                "currency": "USD",
                "category": "gift_card",
                "device_id": f"D-{case_id}-2",
                "ip": "203.0.113.9",
                "ip_country": "RO",
                "instrument_id": f"PI-{case_id}",
                "instrument_type": "card",
                "bin_country": "US",
                "status": "settled",
            },
        ],
        "scores": [
            {
                "event_id": f"{case_id}-E3",
                "model_version": "ref-gbm-1",
                "score": 0.91,
                "reasons": [{"feature": "new_device", "value": 1, "contribution": 0.21}],
            }
        ],
    }


class Receiver:
    """A loopback callback receiver: (X-Delivery-Id, time) per POST; with `secret`, X-Delivery-Ids whose signature
    does not verify go to `bad_signatures`."""

    def __init__(self, secret: str | None = None) -> None:
        self.got: list[tuple[str, float]] = []
        self.bad_signatures: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if secret is not None and not callbacks.verify(
                    secret, self.headers.get("X-Timestamp", ""), body, self.headers.get("X-Signature", "")
                ):
                    receiver.bad_signatures.append(self.headers["X-Delivery-Id"])
                receiver.got.append((self.headers["X-Delivery-Id"], time.time()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


class Api:
    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers={"Authorization": f"Bearer {KEY}"}, timeout=900
        )

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def stores(ddb: ManagedProcess, base: Path, **changes: Any) -> tuple[Settings, Investigator]:
    settings = Settings(
        ddb_endpoint_url=ddb.url,
        table_prefix="b" + uuid.uuid4().hex[:10],
        chroma_path=base / uuid.uuid4().hex,
        api_key=SecretStr(KEY),
        llm_base_url="http://127.0.0.1:9/v1",
        llm_max_retries=0,
        llm_timeout_s=5,
        callback_secret=SecretStr("bench"),
        summary_poll_s=0.1,
        **changes,
    )
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    for n in range(3):
        load_bundle(
            history, CaseBundle.model_validate(bundle(f"C-B{n}", f"A-B{n}", n + 2)), past_case_store=None, scorer=None
        )
    return settings, build_investigator(settings, tables=history, similar_cases=False)


def burst(ddb: ManagedProcess, base: Path, *, jobs: int, workers: int) -> dict[str, float]:
    settings, investigator = stores(
        ddb, base, summary_workers=workers, api_rate_limit_per_minute=0
    )  # the jobs, not the limiter
    for n in range(3):
        draft_and_store(investigator, f"C-B{n}")
    receiver = Receiver()
    with Api(create_app(settings, investigator)) as client:
        t0 = time.time()
        with ThreadPoolExecutor(8) as pool:
            accepted = list(
                pool.map(
                    lambda n: client.post(
                        "/v1/summaries",
                        json={
                            "case_id": f"C-B{n % 3}",
                            "format": ("markdown", "jira", "servicenow")[n % 3],
                            "callback_url": receiver.url,
                        },
                    ),
                    range(jobs),
                )
            )
        t_accepted = time.time()
        ids = [a.json()["job_id"] for a in accepted]
        deadline = time.time() + 900
        while len(receiver.got) < jobs and time.time() < deadline:
            time.sleep(0.05)
        t_done = time.time()
        # a worker records the delivery after the receiver answered: read the jobs once they are all recorded (bounded)
        while True:
            final = [client.get(f"/v1/summaries/{i}").json() for i in ids]
            if all(j["status"] in ("done", "dead", "failed") for j in final) or time.time() > deadline:
                break
            time.sleep(0.2)
    receiver.server.shutdown()
    statuses = Counter(j["status"] for j in final)
    per_job = Counter(i for i, _ in receiver.got)
    latencies = [
        datetime.fromisoformat(j["delivered_at"]).timestamp() - datetime.fromisoformat(j["created_at"]).timestamp()
        for j in final
        if j.get("delivered_at")
    ]
    return {
        "workers": workers,
        "jobs": jobs,
        "done": statuses.get("done", 0),
        "duplicates": sum(c - 1 for c in per_job.values()),
        "missing": len(set(ids) - set(per_job)),
        "accept_s": t_accepted - t0,
        "all_delivered_s": t_done - t0,
        "jobs_per_s": jobs / (t_done - t0),
        "p50_s": statistics.median(latencies) if latencies else float("nan"),
        "p95_s": (
            statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 20 else max(latencies, default=float("nan"))
        ),
    }


def chat_first_token(ddb: ManagedProcess, base: Path, llm_url: str, *, questions: int = 1) -> list[dict[str, Any]]:
    """Time to the first streamed chat token (client side and as the server measured it), once per question."""
    settings, investigator = stores(ddb, base, summary_workers=0)
    settings = settings.model_copy(update={"llm_base_url": llm_url, "llm_timeout_s": 900, "llm_max_retries": 1})
    investigator = build_investigator(settings, tables=investigator.history, similar_cases=False)
    rows = []
    asked = ("What happened after the password reset?", "Why was this case flagged?", "Which accounts are linked?")
    with Api(create_app(settings, investigator)) as client:
        for n in range(questions):
            t1 = time.time()
            first, final = None, {}
            with client.stream(
                "POST", f"/v1/cases/C-B{n % 3}/chat", json={"message": asked[n % len(asked)]}
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("event: token") and first is None:
                        first = time.time() - t1
                    if line.startswith("data:") and '"session_id"' in line:
                        final = json.loads(line[5:])
            rows.append(
                {
                    "question": asked[n % len(asked)],
                    "chat_first_token_s": first if first is not None else float("nan"),
                    "chat_total_s": time.time() - t1,
                    "chat_cited": len(final.get("cited_ids", [])),
                    "chat_server_first_token_s": final.get("first_token_s"),
                    "model_unavailable": final.get("model_unavailable"),
                }
            )
    return rows


def summary_with_model(ddb: ManagedProcess, base: Path, llm_url: str) -> dict[str, Any]:
    """One summary job that has to draft its report with the model: its latency and the report's path."""
    settings, investigator = stores(ddb, base, summary_workers=1)
    settings = settings.model_copy(update={"llm_base_url": llm_url, "llm_timeout_s": 900, "llm_max_retries": 1})
    investigator = build_investigator(settings, tables=investigator.history, similar_cases=False)
    with Api(create_app(settings, investigator)) as client:
        t0 = time.time()
        job_id = client.post("/v1/summaries", json={"case_id": "C-B0", "format": "markdown"}).json()["job_id"]
        while (job := client.get(f"/v1/summaries/{job_id}").json())["status"] not in ("done", "dead", "failed"):
            time.sleep(0.2)
        return {"summary_job_s": time.time() - t0, "summary_path": job["result"]["report_path"]}


def with_llm(ddb: ManagedProcess, base: Path) -> dict[str, Any]:
    probe = Settings()
    llm = start_llama_server(probe, port=free_port(), log_dir=base / "logs")
    try:
        return summary_with_model(ddb, base, llm.url) | chat_first_token(ddb, base, llm.url)[0]
    finally:
        llm.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument(
        "--llm", action="store_true", help="also measure chat first token and a summary drafted by the local model"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the servers started here are stopped
    base = Path(tempfile.mkdtemp(prefix="bench-summaries-"))
    ddb = start_dynamodb_local(Settings(), port=free_port(), log_dir=base / "logs")
    try:
        rows = [burst(ddb, base, jobs=args.jobs, workers=int(w)) for w in args.workers.split(",")]
        baseline = rows[0]["all_delivered_s"]
        print(
            "\n| workers | jobs | done | duplicates | missing | accept all (s) | all delivered (s) | jobs/s | p50 job"
            f" (s) | p95 job (s) | speed-up vs {rows[0]['workers']} |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['workers']} | {r['jobs']} | {r['done']} | {r['duplicates']} | {r['missing']} |"
                f" {r['accept_s']:.2f} | {r['all_delivered_s']:.2f} | {r['jobs_per_s']:.1f} | {r['p50_s']:.2f} |"
                f" {r['p95_s']:.2f} | {baseline / r['all_delivered_s']:.2f}x |"
            )
        if args.llm:
            print("\nwith the embedded model:", json.dumps(with_llm(ddb, base), indent=1))
    finally:
        ddb.stop()


if __name__ == "__main__":
    main()
