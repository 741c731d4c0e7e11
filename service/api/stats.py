"""The service's own counters: JSON for the design card, Prometheus text for scrapers."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Gauge, Histogram, Info
from prometheus_client import Counter as PromCounter

STAGES = ("decode", "features", "inference", "total")
_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class ServiceStats:
    """Thread-safe request counters and a sliding window of latencies for percentiles."""

    def __init__(self, *, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._errors: Counter[str] = Counter()
        self._latency: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self.registry = CollectorRegistry()
        self.prom_requests = PromCounter(
            "ser_requests",
            "HTTP requests and WebSocket streams by route and status (a stream's close code)",
            ["route", "status"],
            registry=self.registry,
        )
        self.prom_errors = PromCounter(
            "ser_errors", "Rejected or failed requests by kind", ["kind"], registry=self.registry
        )
        self.prom_latency = Histogram(
            "ser_stage_seconds",
            "Per-clip latency by stage",
            ["stage"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.inflight = Gauge("ser_inflight", "Inferences in progress", registry=self.registry)
        self.model_info = Info("ser_model", "The served model", registry=self.registry)

    def record_request(self, route: str, status: int) -> None:
        with self._lock:
            self._requests[(route, status)] += 1
        self.prom_requests.labels(route=route, status=str(status)).inc()

    def record_error(self, kind: str) -> None:
        with self._lock:
            self._errors[kind] += 1
        self.prom_errors.labels(kind=kind).inc()

    def record_timing(self, timings_s: dict[str, float]) -> None:
        with self._lock:
            for stage, seconds in timings_s.items():
                if stage in self._latency:
                    self._latency[stage].append(seconds)
        for stage, seconds in timings_s.items():
            self.prom_latency.labels(stage=stage).observe(seconds)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            requests = dict(self._requests)
            errors = dict(self._errors)
            latency = {stage: np.array(values) for stage, values in self._latency.items()}
        by_route: dict[str, dict[str, int]] = {}
        for (route, status), count in requests.items():
            by_route.setdefault(route, {})[str(status)] = count
        return {
            "uptime_s": round(time.time() - self.started, 3),
            "requests_total": sum(requests.values()),
            "requests": by_route,
            "errors": errors,
            "latency_ms": {
                stage: _percentiles(values) for stage, values in latency.items() if values.size
            },
        }


def _percentiles(values: np.ndarray) -> dict[str, float]:
    p50, p90, p99 = np.percentile(values, [50, 90, 99]) * 1000.0
    return {
        "count": int(values.size),
        "p50": round(float(p50), 3),
        "p90": round(float(p90), 3),
        "p99": round(float(p99), 3),
        "max": round(float(values.max()) * 1000.0, 3),
    }
