"""Model soak (issue 18): analysts chat while a burst of summary jobs and an eval run draft in the background, on one
model.

    .venv/bin/python benchmarks/soak_model.py --chat real --minutes 10 --out soak-model.json   # the issue's run
    .venv/bin/python benchmarks/soak_model.py --minutes 1   # scripted model, a quick check

What it starts, on loopback only: DynamoDB Local in memory; the model (`--chat real`: the packaged llama.cpp server
with the 0.5B weights, one slot, request interruption off; `scripted`, the default: soak.py's loopback endpoint,
about 25 ms a token (--token-delay-s), with chat answers and schema-shaped drafts; --prompt-token-s makes it
evaluate the prompt first, sending nothing meanwhile, as the real server does); `fraudagent serve` as a process of
its own, with its summary workers (--workers, default 2), its eval runner and its model scheduler at the product's
defaults
(FRAUDAGENT_LLM_PARALLEL_CALLS 1, FRAUDAGENT_LLM_QUEUE_MAX 8, FRAUDAGENT_LLM_QUEUE_WAIT_S 60). It loads max(--burst, 10)
small cases WITHOUT stored reports, so every summary job drafts its case's report with the model, at background
priority. Keys are made through POST /v1/keys: one per analyst (role analyst), one ticketing, one evaluator.

The load, all at once for --minutes (default 10):
- --analysts threads (4), each looping: a chat turn (POST /v1/cases/{id}/chat with a short question, read to its
  `final` SSE event), up to 3 turns in one session before it moves to another case, then a think time of about
  --think-s seconds (5; uniform between half and one and a half times that).
- --burst summary requests (50) at the start, as the ticketing system: POST /v1/summaries, one case each, with a
  signed callback to a loopback receiver that checks the signature.
- one eval run started through the API (POST /v1/evals/runs): --eval-suite (core) limited to --eval-limit cases (4),
  solver agent, so it drafts in the background too.
At the deadline the analysts finish the turn in flight (bounded by the client's 600 s read timeout) and stop; then
the script waits at most --drain-minutes (20; an estimate: 50 drafts at some 20 s each on 2 quiet cores) for every
summary job and the eval run to end, and reports what has not.

What the numbers mean (markdown on stdout; JSON with --out):
- chat, time to first token (TTFT): from sending the request to the first `token` event, as the analyst sees it;
  p50 / p95 / max over the turns that got a token, and a strict p95 that counts a turn without any token (model
  unavailable, 503, error) as never answered. The 15 s target is judged on the strict p95 of the turns started while
  background drafting was under way (the summary queue not empty, a background call waiting, or the eval run running).
  Also the turn's total time, the server's own `first_token_s`, and per turn whether the final event said
  `model_unavailable` (with the reason its note names) and whether the answer was empty.
- stored answers: after the run every session is read back (GET /v1/cases/{id}/chat/{session}, with its analyst's
  key). The API stores a model answer that came back empty or cut off (no finish reason) as `model_unavailable` with
  a note saying so, never as an answer: those are counted. Errors: an assistant message with empty text, one not
  flagged unavailable that carries the note, one that differs from what was streamed to the analyst (the `final`
  answer, and the tokens joined: an answer stored cut off), a turn with a final event but no stored answer.
- summary jobs: done / failed / dead / not finished; callbacks received per job by X-Delivery-Id (exactly once each);
  the drafting path of the job's report (llm, llm_retried, fallback), its drafting time (the report's
  timings.drafting_s: waiting for the model and preempted attempts included), the job's time from accepted to
  delivered, and claims per job.
- the eval run: its status, cases scored of those asked, cases passed.
- the model scheduler, from /metrics every 2 s: preemptions (background drafts stopped for a chat turn), chat yields
  (answers that let a newer turn start and went on), the most
  calls seen waiting; the API process's RSS; the load average at the start and the end; the machine's cores.

Exit status 1 when a correctness check fails: a stored answer empty or cut off, an answer not stored, a chat stream
without its final event or an HTTP error, a summary job not done or whose callback did not arrive exactly once (or
was badly signed), an eval run that failed. Latency targets are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_summaries
import soak

TURNS_PER_SESSION = 3
TTFT_TARGET_S = 15.0
UNAVAILABLE = re.compile(r"The model is unavailable \(([A-Za-z_]+)\)")
FINISHED_JOB = ("done", "failed", "dead")
FINISHED_RUN = ("succeeded", "failed", "interrupted")


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# --- chat -------------------------------------------------------------------------------------------------------


@dataclass
class ChatTurn:
    analyst: int
    case_id: str
    session_id: str | None
    started_s: float  # since the load began
    background: bool  # background drafting under way when it was sent
    status: int | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    server_first_token_s: float | None = None
    model_wait_s: float | None = None  # of the server's first_token_s, the wait for the model's slot
    final: bool = False
    model_unavailable: bool = False
    why_unavailable: str | None = None
    empty_answer: bool = False
    tokens: int = 0
    answer: str = ""
    streamed: str = ""
    error: str | None = None


def chat_turn(client: httpx.Client, turn: ChatTurn, question: str) -> None:
    """One turn read to its `final` event; fills `turn` (never raises for an HTTP failure)."""
    t0 = time.perf_counter()
    body: dict[str, Any] = {"message": question} | ({"session_id": turn.session_id} if turn.session_id else {})
    pieces: list[str] = []
    try:
        with client.stream("POST", f"/v1/cases/{turn.case_id}/chat", json=body) as response:
            turn.status = response.status_code
            turn.session_id = response.headers.get("x-session-id", turn.session_id)
            if response.status_code != 200:
                turn.error = f"HTTP {response.status_code}: {response.read().decode(errors='replace')[:200]}"
                return
            event = "message"
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                    continue
                if not line.startswith("data:"):
                    continue
                data = json.loads(line[5:])
                if event == "token":
                    turn.ttft_s = turn.ttft_s if turn.ttft_s is not None else time.perf_counter() - t0
                    pieces.append(data["text"])
                elif event == "final":
                    turn.final = True
                    turn.answer = data["answer"]
                    turn.model_unavailable = bool(data["model_unavailable"])
                    turn.server_first_token_s = data.get("first_token_s")
                    turn.model_wait_s = data.get("model_wait_s")
                    why = UNAVAILABLE.search(data["answer"]) if turn.model_unavailable else None
                    turn.why_unavailable = why.group(1) if why else ("unknown" if turn.model_unavailable else None)
                    turn.empty_answer = not data["answer"].strip()
    except (httpx.HTTPError, ValueError) as error:
        turn.error = f"{type(error).__name__}: {error}"[:300]
    finally:
        turn.total_s = time.perf_counter() - t0
        turn.tokens = len(pieces)
        turn.streamed = "".join(pieces)
    if turn.error is None and not turn.final:
        turn.error = "the stream ended without a final event"


class Observer:
    """Samples /metrics (the scheduler, the summary queue), the eval run's status and the API's RSS every 2 s."""

    def __init__(self, url: str, admin_key: str, evaluator_key: str, pid: int | None, t0: float) -> None:
        self.url, self.admin_key, self.evaluator_key, self.t0 = url, admin_key, evaluator_key, t0
        self.process = psutil.Process(pid) if pid else None
        self.run_id: str | None = None
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def latest(self) -> dict[str, Any]:
        return self.samples[-1] if self.samples else {}

    def background_busy(self) -> bool:
        s = self.latest()
        return bool(s.get("summary_queue") or s.get("waiting_background") or s.get("eval_status") == "running")

    def sample(self) -> dict[str, Any]:
        s: dict[str, Any] = {"t": round(time.monotonic() - self.t0, 1)}
        try:
            text = httpx.get(f"{self.url}/metrics", headers=auth(self.admin_key), timeout=10).text
            for name, key in (
                ('fraudagent_model_calls{state="running"}', "running"),
                ('fraudagent_model_calls{state="waiting_interactive"}', "waiting_interactive"),
                ('fraudagent_model_calls{state="waiting_background"}', "waiting_background"),
                ("fraudagent_model_preemptions_total", "preemptions"),
                ("fraudagent_model_chat_yields_total", "chat_yields"),
                ('fraudagent_job_queue_depth{queue="summaries"}', "summary_queue"),
            ):
                found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.M)
                s[key] = int(float(found.group(1))) if found else None
            if self.run_id:
                s["eval_status"] = httpx.get(
                    f"{self.url}/v1/evals/runs/{self.run_id}", headers=auth(self.evaluator_key), timeout=10
                ).json()["status"]
        except (httpx.HTTPError, ValueError, KeyError) as error:
            s["error"] = type(error).__name__
        try:
            s["rss_mb"] = self.process.memory_info().rss / 2**20 if self.process else None
        except psutil.Error:
            s["rss_mb"] = None
        return s

    def _loop(self) -> None:
        while True:
            self.samples.append(self.sample())
            if self.stop.wait(2):
                return

    def __enter__(self) -> Observer:
        self.samples.append(self.sample())
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        self.samples.append(self.sample())


def analyst(
    n: int,
    url: str,
    key: str,
    case_ids: list[str],
    *,
    deadline: float,
    think_s: float,
    t0: float,
    observer: Observer,
    turns: list[ChatTurn],
) -> None:
    rng = random.Random(n)
    with httpx.Client(base_url=url, headers=auth(key), timeout=httpx.Timeout(30, read=600)) as client:
        case_id, session_id, left = case_ids[0], None, 0
        while time.monotonic() < deadline:
            if left == 0:
                case_id, session_id, left = rng.choice(case_ids), None, TURNS_PER_SESSION
            turn = ChatTurn(
                analyst=n,
                case_id=case_id,
                session_id=session_id,
                started_s=round(time.monotonic() - t0, 2),
                background=observer.background_busy(),
            )
            chat_turn(client, turn, rng.choice(soak.QUESTIONS))
            turns.append(turn)
            session_id, left = turn.session_id, left - 1
            time.sleep(max(0.0, min(rng.uniform(0.5, 1.5) * think_s, deadline - time.monotonic())))


def check_sessions(url: str, analyst_keys: list[str], turns: list[ChatTurn]) -> dict[str, Any]:
    """Read every session back with its analyst's key; compare each stored answer with what was streamed."""
    errors: list[str] = []
    stored = unavailable = 0
    by_session: dict[tuple[int, str, str], list[ChatTurn]] = {}
    for t in turns:
        if t.session_id:
            by_session.setdefault((t.analyst, t.case_id, t.session_id), []).append(t)
    for (n, case_id, session_id), its_turns in by_session.items():
        response = httpx.get(f"{url}/v1/cases/{case_id}/chat/{session_id}", headers=auth(analyst_keys[n]), timeout=30)
        if response.status_code != 200:
            errors.append(f"{session_id}: reading it back gave HTTP {response.status_code}")
            continue
        answers = [m for m in response.json()["messages"] if m["role"] == "assistant"]
        for m in answers:
            stored += 1
            unavailable += m["model_unavailable"]
            if not m["text"].strip():
                errors.append(f"{session_id} #{m['n']}: an empty answer is stored")
            elif not m["model_unavailable"] and UNAVAILABLE.search(m["text"]):
                errors.append(f"{session_id} #{m['n']}: the unavailable note is stored as an answer")
        finals = [t for t in its_turns if t.final]
        if len(answers) < len(finals):
            errors.append(f"{session_id}: {len(finals)} final events but {len(answers)} stored answers")
        for t, m in zip(finals, answers):
            if m["text"] != t.answer:
                errors.append(
                    f"{session_id} #{m['n']}: the stored answer differs from the streamed final ({len(m['text'])} /"
                    f" {len(t.answer)} chars)"
                )
            elif not t.model_unavailable and t.streamed.strip() != m["text"]:
                errors.append(f"{session_id} #{m['n']}: the stored answer differs from the streamed tokens")
    return {
        "sessions": len(by_session),
        "answers_stored": stored,
        "stored_model_unavailable": unavailable,
        "errors": errors,
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ttft_summary(turns: list[ChatTurn]) -> dict[str, Any]:
    got = [t.ttft_s for t in turns if t.ttft_s is not None]
    strict = got + [float("inf")] * (len(turns) - len(got))
    p95_strict = percentile(strict, 0.95)
    return {
        "turns": len(turns),
        "with_token": len(got),
        "p50_s": percentile(got, 0.5),
        "p95_s": percentile(got, 0.95),
        "max_s": max(got) if got else None,
        "p95_strict_s": None if p95_strict in (None, float("inf")) else p95_strict,
        "p95_strict_infinite": p95_strict == float("inf"),
    }


def chat_summary(turns: list[ChatTurn]) -> dict[str, Any]:
    totals = [t.total_s for t in turns if t.total_s is not None and t.final]
    server = [t.server_first_token_s for t in turns if t.server_first_token_s is not None]
    waits = [t.model_wait_s for t in turns if t.model_wait_s is not None]
    after = [
        t.server_first_token_s - t.model_wait_s
        for t in turns
        if t.server_first_token_s is not None and t.model_wait_s is not None
    ]
    during = [t for t in turns if t.background]
    strict = ttft_summary(during)
    return {
        "ttft": ttft_summary(turns),
        "ttft_during_background": strict,
        "ttft_target_s": TTFT_TARGET_S,
        "ttft_target_met": (
            bool(during) and strict["p95_strict_s"] is not None and strict["p95_strict_s"] < TTFT_TARGET_S
        ),
        "total_p50_s": percentile(totals, 0.5),
        "total_p95_s": percentile(totals, 0.95),
        "total_max_s": max(totals) if totals else None,
        "server_first_token_p95_s": percentile(server, 0.95),
        # where the time to first token went: waiting for the slot (other callers ahead), then the model's own work
        # (the rest of a draft's prompt evaluation it could not stop, its own prompt, the first token)
        "model_wait_p50_s": percentile(waits, 0.5),
        "model_wait_p95_s": percentile(waits, 0.95),
        "after_wait_p50_s": percentile(after, 0.5),
        "after_wait_p95_s": percentile(after, 0.95),
        "model_unavailable": sum(t.model_unavailable for t in turns),
        "unavailable_reasons": dict(Counter(t.why_unavailable for t in turns if t.model_unavailable)),
        "empty_answers": sum(t.empty_answer for t in turns),
        "busy_503": sum(t.status == 503 for t in turns),
        "errors": [f"analyst {t.analyst} {t.case_id}: {t.error}" for t in turns if t.error and t.status != 503],
    }


# --- summary jobs and the eval run ----------------------------------------------------------------------------


def burst(client: httpx.Client, case_ids: list[str], n: int, callback_url: str) -> list[dict[str, Any]]:
    jobs = []
    for i in range(n):
        case_id = case_ids[i % len(case_ids)]
        response = client.post(
            "/v1/summaries",
            json={
                "case_id": case_id,
                "format": ("markdown", "jira", "servicenow")[i % 3],
                "callback_url": callback_url,
            },
        )
        if response.status_code == 202:
            jobs.append({"job_id": response.json()["job_id"], "case_id": case_id})
        else:
            jobs.append(
                {"job_id": None, "case_id": case_id, "error": f"HTTP {response.status_code}: {response.text[:200]}"}
            )
    return jobs


def drain(
    ticketing: httpx.Client, evaluator: httpx.Client, jobs: list[dict[str, Any]], run_id: str | None, until: float
) -> None:
    pending = [j["job_id"] for j in jobs if j["job_id"]]
    while time.monotonic() < until:
        pending = [j for j in pending if ticketing.get(f"/v1/summaries/{j}").json()["status"] not in FINISHED_JOB]
        run_done = run_id is None or evaluator.get(f"/v1/evals/runs/{run_id}").json()["status"] in FINISHED_RUN
        if not pending and run_done:
            return
        time.sleep(5)


def job_summary(
    ticketing: httpx.Client, admin: httpx.Client, jobs: list[dict[str, Any]], receiver: bench_summaries.Receiver
) -> dict[str, Any]:
    received = Counter(job_id for job_id, _ in receiver.got)
    rows, errors = [], []
    for j in jobs:
        if j["job_id"] is None:
            errors.append(f"{j['case_id']}: not accepted ({j['error']})")
            continue
        job = ticketing.get(f"/v1/summaries/{j['job_id']}").json()
        row = {
            "job_id": j["job_id"],
            "case_id": j["case_id"],
            "status": job["status"],
            "claims": job["attempts"],
            "callbacks": received.get(j["job_id"], 0),
            "delivery_attempts": len(job["deliveries"]),
            "path": None,
            "drafting_s": None,
            "job_s": None,
            "error": job.get("error"),
        }
        if job["result"]:
            row["path"] = job["result"]["report_path"]
            reports = admin.get(f"/v1/cases/{j['case_id']}/reports", params={"limit": 20}).json()["items"]
            row["reports_of_case"] = len(reports)
            mine = next((r for r in reports if r["report_id"] == job["result"]["report_id"]), None)
            row["drafting_s"] = mine["timings"]["drafting_s"] if mine else None
        if job.get("delivered_at"):
            row["job_s"] = round(_seconds(job["created_at"], job["delivered_at"]), 1)
        rows.append(row)
        if job["status"] != "done":
            errors.append(f"{j['job_id']}: {job['status']}" + (f" ({job['error']})" if job.get("error") else ""))
        elif row["callbacks"] != 1:
            errors.append(f"{j['job_id']}: its callback arrived {row['callbacks']} times")
    errors += [f"{job_id}: a callback with a bad signature" for job_id in sorted(set(receiver.bad_signatures))]
    drafting = [r["drafting_s"] for r in rows if r["drafting_s"] is not None]
    job_s = [r["job_s"] for r in rows if r["job_s"] is not None]
    return {
        "jobs": len(jobs),
        "statuses": dict(Counter(r["status"] for r in rows)),
        "paths": dict(Counter(r["path"] for r in rows if r["path"])),
        "callbacks_once": sum(r["callbacks"] == 1 for r in rows),
        "callbacks_repeated": sum(r["callbacks"] > 1 for r in rows),
        "callbacks_missing": sum(r["callbacks"] == 0 for r in rows),
        "bad_signatures": len(set(receiver.bad_signatures)),
        "claims_more_than_once": sum(r["claims"] > 1 for r in rows),
        "drafting_p50_s": percentile(drafting, 0.5),
        "drafting_max_s": max(drafting) if drafting else None,
        "job_p50_s": percentile(job_s, 0.5),
        "job_max_s": max(job_s) if job_s else None,
        "errors": errors,
        "per_job": rows,
    }


def _seconds(start: str, end: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def eval_summary(evaluator: httpx.Client, run_id: str | None, limit: int, start_error: str | None) -> dict[str, Any]:
    if run_id is None:
        return {"status": "not started", "error": start_error, "cases_asked": limit}
    run = evaluator.get(f"/v1/evals/runs/{run_id}").json()
    progress = run.get("progress") or {}
    return {
        "run_id": run_id,
        "status": run["status"],
        "cases_asked": limit,
        "cases": run.get("cases"),
        "cases_passed": run.get("cases_passed"),
        "progress": progress,
        "error": run.get("error"),
    }


# --- the run ----------------------------------------------------------------------------------------------------


def make_keys(admin: httpx.Client, analysts: int) -> tuple[list[str], str, str]:
    def key(name: str, role: str) -> str:
        response = admin.post("/v1/keys", json={"name": name, "roles": [role]})
        response.raise_for_status()
        return str(response.json()["secret"])

    return (
        [key(f"soak analyst {n}", "analyst") for n in range(analysts)],
        key("soak ticketing", "ticketing"),
        key("soak evaluator", "evaluator"),
    )


def run(
    url: str,
    admin_key: str,
    pid: int | None,
    case_ids: list[str],
    *,
    minutes: float,
    analysts: int,
    burst_size: int,
    think_s: float,
    eval_suite: str,
    eval_limit: int,
    drain_minutes: float,
) -> dict[str, Any]:
    load_start = os.getloadavg()
    receiver = bench_summaries.Receiver(secret=soak.CALLBACK_SECRET)
    with ExitStack() as stack:
        stack.callback(receiver.server.shutdown)
        admin = stack.enter_context(httpx.Client(base_url=url, headers=auth(admin_key), timeout=60))
        analyst_keys, ticketing_key, evaluator_key = make_keys(admin, analysts)
        ticketing = stack.enter_context(httpx.Client(base_url=url, headers=auth(ticketing_key), timeout=60))
        evaluator = stack.enter_context(httpx.Client(base_url=url, headers=auth(evaluator_key), timeout=60))
        t0 = time.monotonic()
        deadline = t0 + minutes * 60
        turns: list[ChatTurn] = []
        observer = stack.enter_context(Observer(url, admin_key, evaluator_key, pid, t0))
        threads = [
            threading.Thread(
                target=analyst,
                args=(n, url, analyst_keys[n], case_ids),
                daemon=True,
                kwargs={"deadline": deadline, "think_s": think_s, "t0": t0, "observer": observer, "turns": turns},
            )
            for n in range(analysts)
        ]
        for t in threads:
            t.start()
        started = evaluator.post("/v1/evals/runs", json={"suite": eval_suite, "solver": "agent", "limit": eval_limit})
        run_id = started.json()["run_id"] if started.status_code == 202 else None
        observer.run_id = run_id
        jobs = burst(ticketing, case_ids, burst_size, receiver.url)
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()) + 660)
        load_s = time.monotonic() - t0
        drain(ticketing, evaluator, jobs, run_id, until=time.monotonic() + drain_minutes * 60)
        drained_s = time.monotonic() - t0 - load_s
        time.sleep(1)  # a callback recorded as delivered has reached the receiver; let its handler finish
        sessions = check_sessions(url, analyst_keys, list(turns))
        job_result = job_summary(ticketing, admin, jobs, receiver)
        eval_result = eval_summary(
            evaluator, run_id, eval_limit, None if run_id else f"HTTP {started.status_code}: {started.text[:200]}"
        )
    samples = observer.samples
    rss = [s["rss_mb"] for s in samples if s.get("rss_mb")]
    chat = chat_summary(turns)
    failures = (
        [f"chat: {e}" for e in chat["errors"]]
        + [f"stored answer: {e}" for e in sessions["errors"]]
        + [f"chat: {n} final events with an empty answer" for n in [chat["empty_answers"]] if n]
        + [f"summary job {e}" for e in job_result["errors"]]
        + (
            [f"eval run {eval_result['status']}: {eval_result.get('error')}"]
            if eval_result["status"] in ("failed", "interrupted", "not started")
            else []
        )
    )
    return {
        "minutes": minutes,
        "analysts": analysts,
        "burst": burst_size,
        "think_s": think_s,
        "load_s": round(load_s, 1),
        "drain_minutes": drain_minutes,
        "drained_s": round(drained_s, 1),
        "cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "chat": chat,
        "stored_answers": sessions,
        "summaries": job_result,
        "eval_run": eval_result,
        "scheduler": {
            "preemptions": samples[-1].get("preemptions") if samples else None,
            "chat_yields": samples[-1].get("chat_yields") if samples else None,
            "max_waiting_interactive": max((s.get("waiting_interactive") or 0 for s in samples), default=None),
            "max_waiting_background": max((s.get("waiting_background") or 0 for s in samples), default=None),
            "max_summary_queue": max((s.get("summary_queue") or 0 for s in samples), default=None),
        },
        "api_rss_mb": {
            "start": rss[0] if rss else None,
            "end": rss[-1] if rss else None,
            "max": max(rss) if rss else None,
        },
        "failures": failures,
        "passed": not failures,
        "turns": [asdict(t) for t in turns],
        "samples": samples,
    }


def render(r: dict[str, Any], model: str) -> str:
    f = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
    c, s, j, e, sch = r["chat"], r["stored_answers"], r["summaries"], r["eval_run"], r["scheduler"]
    la = lambda xs: " ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    during, every = c["ttft_during_background"], c["ttft"]
    strict = "never (over 5% unanswered)" if during["p95_strict_infinite"] else f(during["p95_strict_s"])
    lines = [
        (
            f"model soak: {r['minutes']} min, {r['analysts']} analysts (think ~{r['think_s']} s), {r['burst']} summary"
            f" jobs, eval run of {e['cases_asked']} cases; model {model}; {r['cores']} cores; load average"
            f" {la(r['load_average_start'])} at the start, {la(r['load_average_end'])} at the end; load"
            f" {r['load_s']:.0f} s, then {r['drained_s']:.0f} s waiting for jobs (at most {r['drain_minutes']} min)"
        ),
        "",
        "| chat turns | with a token | TTFT p50 s | p95 s | max s | p95 strict, during drafting ({n} turns) | target <"
        " {t:.0f} s | total p50 s | p95 s | model unavailable | empty answers | 503 |".format(
            n=during["turns"], t=c["ttft_target_s"]
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        (
            f"| {every['turns']} | {every['with_token']} | {f(every['p50_s'])} | {f(every['p95_s'])} |"
            f" {f(every['max_s'])} | {strict} | {'met' if c['ttft_target_met'] else 'NOT met'} | {f(c['total_p50_s'])}"
            f" | {f(c['total_p95_s'])} | {c['model_unavailable']}"
            f" {json.dumps(c['unavailable_reasons']) if c['unavailable_reasons'] else ''} | {c['empty_answers']} |"
            f" {c['busy_503']} |"
        ),
        "",
        (
            f"time to first token on the server: waiting for the model's slot p50 {f(c['model_wait_p50_s'])} s, p95"
            f" {f(c['model_wait_p95_s'])} s; after the wait p50 {f(c['after_wait_p50_s'])} s, p95"
            f" {f(c['after_wait_p95_s'])} s"
        ),
        "",
        (
            f"stored answers: {s['answers_stored']} in {s['sessions']} sessions read back,"
            f" {s['stored_model_unavailable']} flagged model_unavailable; errors (empty, cut off, not stored):"
            f" {len(s['errors'])}"
        ),
        "",
        (
            "| summary jobs | statuses | callbacks once / repeated / missing | report paths | drafting p50 s | max s |"
            " job p50 s | max s | claimed more than once |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
        (
            f"| {j['jobs']} | {json.dumps(j['statuses'])} | {j['callbacks_once']} / {j['callbacks_repeated']} /"
            f" {j['callbacks_missing']} | {json.dumps(j['paths'])} | {f(j['drafting_p50_s'])} |"
            f" {f(j['drafting_max_s'])} | {f(j['job_p50_s'])} | {f(j['job_max_s'])} | {j['claims_more_than_once']} |"
        ),
        "",
        f"eval run: {e['status']},"
        f" {e.get('cases') if e.get('cases') is not None else (e.get('progress') or {}).get('done', 0)} of"
        f" {e['cases_asked']} cases"
        + (f", {e['cases_passed']} passed" if e.get("cases_passed") is not None else "")
        + (f" ({e['error']})" if e.get("error") else ""),
        (
            f"scheduler: {sch['preemptions']} preemptions, {sch.get('chat_yields')} chat yields;"
            f" most waiting: {sch['max_waiting_interactive']} interactive,"
            f" {sch['max_waiting_background']} background; API RSS {f(r['api_rss_mb']['start'])} ->"
            f" {f(r['api_rss_mb']['end'])} MB (max {f(r['api_rss_mb']['max'])})"
        ),
        "",
        "correctness: " + ("PASSED" if r["passed"] else f"FAILED ({len(r['failures'])})"),
        *[f"- {x}" for x in r["failures"][:20]],
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the analysts chat")
    parser.add_argument(
        "--chat",
        choices=("scripted", "real"),
        default="scripted",
        help="the model: soak.py's scripted one, or the packaged llama.cpp one",
    )
    parser.add_argument("--analysts", type=int, default=4)
    parser.add_argument("--burst", type=int, default=50, help="summary requests at the start, one case each")
    parser.add_argument(
        "--think-s", type=float, default=5.0, help="an analyst's think time between turns (uniform 0.5x to 1.5x)"
    )
    parser.add_argument("--workers", type=int, default=2, help="summary workers of the API process")
    parser.add_argument("--eval-suite", default="core")
    parser.add_argument("--eval-limit", type=int, default=4, help="cases of the eval run")
    parser.add_argument(
        "--drain-minutes", type=float, default=20.0, help="after the load: the longest wait for jobs and the eval run"
    )
    parser.add_argument("--token-delay-s", type=float, default=0.025, help="the scripted model's time per token")
    parser.add_argument(
        "--prompt-token-s",
        type=float,
        default=0.0,
        help=(
            "the scripted model's time per prompt token before its first token (0.008: a 1,000-token prompt takes 8 s)"
        ),
    )
    parser.add_argument(
        "--ddb-url",
        default=None,
        help="a running DynamoDB (Local) to use instead of starting one (tables get a fresh prefix)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    parser.add_argument(
        "--logs", type=Path, default=None, help="keep the servers' logs here (default: a temporary folder, removed)"
    )
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.analysts < 1 or args.burst < 0 or args.eval_limit < 1 or args.drain_minutes < 0:
        print(
            "--minutes must be > 0, --analysts and --eval-limit >= 1, --burst and --drain-minutes >= 0", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="fraudagent-soak-model-") as tmp:
        base = Path(tmp) if args.logs is None else args.logs
        base.mkdir(parents=True, exist_ok=True)
        print(f"starting DynamoDB Local, the {args.chat} model and the API …", file=sys.stderr)
        env = {
            "FRAUDAGENT_SUMMARY_WORKERS": str(args.workers),
            "FRAUDAGENT_EVAL_RUNS_DIR": str(base / "eval-runs"),
            "FRAUDAGENT_LOG_LEVEL": "WARNING",
            "FRAUDAGENT_LOG_FORMAT": "text",
        }
        url, key, pid, case_ids = soak.start_service(
            stack,
            base,
            args.chat,
            cases=max(args.burst, 10),
            reports=False,
            ddb_url=args.ddb_url,
            extra_env=env,
            token_delay_s=args.token_delay_s,
            prompt_token_s=args.prompt_token_s,
        )
        print(
            f"soaking {url} for {args.minutes} min: {args.analysts} analysts, {args.burst} summary jobs, an eval run"
            f" (API pid {pid})",
            file=sys.stderr,
        )
        result = run(
            url,
            key,
            pid,
            case_ids,
            minutes=args.minutes,
            analysts=args.analysts,
            burst_size=args.burst,
            think_s=args.think_s,
            eval_suite=args.eval_suite,
            eval_limit=args.eval_limit,
            drain_minutes=args.drain_minutes,
        )
        log = (base / "logs" / "api.log").read_text(errors="replace").splitlines()
        result["api_log_warnings"] = [line[:300] for line in log if "WARNING" in line or "ERROR" in line][-40:]
    result["chat_model"] = args.chat
    print(render(result, args.chat))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
