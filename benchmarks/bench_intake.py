"""Alert intake at volume: throughput with 1 and 2 workers on 4 shards, alert-to-report latency, and alert-to-draft
latency with the embedded model.

    .venv/bin/python benchmarks/bench_intake.py [--alerts 3000] [--workers 1,2] [--rate 10 --steady-s 30]
                                                [--llm-alerts 4] [--out FILE]

Starts DynamoDB Local (in memory), kinesalite and, unless `--llm-alerts 0`, the llama.cpp server with the packaged
weights (`embedded_services`), and loads 50 accounts with three events each. Then, for each worker count, on a
fresh 4-shard stream and fresh tables:

- that many `fraudagent intake` processes are started (the deployed command, one per host or pod; no past cases in
  the store, so the similar-case search is off: FRAUDAGENT_SIMILAR_CASES=0), and the run waits until they hold the
  four leases;
- burst: `--alerts` alerts are put at once (PutRecords, 500 a call; one in ten `critical`, two in ten `high`, so
  three in ten queue a draft job) and timed from the first put to the last report on arrival stored: alerts/s;
- steady: `--rate` alerts a second for `--steady-s` seconds, each timed from its put to its case's `policy` report
  (the report's stamp, taken just before the transaction that stores it with the case): p50/p95. This includes
  the workers' wait between empty reads (FRAUDAGENT_INTAKE_POLL_S, default 1 s).

With the model: one intake process and one summary worker (a thread of this process) on the model server;
`--llm-alerts` `critical` alerts, one at a time (each after the previous one's draft is stored, so none waits
behind another), each timed from its put to its model-drafted report stored (`llm`, `llm_retried` or `fallback`).

Writes JSON (commit, cores, the load average at the start and the end, every figure) to `--out` (default
benchmarks/results/<UTC date>/intake.json) and prints markdown tables. Other work on the machine changes every
figure: read the load average with them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark modules

import bench_summaries

from fraudagent.bootstrap import build_investigator
from fraudagent.bundles.service import load_bundle
from fraudagent.cli.services import ManagedProcess, embedded_services, free_port
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.intake.service import Stream, open_stream
from fraudagent.store import dynamo
from fraudagent.store import intake as lease_store
from fraudagent.store import jobs as job_store
from fraudagent.store.tables import Tables
from fraudagent.summaries.flows import SummaryWorkers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ACCOUNTS = 50
SHARDS = 4


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def alert(n: int, *, tag: str, priority: str | None = None) -> tuple[str, bytes, str]:
    """The n-th alert: (alert id, record, partition key), on one of the loaded accounts and its scored event."""
    account = n % ACCOUNTS
    alert_id = f"AL-{tag}-{n:05d}"
    priority = priority or ("critical" if n % 10 == 0 else "high" if n % 10 in (3, 7) else "medium")
    record = {
        "record_version": 1,
        "alert_id": alert_id,
        "account_id": f"A-I{account:03d}",
        "raised_at": f"2026-03-{account % 28 + 1:02d}T14:05:00Z",
        "trigger": {"kind": "model", "detail": f"score 0.91 on C-I{account:03d}-E3"},
        "event_ids": [f"C-I{account:03d}-E3"],
        "priority": priority,
    }
    return alert_id, json.dumps(record).encode(), record["account_id"]


class Stack:
    """Fresh tables (with the accounts loaded) and a fresh 4-shard stream on the running servers."""

    def __init__(self, base: Settings) -> None:
        self.settings = base.model_copy(
            update={"table_prefix": "bi" + uuid.uuid4().hex[:8], "intake_stream": "alerts-" + uuid.uuid4().hex[:8]}
        )
        self.tables = Tables.connect(self.settings)
        dynamo.create_tables(self.tables.client, self.settings)
        for n in range(ACCOUNTS):
            bundle = bench_summaries.bundle(f"C-I{n:03d}", f"A-I{n:03d}", n % 28 + 1)
            load_bundle(self.tables, CaseBundle.model_validate(bundle), past_case_store=None, scorer=None)
        self.stream: Stream = open_stream(self.settings.model_copy(update={"intake_stream_shards": SHARDS}))
        self.put_at: dict[str, float] = {}  # alert id -> wall time of its PutRecords call
        self.last: dict[str, str] = {}  # shard -> the last sequence number put on it

    def put(self, records: list[tuple[str, bytes, str]]) -> None:
        for start in range(0, len(records), 500):
            chunk = records[start : start + 500]
            now = time.time()
            response = self.stream.client.put_records(
                StreamName=self.stream.name, Records=[{"Data": data, "PartitionKey": key} for _, data, key in chunk]
            )
            assert response.get("FailedRecordCount", 0) == 0, response
            for (alert_id, _, _), put in zip(chunk, response["Records"], strict=True):
                self.put_at[alert_id] = now
                shard, sequence = put["ShardId"], put["SequenceNumber"]
                if shard not in self.last or int(sequence) > int(self.last[shard]):
                    self.last[shard] = sequence

    def leases(self) -> list[lease_store.Lease]:
        return lease_store.leases(self.tables, stream=self.stream.name)

    def wait_read(self, timeout: float = 1800) -> None:
        """Until every shard's checkpoint is at its last record (all put so far is processed)."""
        deadline = time.monotonic() + timeout
        while {r.shard_id: r.checkpoint for r in self.leases() if r.shard_id in self.last} != self.last:
            if time.monotonic() > deadline:
                raise TimeoutError("intake did not read every record in time")
            time.sleep(0.25)

    def report_stamps(self, *, path: str | None = "policy") -> dict[str, tuple[float, dict[str, Any]]]:
        """Case id -> (stamp, details) of its `report.drafted` audit records (with `path`, or any but policy)."""
        items, request = (
            [],
            {
                "TableName": self.tables.audit,
                "FilterExpression": "#a = :a",
                "ExpressionAttributeNames": {"#a": "action"},
                "ExpressionAttributeValues": dynamo.to_item({":a": "report.drafted"}),
                "ConsistentRead": True,
            },
        )
        while True:
            response = self.tables.client.scan(**request)
            items += [dynamo.from_item(i) for i in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        stamps = {}
        for item in items:
            details = json.loads(item["details"])
            if (details["path"] == path) if path is not None else details["path"] != "policy":
                at = datetime.fromisoformat(item["at"]).timestamp()
                stamps[item["subject"].removeprefix("case#")] = (at, details)
        return stamps


def start_workers(stack: Stack, count: int, log_dir: Path, **env: str) -> list[subprocess.Popen[bytes]]:
    """`fraudagent intake` processes on the stack; returns once they hold the shards between them."""
    s = stack.settings
    environ = os.environ | {
        "FRAUDAGENT_DDB_ENDPOINT_URL": str(s.ddb_endpoint_url),
        "FRAUDAGENT_TABLE_PREFIX": s.table_prefix,
        "FRAUDAGENT_KINESIS_ENDPOINT_URL": str(s.kinesis_endpoint_url),
        "FRAUDAGENT_INTAKE_STREAM": stack.stream.name,
        "FRAUDAGENT_INTAKE_METRICS_PORT": "0",
        "FRAUDAGENT_SIMILAR_CASES": "0",
        "FRAUDAGENT_CHROMA_PATH": str(log_dir / "chroma"),
        "FRAUDAGENT_DATA_DIR": str(log_dir / "data"),
        "FRAUDAGENT_LOG_FORMAT": "text",
        **env,
    }
    workers = []
    for n in range(count):
        log = (log_dir / f"{stack.stream.name}-intake-{n}.log").open("wb")
        command = [sys.executable, "-m", "fraudagent.cli", "intake", "--worker-id", f"bench-intake-{n}"]
        workers.append(subprocess.Popen(command, env=environ, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
    deadline = time.monotonic() + 180
    while True:
        rows = [r for r in stack.leases() if not r.finished]
        owners = {r.owner for r in rows if r.held(time.time())}
        if len(rows) == SHARDS and None not in owners and len(owners) == count and all(r.owner for r in rows):
            return workers
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            stop_workers(workers)
            raise RuntimeError(f"the intake workers did not take the shards (logs in {log_dir})")
        time.sleep(0.5)


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # gives the leases back
    for worker in workers:
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)


def throughput(
    base: Settings, *, workers: int, alerts: int, rate: float, steady_s: float, log_dir: Path
) -> dict[str, Any]:
    stack = Stack(base)
    procs = start_workers(stack, workers, log_dir)
    try:
        burst = [alert(n, tag=f"B{workers}") for n in range(alerts)]
        stack.put(burst)
        stack.wait_read()
        stamps = stack.report_stamps()
        first_put = min(stack.put_at[a] for a, _, _ in burst)
        last_report = max(stamps[a][0] for a, _, _ in burst)
        burst_latency = [stamps[a][0] - stack.put_at[a] for a, _, _ in burst]

        steady = [alert(n, tag=f"S{workers}") for n in range(round(rate * steady_s))]
        t0 = time.time()
        for i, record in enumerate(steady):
            time.sleep(max(0.0, t0 + i / rate - time.time()))
            stack.put([record])
        stack.wait_read()
        stamps = stack.report_stamps()
        steady_latency = [stamps[a][0] - stack.put_at[a] for a, _, _ in steady]
    finally:
        stop_workers(procs)
    jobs = job_store.queue_depth(stack.tables)
    return {
        "workers": workers,
        "shards": SHARDS,
        "alerts": alerts,
        "burst_s": last_report - first_put,
        "alerts_per_s": alerts / (last_report - first_put),
        "burst_latency_p50_s": pct(burst_latency, 0.5),
        "burst_latency_p95_s": pct(burst_latency, 0.95),
        "steady_rate_per_s": rate,
        "steady_alerts": len(steady),
        "steady_latency_p50_s": pct(steady_latency, 0.5),
        "steady_latency_p95_s": pct(steady_latency, 0.95),
        "steady_latency_max_s": max(steady_latency),
        "draft_jobs_queued": jobs,
        "poll_s": base.intake_poll_s,
    }


def with_model(base: Settings, llm: ManagedProcess, *, alerts: int, log_dir: Path) -> dict[str, Any]:
    """`alerts` critical alerts, one at a time: put -> policy report -> draft job -> model report stored."""
    stack = Stack(base)
    settings = stack.settings.model_copy(
        update={
            "llm_base_url": llm.url,
            "llm_timeout_s": 900,
            "llm_max_retries": 1,
            "summary_poll_s": 0.2,
            "callback_secret": SecretStr("bench"),
        }
    )
    investigator = build_investigator(settings, tables=stack.tables, similar_cases=False)
    summaries = SummaryWorkers(settings=settings, investigator=investigator, tables=stack.tables, count=1)
    procs = start_workers(stack, 1, log_dir, FRAUDAGENT_AUTO_DRAFT_PRIORITIES="critical")
    summaries.start()
    rows = []
    try:
        for n in range(alerts):
            record = alert(n * 7 + 1, tag="L", priority="critical")  # a different account each time
            alert_id = record[0]
            stack.put([record])
            deadline = time.monotonic() + 1800
            while True:
                try:
                    job = job_store.get_job(stack.tables, f"draft-{alert_id}")
                    if job.status in ("done", "dead", "failed"):
                        break
                except Exception:  # not queued yet
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no draft for {alert_id}")
                time.sleep(0.2)
            policy = stack.report_stamps()[alert_id][0]
            drafted, details = stack.report_stamps(path=None)[alert_id]
            put = stack.put_at[alert_id]
            rows.append(
                {
                    "alert_id": alert_id,
                    "job_status": job.status,
                    "path": details["path"],
                    "put_to_policy_report_s": policy - put,
                    "put_to_model_report_s": drafted - put,
                }
            )
    finally:
        summaries.stop()
        stop_workers(procs)
    latency = [r["put_to_model_report_s"] for r in rows]
    return {
        "alerts": rows,
        "model_report_p50_s": statistics.median(latency),
        "model_report_max_s": max(latency),
        "paths": sorted({r["path"] for r in rows}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=3000, help="alerts in each burst")
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument("--rate", type=float, default=10.0, help="alerts a second in the steady phase")
    parser.add_argument("--steady-s", type=float, default=30.0, help="seconds of the steady phase")
    parser.add_argument("--llm-alerts", type=int, default=4, help="critical alerts drafted by the model (0: none)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the servers started here are stopped
    started = datetime.now(timezone.utc)
    out = args.out or HERE / "results" / started.strftime("%Y-%m-%d") / "intake.json"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
    ).stdout.strip()
    meta: dict[str, Any] = {
        "command": "benchmarks/bench_intake.py " + " ".join(sys.argv[1:]),
        "commit": commit,
        "started_at": started.isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    log_dir = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    probe = Settings()
    ports = {"ddb_port": free_port(), "kinesis_port": free_port(), "llm_port": free_port()}
    with embedded_services(probe, log_dir=log_dir, kinesis=True, llm=args.llm_alerts > 0, **ports) as servers:
        base = Settings(
            ddb_endpoint_url=servers["dynamodb"].url,
            kinesis_endpoint_url=servers["kinesis"].url,
            chroma_path=log_dir / "chroma",
            llm_base_url="http://127.0.0.1:9/v1",
            llm_max_retries=0,
            summary_workers=0,
        )
        runs = []
        for count in (int(w) for w in args.workers.split(",")):
            runs.append(
                throughput(
                    base, workers=count, alerts=args.alerts, rate=args.rate, steady_s=args.steady_s, log_dir=log_dir
                )
            )
            print(f"{count} worker(s): {runs[-1]['alerts_per_s']:.1f} alerts/s", file=sys.stderr, flush=True)
        model = with_model(base, servers["llm"], alerts=args.llm_alerts, log_dir=log_dir) if args.llm_alerts else None
    meta["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["seconds"] = round((datetime.now(timezone.utc) - started).total_seconds())
    result = meta | {"throughput": runs, "model": model}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")

    print(
        f"\nIntake on {meta['cpus']} cores, load average {meta['load_start']} at the start, {meta['load_end']} at the"
        f" end (commit {commit}, {meta['seconds']} s in all; {out})\n"
    )
    print(
        "| workers | shards | burst alerts | burst s | alerts/s | speed-up | burst put→report p50 / p95 s |"
        " steady rate /s | steady put→report p50 / p95 / max s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(
            f"| {r['workers']} | {r['shards']} | {r['alerts']} | {r['burst_s']:.1f} | {r['alerts_per_s']:.1f} |"
            f" {r['alerts_per_s'] / runs[0]['alerts_per_s']:.2f}x |"
            f" {r['burst_latency_p50_s']:.1f} / {r['burst_latency_p95_s']:.1f} | {r['steady_rate_per_s']:g} |"
            f" {r['steady_latency_p50_s']:.2f} / {r['steady_latency_p95_s']:.2f} / {r['steady_latency_max_s']:.2f} |"
        )
    if model:
        print("\n| critical alert | path | put → policy report s | put → model report s |")
        print("|---|---|---|---|")
        for row in model["alerts"]:
            print(
                f"| {row['alert_id']} | {row['path']} | {row['put_to_policy_report_s']:.2f} |"
                f" {row['put_to_model_report_s']:.1f} |"
            )


if __name__ == "__main__":
    main()
