"""One in-flight limiter per worker, shared by every route that runs the model.

``/predict``, ``/predict/raw``, ``/predict/batch`` (one slot for the whole batch), the
timeline and each hop of a ``/v1/stream`` take a slot for as long as they decode, extract
features and infer. Past ``SER_MAX_INFLIGHT`` slots, work is refused at once
(:class:`service.errors.OverloadedError`: HTTP 503 with ``Retry-After``; a stream skips that
hop) instead of queueing without bound, so a saturated worker keeps answering quickly.
"""

from __future__ import annotations

import threading

from service.api.stats import ServiceStats
from service.errors import OverloadedError


class InflightLimiter:
    """Refuse work past ``limit`` concurrent inferences instead of queueing without bound.

    A context manager: entering takes a slot or raises :class:`OverloadedError`, never
    waits. Thread-safe: slots are taken on the event loop and in the threadpool alike.
    """

    def __init__(self, limit: int, stats: ServiceStats) -> None:
        self._lock = threading.Lock()
        self._stats = stats
        self.limit = limit
        self.busy = 0

    @property
    def full(self) -> bool:
        return self.busy >= self.limit

    def __enter__(self) -> InflightLimiter:
        with self._lock:
            if self.busy >= self.limit:
                raise OverloadedError(
                    "The service is at capacity; retry shortly.", headers={"Retry-After": "1"}
                )
            self.busy += 1
        self._stats.inflight.inc()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.busy -= 1
        self._stats.inflight.dec()
