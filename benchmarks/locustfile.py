"""Locust users for the API benchmark of `benchmarks/run_all.py` (section `api`): the non-LLM analyst routes.

Run by run_all (headless, in a process of its own: locust patches the standard library with gevent).
By hand, against a running service with an analyst key:

    BENCH_API_KEY=fa_… BENCH_CASE_IDS=C-200001,C-200002 \\
        .venv/bin/locust -f benchmarks/locustfile.py --headless -u 8 -r 8 -t 30s --host http://127.0.0.1:8000

Each user loops without think time (a closed loop: the number of users is the concurrency): the queue
(`GET /v1/cases?limit=20`), a case's detail with its evidence pack (`GET /v1/cases/{id}`) and its report
history (`GET /v1/cases/{id}/reports`), in the ratio 1 : 3 : 1.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, constant, task

KEY = os.environ.get("BENCH_API_KEY", "")
CASE_IDS = [c for c in os.environ.get("BENCH_CASE_IDS", "").split(",") if c]


class Analyst(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {KEY}"

    @task(1)
    def queue(self) -> None:
        self.client.get("/v1/cases?limit=20", name="GET /v1/cases")

    @task(3)
    def detail(self) -> None:
        self.client.get(f"/v1/cases/{random.choice(CASE_IDS)}", name="GET /v1/cases/{id}")

    @task(1)
    def reports(self) -> None:
        self.client.get(f"/v1/cases/{random.choice(CASE_IDS)}/reports", name="GET /v1/cases/{id}/reports")
