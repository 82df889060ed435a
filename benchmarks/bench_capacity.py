"""DynamoDB cost of one alert and of one report, counted on the calls the code makes (the capacity model's inputs).

    .venv/bin/python benchmarks/bench_capacity.py [--alerts 20] [--out FILE]

Starts DynamoDB Local (in memory), kinesalite and a scripted OpenAI-compatible model on loopback, loads bundles of
the shipped `core` eval suite (simulated accounts with their real-looking histories, linked accounts, scores) and
then counts every DynamoDB call of the real code paths with botocore event hooks on the one client they share:
`provide-client-params` names the tables of each call and asks for `ReturnConsumedCapacity=INDEXES`;
`after-call` reads the consumed capacity (table and each index) or the error code (a failed conditional write
still costs write units on AWS; DynamoDB Local returns no capacity with an error, so those are counted apart).

Phases, each with its own count:
- `intake_medium`: `--alerts` alert records (no bundle, the account known, priority medium: no draft queued) put on
  a one-shard stream and read by one `IntakeWorker` until idle: case, report on arrival (facts and policy: the
  evidence pack's reads), audit, checkpoint, and the lease rounds that fall in the run;
- `intake_high`: the same with priority high: also the draft job and its audit record;
- `intake_bundle`: alerts that carry their whole case bundle (accounts, events and scores written first);
- `draft_jobs`: the summary workers work the draft jobs `intake_high` queued, one at a time: claim, heartbeat, the
  evidence pack, the model's draft (the scripted model answers at once, one call), the report and its stats item,
  audit, the summary saved on the job, the signed callback to a loopback receiver (begin and end of the delivery);
- `intake_idle`: one intake worker polling an empty stream for `--idle-s` seconds with the default poll and lease
  settings (what every intake replica costs while nothing arrives).

DynamoDB Local computes capacity units the way DynamoDB does (item size in 1 KB for writes, 4 KB for reads, half for
eventually consistent reads, double for transactions); the item sizes come from what the code writes, so the units
are those AWS would charge on-demand. Latency on DynamoDB Local says nothing about AWS and is not reported per call.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_summaries
import soak

from fraudagent import store
from fraudagent.bootstrap import build_investigator
from fraudagent.bundles.service import load_bundle
from fraudagent.cli.services import free_port, start_dynamodb_local, start_kinesalite
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.evals.suites import SHIPPED
from fraudagent.intake.flows import IntakeContext, IntakeWorker
from fraudagent.intake.service import open_stream
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables
from fraudagent.summaries.flows import SummaryWorkers

READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
CAPACITY_OPS = READS | {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


class Meter:
    """Every DynamoDB call of one client: count by operation and table, capacity by table and index."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.prefix = prefix + "-"
        self.lock = threading.Lock()
        self.reset()
        events = client.meta.events
        events.register("provide-client-params.dynamodb.*", self._before)
        events.register("after-call.dynamodb.*", self._after)

    def reset(self) -> None:
        with self.lock:
            self.calls: Counter[str] = Counter()
            self.errors: Counter[str] = Counter()
            self.units: defaultdict[str, float] = defaultdict(float)

    def _short(self, table: str) -> str:
        return table.removeprefix(self.prefix)

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        tables: list[str] = []
        if "TableName" in params:
            tables = [params["TableName"]]
        elif "RequestItems" in params:
            tables = list(params["RequestItems"])
        elif "TransactItems" in params:
            for item in params["TransactItems"]:
                tables += [part["TableName"] for part in item.values() if "TableName" in part]
        context["meter_tables"] = sorted({self._short(t) for t in tables})
        if model.name in CAPACITY_OPS:
            params["ReturnConsumedCapacity"] = "INDEXES"

    def _after(self, http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        op = model.name
        kind = "RCU" if op in READS else "WCU"
        tables = "+".join(context.get("meter_tables") or ["-"])  # a transaction counts once, under all its tables
        with self.lock:
            self.calls[f"{op} {tables}"] += 1
            code = (parsed.get("Error") or {}).get("Code")
            if code:
                self.errors[f"{op} {tables} {code}"] += 1
            capacity = parsed.get("ConsumedCapacity")
            for entry in capacity if isinstance(capacity, list) else [capacity] if capacity else []:
                table = self._short(entry.get("TableName", "-"))
                own = entry.get("Table", {}).get("CapacityUnits", entry.get("CapacityUnits", 0.0))
                self.units[f"{kind} {table}"] += float(own or 0.0)
                for index, used in (entry.get("GlobalSecondaryIndexes") or {}).items():
                    self.units[f"{kind} {table}/{index}"] += float(used.get("CapacityUnits", 0.0))

    def snapshot(self, per: int) -> dict[str, Any]:
        with self.lock:
            calls = dict(sorted(self.calls.items()))
            units = dict(sorted(self.units.items()))
            errors = dict(sorted(self.errors.items()))
        total = {
            "calls": sum(calls.values()),
            "RCU": sum(v for k, v in units.items() if k.startswith("RCU") and "/" not in k),
            "WCU": sum(v for k, v in units.items() if k.startswith("WCU") and "/" not in k),
            "GSI_RCU": sum(v for k, v in units.items() if k.startswith("RCU") and "/" in k),
            "GSI_WCU": sum(v for k, v in units.items() if k.startswith("WCU") and "/" in k),
        }
        return {
            "per": per,
            "per_item": {k: round(v / per, 2) for k, v in total.items()},
            "total": {k: round(v, 2) for k, v in total.items()},
            "calls": calls,
            "units": {k: round(v, 2) for k, v in units.items()},
            "conditional_or_other_errors": errors,
        }


def core_bundles() -> list[dict[str, Any]]:
    """The shipped core suite's bundles, `expected` removed as the eval loader does."""
    docs = [json.loads(p.read_text()) for p in sorted((SHIPPED / "core" / "cases").glob("*.json"))]
    for doc in docs:
        doc.pop("expected", None)
    return docs


def alert(doc: dict[str, Any], alert_id: str, priority: str, *, with_bundle: bool) -> bytes:
    """An alert record (README, "Alert intake") for a bundle's case: its account, time, scored trigger events."""
    scored = sorted(doc.get("scores") or [], key=lambda s: -s["score"])
    event_ids = [s["event_id"] for s in scored[:3]] or [doc["events"][-1]["event_id"]]
    record = {
        "record_version": 1,
        "alert_id": alert_id,
        "account_id": doc["case"]["account_id"],
        "raised_at": doc["case"]["opened_at"],
        "trigger": {"kind": "model", "detail": "score above threshold"},
        "event_ids": event_ids,
        "priority": priority,
        "bundle": doc if with_bundle else None,
    }
    return json.dumps(record).encode()


@contextmanager
def measured(meter: Meter, results: dict[str, Any], name: str, per: int) -> Iterator[None]:
    meter.reset()
    started = time.perf_counter()
    yield
    results[name] = meter.snapshot(per) | {"wall_s_local": round(time.perf_counter() - started, 2)}
    print(f"{name}: {json.dumps(results[name]['per_item'])}", file=sys.stderr)


def put_all(stream: Any, records: list[bytes], key: str) -> list[int]:
    for data in records:
        stream.client.put_record(StreamName=stream.name, Data=data, PartitionKey=key)
    return [len(r) for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=20, help="alerts per intake phase")
    parser.add_argument("--idle-s", type=float, default=20.0, help="seconds of the idle intake worker")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    load_start = os.getloadavg()
    results: dict[str, Any] = {"command": " ".join(sys.argv), "cpus": os.cpu_count()}
    with ExitStack() as stack:
        base = Path(stack.enter_context(_tempdir()))
        ddb = start_dynamodb_local(Settings(), port=free_port(), log_dir=base / "logs")
        stack.callback(ddb.stop)
        kinesis = start_kinesalite(Settings(), port=free_port(), log_dir=base / "logs")
        stack.callback(kinesis.stop)
        model = soak.ScriptedModel(0.0, 0.0)
        stack.callback(model.shutdown)
        receiver = bench_summaries.Receiver(secret="bench")
        stack.callback(receiver.server.shutdown)
        prefix = "cap" + uuid.uuid4().hex[:8]
        settings = Settings(
            ddb_endpoint_url=ddb.url,
            kinesis_endpoint_url=kinesis.url,
            table_prefix=prefix,
            chroma_path=base / "chroma",
            llm_base_url=model.url,
            llm_max_retries=0,
            intake_stream="alerts-" + uuid.uuid4().hex[:8],
            intake_stream_shards=1,
            auto_draft_priorities=["critical", "high"],
            intake_callback_url=receiver.url,
            callback_secret=SecretStr("bench"),
            summary_workers=0,
        )
        tables = Tables.connect(settings)
        dynamo.create_tables(tables.client, settings)
        investigator = build_investigator(settings, tables=tables, similar_cases=False)
        docs = core_bundles()
        n = args.alerts
        stored, carried = docs[: 2 * n], docs[2 * n : 3 * n]
        for doc in stored:  # the accounts and histories the alerts without a bundle name
            load_bundle(tables, CaseBundle.model_validate(doc), past_case_store=None, scorer=None)
        meter = Meter(tables.client, prefix)
        stream = open_stream(settings)
        ctx = IntakeContext(settings=settings, investigator=investigator, stream=stream)
        sizes: dict[str, list[int]] = {}

        def intake(name: str, records: list[bytes]) -> None:
            sizes[name] = put_all(stream, records, key=name)
            with measured(meter, results, name, len(records)):
                worker = IntakeWorker(ctx, worker=f"bench-{name}")
                worker.run_until_idle()
                worker.stop()
            results[name]["outcomes"] = dict(worker.outcomes)

        intake("intake_medium", [alert(d, f"AL-M-{i}", "medium", with_bundle=False) for i, d in enumerate(stored[:n])])
        high = [alert(d, f"AL-H-{i}", "high", with_bundle=False) for i, d in enumerate(stored[n : 2 * n])]
        intake("intake_high", high)
        intake("intake_bundle", [alert(d, f"AL-B-{i}", "medium", with_bundle=True) for i, d in enumerate(carried)])

        workers = SummaryWorkers(settings=settings, investigator=investigator, tables=tables, count=0)
        with measured(meter, results, "draft_jobs", n):
            worked = 0
            while workers.work_one("bench-worker"):
                worked += 1
        results["draft_jobs"]["jobs_worked"] = worked
        results["draft_jobs"]["callbacks_received"] = len(receiver.got)
        results["draft_jobs"]["report_paths"] = dict(
            Counter(r.get("path") for i in range(n) for r in store.reports.reports(tables, f"AL-H-{i}", limit=1))
        )
        workers.ctx.http.close()

        idle = IntakeWorker(ctx, worker="bench-idle")
        with measured(meter, results, "intake_idle", 1):
            idle.start()
            time.sleep(args.idle_s)
            idle.stop()
        results["intake_idle"]["seconds"] = args.idle_s
        results["intake_idle"]["per_hour"] = {
            k: round(v * 3600 / args.idle_s) for k, v in results["intake_idle"]["total"].items()
        }
        results["record_bytes"] = {
            k: {"min": min(v), "max": max(v), "mean": round(sum(v) / len(v))} for k, v in sizes.items()
        }
        results["settings"] = {
            "intake_batch_size": settings.intake_batch_size,
            "intake_poll_s": settings.intake_poll_s,
            "intake_lease_s": settings.intake_lease_s,
            "summary_lease_s": settings.summary_lease_s,
            "evidence_max_events": settings.evidence_max_events,
        }
    results["load_average_start"] = [round(x, 2) for x in load_start]
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


@contextmanager
def _tempdir() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-capacity-") as path:
        yield path


if __name__ == "__main__":
    main()
