"""Intake's Prometheus metrics: records read, cases created, dead letters, and the iterator age (lag) per shard.

One `IntakeStats` per process, shared by its workers; it is a collector, so it can be registered in the intake's
own registry (`fraudagent intake` serves it on FRAUDAGENT_INTAKE_METRICS_PORT) and in the API's (`/metrics`, when
intake runs inside the API process, as in the demo).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


class IntakeStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: Counter[str] = Counter()  # by shard
        self.cases_created = 0
        self.dead_letters: Counter[str] = Counter()  # by reason
        self.iterator_age_s: dict[str, float] = {}  # by shard, for the shards this process holds

    def record_read(self, shard_id: str) -> None:
        with self._lock:
            self.records[shard_id] += 1

    def case_created(self) -> None:
        with self._lock:
            self.cases_created += 1

    def dead_lettered(self, reason: str) -> None:
        with self._lock:
            self.dead_letters[reason] += 1

    def set_iterator_age(self, shard_id: str, seconds: float) -> None:
        with self._lock:
            self.iterator_age_s[shard_id] = seconds

    def forget_shard(self, shard_id: str) -> None:
        """The shard is no longer read here (lost, released or finished): its lag is reported by its new holder."""
        with self._lock:
            self.iterator_age_s.pop(shard_id, None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            records, cases = dict(self.records), self.cases_created
            dead, ages = dict(self.dead_letters), dict(self.iterator_age_s)
        family = CounterMetricFamily("fraudagent_intake_records", "alert records read, by shard", labels=["shard"])
        for shard, n in sorted(records.items()):
            family.add_metric([shard], n)
        yield family
        yield CounterMetricFamily("fraudagent_intake_cases_created", "cases opened from alert records", value=cases)
        family = CounterMetricFamily(
            "fraudagent_intake_dead_letters", "alert records dead-lettered, by reason", labels=["reason"]
        )
        for reason, n in sorted(dead.items()):
            family.add_metric([reason], n)
        yield family
        gauge = GaugeMetricFamily(
            "fraudagent_intake_iterator_age_seconds",
            "how far behind the newest record of its shard the last read was (GetRecords MillisBehindLatest)",
            labels=["shard"],
        )
        for shard, age in sorted(ages.items()):
            gauge.add_metric([shard], age)
        yield gauge

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry()
        registry.register(self)  # type: ignore[arg-type]
        return registry


def serve(stats: IntakeStats, *, host: str, port: int) -> Any:
    """Serve the stats on http://host:port/metrics in a daemon thread (no key: bind it where only Prometheus can
    reach it); returns the server (`.shutdown()` stops it; `.server_port` is the port, when 0 was asked)."""
    server, _thread = start_http_server(port, addr=host, registry=stats.registry())
    return server
