"""Soak: a bounded mixed load for N minutes against the API process on loopback; errors, p99, memory growth.

    .venv/bin/python benchmarks/soak.py [--minutes 3] [--users 4] [--chat scripted|real] [--out FILE]
    .venv/bin/python benchmarks/soak.py --url http://127.0.0.1:8000 --key "$FRAUDAGENT_API_KEY" \
        [--pid PID] [--minutes 3]

Without --url it starts what it measures: DynamoDB Local (in memory), a model endpoint and
`fraudagent serve` in a process of its own (2 summary workers), loads 30 cases and stores a policy
report for each (so summary jobs render and deliver, as the ticketing system sees them). The model is
either `scripted` (default: a loopback OpenAI-compatible server that streams a fixed answer citing the
case's first transaction, about 25 ms a token: it exercises the API's chat path, not the model) or
`real` (the packaged llama.cpp server: each chat turn then takes tens of seconds on 2 cores).

With --url it loads nothing and drives a running service (an admin key, or a key with the analyst and
ticketing roles); --pid names the API process for the memory figure (default: the process listening
on the URL's port, when it can be found).

Each of --users threads loops without think time until the deadline, choosing: the queue (30%), a case's
detail with its evidence pack (40%), a chat turn read to its final SSE event (15%), a summary job with a
signed callback to a loopback receiver (15%). At the end it waits (bounded) for every job to finish.

Errors (target 0): a request that fails or times out; an unexpected status (anything but 200 / 202; a
429 is counted apart as rate-limited); a chat stream without its final event or whose final event says
the model is unavailable; a job that is not `done` at the end; a callback missing or received twice.
Memory: the API process's resident set size (psutil) sampled every 5 s: at the start of the load, after
the first minute (warm-up: caches, connection pools, the embedder), at the end, and the growth after
warm-up per minute.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_summaries

from fraudagent.agent.pipeline import draft_and_store
from fraudagent.bootstrap import build_investigator
from fraudagent.bundles.service import load_bundle
from fraudagent.cli.services import free_port, start_dynamodb_local, start_llama_server
from fraudagent.core.models import CaseBundle
from fraudagent.core.settings import Settings
from fraudagent.store import dynamo
from fraudagent.store.tables import Tables

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CALLBACK_SECRET = "soak-" + uuid.uuid4().hex
CASES = 30
MIX = (("list", 30), ("detail", 40), ("chat", 15), ("summary", 15))
QUESTIONS = (
    "What happened after the password reset?",
    "Why was this case flagged?",
    "Which accounts are linked?",
    "Summarise the purchases.",
)


# --- the scripted model: a loopback OpenAI-compatible endpoint ----------------------------------------------


class ScriptedModel(ThreadingHTTPServer):
    """An OpenAI-compatible loopback endpoint that streams like the llama.cpp server, about `token_delay_s` a token.

    A chat call gets a fixed answer citing the prompt's first `txn:` id. A draft (a call with a `response_format`
    schema) gets a draft built from the schema (the first typology branch, its first action, the first findings, one
    sentence), so it parses and the verifier decides its path. A client that closes the stream stops the generation,
    as on the real server. With `prompt_token_s`, the first token comes after that many seconds per prompt token (about
    4 characters), as the real server evaluates the prompt first. A call without `stream` (the start-up probe of schema
    support) gets a two-token answer. /v1/models answers for readiness."""

    daemon_threads = True

    def __init__(self, token_delay_s: float = 0.025, prompt_token_s: float = 0.0) -> None:
        self.token_delay_s = token_delay_s
        self.prompt_token_s = prompt_token_s
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def scripted_draft(schema: dict[str, Any]) -> str:
    """A draft that satisfies the per-case schema of agent/drafting.py (its first branch)."""
    branch = (schema.get("anyOf") or [schema])[0]["properties"]
    return json.dumps(
        {
            "typology": branch["typology"]["const"],
            "actions": branch["actions"]["items"]["enum"][:1],
            "confidence": "medium",
            "findings": branch["findings"]["items"]["enum"][:2],
            "unknowns": [],
            "narrative": ["The account shows the activity listed in the findings and needs review."],
        }
    )


class _ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedModel
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, media: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", media)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, json.dumps({"object": "list", "data": [{"id": "scripted", "object": "model"}]}).encode())

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        if not request.get("stream"):
            self._send(
                200,
                json.dumps(
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "scripted",
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": "{}"}, "finish_reason": "length"}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                    }
                ).encode(),
            )
            return
        prompt = " ".join(str(m.get("content", "")) for m in request.get("messages", []))
        schema = (request.get("response_format") or {}).get("schema")
        if schema:
            text = scripted_draft(schema)
            pieces = [text[i : i + 4] for i in range(0, len(text), 4)]  # about a token each
        else:
            cited = re.search(r"txn:[A-Za-z0-9_.\-]+", prompt)
            pieces = [
                word + " "
                for word in (
                    "The case shows a password reset followed by a gift card purchase "
                    f"[{cited.group(0) if cited else 'txn:none'}]; a new device and a new country were used."
                ).split(" ")
            ]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        time.sleep(self.server.prompt_token_s * len(prompt) / 4)  # evaluating the prompt: nothing is sent meanwhile
        try:
            for n, piece in enumerate(pieces):
                chunk = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "scripted",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": piece} if n == 0 else {"content": piece},
                            "finish_reason": None,
                        }
                    ],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(self.server.token_delay_s)
            end = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "scripted",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
        except OSError:  # the client went away: stop generating, as the llama.cpp server does
            pass
        self.close_connection = True

    def log_message(self, *_: object) -> None:
        pass


# --- the service under test ----------------------------------------------------------------------------------


def start_service(
    stack: ExitStack,
    base: Path,
    chat: str,
    *,
    cases: int = CASES,
    reports: bool = True,
    ddb_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    token_delay_s: float = 0.025,
    prompt_token_s: float = 0.0,
) -> tuple[str, str, int, list[str]]:
    """DynamoDB Local (or the one at `ddb_url`), the model, `cases` cases (each with a stored policy report unless
    `reports` is off: then a summary job drafts one), `fraudagent serve` as a process (`extra_env` over its defaults).
    (url, admin key, pid, case ids)"""
    (base / "logs").mkdir(parents=True, exist_ok=True)
    if ddb_url is None:
        ddb = start_dynamodb_local(Settings(), port=free_port(), log_dir=base / "logs")
        stack.callback(ddb.stop)
        ddb_url = ddb.url
    if chat == "real":
        llm = start_llama_server(Settings(), port=free_port(), log_dir=base / "logs", timeout=600)
        stack.callback(llm.stop)
        llm_url = llm.url
    else:
        scripted = ScriptedModel(token_delay_s, prompt_token_s)
        stack.callback(scripted.shutdown)
        llm_url = scripted.url
    key = "soak-" + uuid.uuid4().hex
    prefix = "soak" + uuid.uuid4().hex[:8]
    settings = Settings(
        ddb_endpoint_url=ddb_url, table_prefix=prefix, chroma_path=base / "chroma", llm_base_url=llm_url
    )
    history = Tables.connect(settings)
    dynamo.create_tables(history.client, settings)
    case_ids = []
    investigator = build_investigator(settings, tables=history, similar_cases=False)
    for n in range(cases):
        case_id = f"C-S{n:03d}"
        load_bundle(
            history,
            CaseBundle.model_validate(bench_summaries.bundle(case_id, f"A-S{n:03d}", 1 + n % 28)),
            past_case_store=None,
            scorer=None,
        )
        if reports:
            draft_and_store(investigator, case_id, use_model=False, requested_by="soak")
        case_ids.append(case_id)
    port = free_port()
    env = (
        os.environ
        | {
            "FRAUDAGENT_DDB_ENDPOINT_URL": ddb_url,
            "FRAUDAGENT_TABLE_PREFIX": prefix,
            "FRAUDAGENT_CHROMA_PATH": str(base / "chroma"),
            "FRAUDAGENT_LLM_BASE_URL": llm_url,
            "FRAUDAGENT_LLM_TIMEOUT_S": "600",
            "FRAUDAGENT_API_KEY": key,
            "FRAUDAGENT_API_PORT": str(port),
            "FRAUDAGENT_API_RATE_LIMIT_PER_MINUTE": "0",
            "FRAUDAGENT_CALLBACK_SECRET": CALLBACK_SECRET,
            "FRAUDAGENT_SUMMARY_WORKERS": "2",
            "FRAUDAGENT_SUMMARY_POLL_S": "0.5",
            "FRAUDAGENT_LOG_LEVEL": "WARNING",
        }
        | (extra_env or {})
    )
    log = (base / "logs" / "api.log").open("wb")
    api = subprocess.Popen(
        [sys.executable, "-m", "fraudagent.cli", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )

    def stop_api() -> None:
        if api.poll() is None:
            api.send_signal(signal.SIGINT)
            try:
                api.wait(timeout=20)
            except subprocess.TimeoutExpired:
                api.kill()
                api.wait()
        log.close()

    stack.callback(stop_api)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if api.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the API did not start; see {base / 'logs' / 'api.log'}")
        time.sleep(0.3)
    return url, key, api.pid, case_ids


def pid_listening_on(url: str) -> int | None:
    port = urlsplit(url).port or 80
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    except psutil.AccessDenied:
        return None
    return None


# --- the load ---------------------------------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.rate_limited = 0
        self.jobs: list[str] = []

    def ok(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latency[kind].append(seconds)

    def error(self, kind: str, what: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            self.examples.setdefault(kind, what[:300])


def one_request(client: httpx.Client, kind: str, case_ids: list[str], receiver_url: str | None, tally: Tally) -> None:
    case_id = random.choice(case_ids)
    start = time.perf_counter()
    try:
        if kind == "list":
            response = client.get("/v1/cases", params={"limit": 20})
        elif kind == "detail":
            response = client.get(f"/v1/cases/{case_id}")
        elif kind == "summary":
            body: dict[str, Any] = {"case_id": case_id, "format": random.choice(("markdown", "jira", "servicenow"))}
            if receiver_url:
                body["callback_url"] = receiver_url
            response = client.post("/v1/summaries", json=body)
            if response.status_code == 202:
                with tally.lock:
                    tally.jobs.append(response.json()["job_id"])
        else:
            final = None
            with client.stream(
                "POST", f"/v1/cases/{case_id}/chat", json={"message": random.choice(QUESTIONS)}
            ) as response:
                if response.status_code == 200:
                    for line in response.iter_lines():
                        if line.startswith("data:") and '"session_id"' in line:
                            final = json.loads(line[5:])
                else:
                    response.read()
            if response.status_code == 200:
                if final is None:
                    tally.error(kind, "the stream ended without a final event")
                    return
                if final.get("model_unavailable"):
                    tally.error(kind, f"model unavailable: {final.get('answer', '')}")
                    return
    except httpx.HTTPError as error:
        tally.error(kind, f"{type(error).__name__}: {error}")
        return
    if response.status_code == 429:
        with tally.lock:
            tally.rate_limited += 1
        return
    if response.status_code not in (200, 202):
        tally.error(kind, f"HTTP {response.status_code}: {response.text[:200]}")
        return
    tally.ok(kind, time.perf_counter() - start)


def sample_memory(pid: int | None, stop: threading.Event, samples: list[tuple[float, int]], t0: float) -> None:
    if pid is None:
        return
    process = psutil.Process(pid)
    while True:
        try:
            samples.append((time.monotonic() - t0, process.memory_info().rss))
        except psutil.Error:
            return
        if stop.wait(5):
            samples.append((time.monotonic() - t0, process.memory_info().rss))
            return


def run(
    url: str, key: str, pid: int | None, case_ids: list[str], *, minutes: float, users: int, callbacks: bool
) -> dict[str, Any]:
    tally = Tally()
    receiver = bench_summaries.Receiver() if callbacks else None
    kinds = [k for k, w in MIX for _ in range(w)]
    deadline = time.monotonic() + minutes * 60
    t0 = time.monotonic()
    memory: list[tuple[float, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_memory, args=(pid, stop, memory, t0), daemon=True)
    sampler.start()

    def user(n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
            while time.monotonic() < deadline:
                one_request(client, rng.choice(kinds), case_ids, receiver.url if receiver else None, tally)

    threads = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=minutes * 60 + 300)
    load_s = time.monotonic() - t0
    # every job accepted must finish (bounded wait), and its callback arrive exactly once
    statuses: Counter[str] = Counter()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        wait_until = time.monotonic() + 120
        pending = list(tally.jobs)
        while pending and time.monotonic() < wait_until:
            pending = [
                j
                for j in pending
                if client.get(f"/v1/summaries/{j}").json()["status"] not in ("done", "dead", "failed")
            ]
            time.sleep(0.5)
        for job_id in tally.jobs:
            statuses[client.get(f"/v1/summaries/{job_id}").json()["status"]] += 1
    stop.set()
    sampler.join(timeout=10)
    for status, count in statuses.items():
        if status != "done":
            tally.errors[f"job {status}"] += count
    if receiver:
        time.sleep(1)
        delivered = Counter(i for i, _ in receiver.got)
        missing = len(set(tally.jobs) - set(delivered))
        duplicates = sum(c - 1 for c in delivered.values())
        if missing:
            tally.errors["callback missing"] += missing
        if duplicates:
            tally.errors["callback duplicated"] += duplicates
        receiver.server.shutdown()
    all_latency = [x for xs in tally.latency.values() for x in xs]
    per_kind = {
        k: {
            "ok": len(v),
            "errors": tally.errors.get(k, 0),
            "p50 ms": 1000 * statistics.median(v),
            "p99 ms": 1000 * sorted(v)[min(len(v) - 1, round(0.99 * (len(v) - 1)))],
        }
        for k, v in sorted(tally.latency.items())
    }
    mb = 1024 * 1024
    warm = [rss for t, rss in memory if t >= 60] or [rss for _, rss in memory]
    after = [(t, rss) for t, rss in memory if t >= 60]
    slope = None
    if len(after) >= 3:
        ts, rs = zip(*after)
        mt, mr = statistics.fmean(ts), statistics.fmean(rs)
        slope = sum((t - mt) * (r - mr) for t, r in after) / sum((t - mt) ** 2 for t in ts) * 60 / mb
    return {
        "minutes": minutes,
        "users": users,
        "load_s": load_s,
        "requests": len(all_latency) + sum(tally.errors.values()),
        "errors": sum(tally.errors.values()),
        "errors_by_kind": dict(tally.errors),
        "error_examples": tally.examples,
        "rate_limited": tally.rate_limited,
        "p50_ms": 1000 * statistics.median(all_latency) if all_latency else None,
        "p99_ms": (
            1000 * sorted(all_latency)[min(len(all_latency) - 1, round(0.99 * (len(all_latency) - 1)))]
            if all_latency
            else None
        ),
        "per_kind": per_kind,
        "jobs": len(tally.jobs),
        "job_statuses": dict(statuses),
        "pid": pid,
        "rss_start_mb": memory[0][1] / mb if memory else None,
        "rss_after_warmup_mb": warm[0] / mb if warm else None,
        "rss_end_mb": memory[-1][1] / mb if memory else None,
        "rss_max_mb": max(r for _, r in memory) / mb if memory else None,
        "rss_growth_mb_per_min_after_warmup": slope,
        "memory_samples": len(memory),
    }


def render(result: dict[str, Any], chat: str) -> str:
    fmt = lambda v, unit="": "n/a" if v is None else f"{v:.1f}{unit}"  # noqa: E731
    lines = [
        (
            f"soak: {result['minutes']} min, {result['users']} users, chat model: {chat}; load average"
            f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        ),
        "",
        (
            "| requests | errors | rate-limited | p50 ms | p99 ms | summary jobs (done) | RSS start MB | after 1 min |"
            " end | max | growth after warm-up MB/min |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
        (
            f"| {result['requests']} | {result['errors']} | {result['rate_limited']} | {fmt(result['p50_ms'])} |"
            f" {fmt(result['p99_ms'])} | {result['jobs']} ({result['job_statuses'].get('done', 0)}) |"
            f" {fmt(result['rss_start_mb'])} | {fmt(result['rss_after_warmup_mb'])} | {fmt(result['rss_end_mb'])} |"
            f" {fmt(result['rss_max_mb'])} | {fmt(result['rss_growth_mb_per_min_after_warmup'])} |"
        ),
        "",
        "| kind | ok | errors | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
        *[
            f"| {k} | {v['ok']} | {v['errors']} | {v['p50 ms']:.1f} | {v['p99 ms']:.1f} |"
            for k, v in result["per_kind"].items()
        ],
    ]
    if result["errors"]:
        lines += [
            "",
            "errors: " + json.dumps(result["errors_by_kind"]),
            "examples: " + json.dumps(result["error_examples"], indent=1),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--users", type=int, default=4, help="concurrent clients without think time")
    parser.add_argument(
        "--chat", choices=("scripted", "real"), default="scripted", help="the model behind chat (own service only)"
    )
    parser.add_argument("--url", default=None, help="a running service (default: start one)")
    parser.add_argument("--key", default=None, help="with --url: an admin key (or analyst + ticketing roles)")
    parser.add_argument("--pid", type=int, default=None, help="with --url: the API process, for its memory")
    parser.add_argument(
        "--no-callbacks",
        action="store_true",
        help="summary jobs without callback_url (a service in production mode refuses loopback)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.users < 1:
        print("--minutes must be > 0 and --users >= 1", file=sys.stderr)
        return 2
    if args.url and not args.key:
        print("--url needs --key", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="fraudagent-soak-") as tmp:
        if args.url:
            url, key = args.url.rstrip("/"), args.key
            pid = args.pid or pid_listening_on(url)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
                case_ids = [
                    c["case"]["case_id"] for c in client.get("/v1/cases", params={"limit": 100}).json()["items"]
                ]
            if not case_ids:
                print("the service has no open cases to read", file=sys.stderr)
                return 2
        else:
            print("starting DynamoDB Local, the model and the API …", file=sys.stderr)
            url, key, pid, case_ids = start_service(stack, Path(tmp), args.chat)
        print(f"soaking {url} for {args.minutes} min with {args.users} users (API pid {pid})", file=sys.stderr)
        result = run(url, key, pid, case_ids, minutes=args.minutes, users=args.users, callbacks=not args.no_callbacks)
    print(render(result, args.chat if not args.url else "the service's"))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
