"""Prometheus metrics, one registry per app (tests run several apps in one process).

Other parts of the service record through `app.state.metrics`: `observe_report(report)` after a report
is drafted, `watch_queue(name, depth_fn)` for a job queue whose depth is read at each scrape (or
`set_queue_depth(name, n)` to push it), `watch_scheduler(stats_fn)` for the model scheduler's calls running,
waiting and preempted (agent/scheduler.py `ModelScheduler.stats`), read at each scrape; `watch_intake(stats)` for
alert intake's counters when intake runs in the API process (the demo).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fraudagent.agent.report import InvestigationReport
from fraudagent.decisions.models import Agreement
from fraudagent.feedback.models import Verdict

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "fraudagent_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reports = Counter(
            "fraudagent_reports", "reports drafted, by the path that produced them", ["path"], registry=self.registry
        )
        self.tokens = Counter("fraudagent_llm_tokens", "LLM tokens used by reports", ["kind"], registry=self.registry)
        self.llm_calls = Counter("fraudagent_llm_calls", "LLM calls made by reports", registry=self.registry)
        self.queue_depth = Gauge(
            "fraudagent_job_queue_depth", "jobs waiting, by queue", ["queue"], registry=self.registry
        )
        self.rate_limited = Counter(
            "fraudagent_rate_limited",
            "requests refused by a rate limit (a key's, or an address's key look-ups)",
            registry=self.registry,
        )
        self.key_lookups = Counter(
            "fraudagent_key_lookups", "API keys read from the key store (not in the cache)", registry=self.registry
        )
        self.decisions = Counter(
            "fraudagent_decisions",
            "cases closed by an analyst, by disposition",
            ["disposition"],
            registry=self.registry,
        )
        versions = ["model", "prompt_version", "policy_version"]
        self.report_versions = Counter(
            "fraudagent_reports_by_version",
            "reports drafted, by model, prompt and policy version, typology and path",
            [*versions, "typology", "path"],
            registry=self.registry,
        )
        self.report_seconds = Counter(
            "fraudagent_report_seconds",
            "seconds spent drafting reports (evidence + drafting + checks)",
            versions,
            registry=self.registry,
        )
        self.report_tokens = Counter(
            "fraudagent_report_tokens", "LLM tokens used by reports, by version", versions, registry=self.registry
        )
        self.agreements = Counter(
            "fraudagent_decision_agreements",
            "decided cases compared with their latest report, by whether the recommendation agreed",
            [*versions, "typology", "agreed"],
            registry=self.registry,
        )
        self.verdicts = Counter(
            "fraudagent_report_verdicts",
            "analysts' verdicts on reports (each given or changed), by usefulness",
            ["useful"],
            registry=self.registry,
        )
        self._queues: dict[str, Callable[[], int]] = {}
        self._lock = threading.Lock()

    def observe_report(self, report: InvestigationReport) -> None:
        self.reports.labels(path=report.path).inc()
        self.tokens.labels(kind="prompt").inc(report.usage.prompt_tokens)
        self.tokens.labels(kind="completion").inc(report.usage.completion_tokens)
        self.llm_calls.inc(report.usage.llm_calls)
        versions = {
            "model": report.model,
            "prompt_version": report.prompt_version,
            "policy_version": report.policy_version,
        }
        self.report_versions.labels(**versions, typology=report.typology.value, path=report.path).inc()
        t = report.timings
        self.report_seconds.labels(**versions).inc(t.evidence_s + t.drafting_s + t.verification_s)
        self.report_tokens.labels(**versions).inc(report.usage.prompt_tokens + report.usage.completion_tokens)

    def observe_agreement(self, agreement: Agreement) -> None:
        self.agreements.labels(
            model=agreement.model,
            prompt_version=agreement.prompt_version,
            policy_version=agreement.policy_version,
            typology=agreement.report_typology.value,
            agreed=str(agreement.agreed).lower(),
        ).inc()

    def observe_verdict(self, verdict: Verdict) -> None:
        self.verdicts.labels(useful=str(verdict.useful).lower()).inc()

    def set_queue_depth(self, queue: str, depth: int) -> None:
        self.queue_depth.labels(queue=queue).set(depth)

    def watch_queue(self, queue: str, depth: Callable[[], int]) -> None:
        """Read a queue's depth at every scrape (a failing reader leaves the last value)."""
        with self._lock:
            self._queues[queue] = depth
        self.queue_depth.labels(queue=queue)

    def watch_scheduler(self, stats: Callable[[], dict[str, int]]) -> None:
        """fraudagent_model_calls{state=running|waiting_interactive|waiting_background} and
        fraudagent_model_preemptions_total (background calls stopped for interactive work) and
        fraudagent_model_chat_yields_total (chat turns that let a newer turn start), read at every scrape."""
        self.registry.register(_SchedulerCollector(stats))

    def watch_intake(self, stats: Collector) -> None:
        """Alert intake's counters (fraudagent_intake_*, intake/metrics.py) when intake runs in this process."""
        self.registry.register(stats)

    def render(self) -> bytes:
        with self._lock:
            queues = dict(self._queues)
        for queue, depth in queues.items():
            try:
                self.queue_depth.labels(queue=queue).set(depth())
            except Exception as error:  # a scrape reports what it can
                log.warning("queue depth of %s unavailable: %s", queue, type(error).__name__)
        return generate_latest(self.registry)


class _SchedulerCollector:
    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        calls = GaugeMetricFamily(
            "fraudagent_model_calls", "model calls holding a slot or waiting for one", labels=["state"]
        )
        for state in ("running", "waiting_interactive", "waiting_background"):
            calls.add_metric([state], s.get(state, 0))
        yield calls
        yield CounterMetricFamily(
            "fraudagent_model_preemptions",
            "background model calls stopped to give the slot to interactive work",
            value=s.get("preemptions", 0),
        )
        yield CounterMetricFamily(
            "fraudagent_model_chat_yields",
            "chat answers that gave the slot to a newer turn's start, or back to an older answer, and went on later",
            value=s.get("yields", 0),
        )
