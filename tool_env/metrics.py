"""Sandbox metrics: thread-safe counters and latency percentiles as a flat dict of floats.

The dict goes straight into verl's tracker (wandb/tensorboard), so keys are stable
``sandbox/<name>`` strings and every value is a float.
"""

from __future__ import annotations

import threading
from collections import deque

from tool_env.result import CRASHED, UNAVAILABLE, ExecutionResult

LATENCY_WINDOW = 4096  # recent runs kept for percentiles; bounded so a long job never grows memory
CRASH_ERRORS = frozenset({CRASHED})


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(q / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[rank]


class SandboxMetrics:
    """Records every finished run; `snapshot()` summarises them."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self._latency: deque[float] = deque(maxlen=window)
        self._queue_wait: deque[float] = deque(maxlen=window)
        self._counts = {"runs": 0, "timeouts": 0, "errors": 0, "truncations": 0, "crashes": 0, "unavailable": 0}
        self._workers_started = 0

    def record(self, result: ExecutionResult, latency_s: float) -> None:
        with self._lock:
            self._latency.append(latency_s)
            self._queue_wait.append(result.queue_wait_s)
            self._counts["runs"] += 1
            self._counts["timeouts"] += result.timed_out
            self._counts["truncations"] += result.truncated
            if result.error is not None:
                self._counts["errors"] += 1
                self._counts["crashes"] += result.error.name in CRASH_ERRORS
                self._counts["unavailable"] += result.error.name == UNAVAILABLE

    def worker_started(self) -> None:
        with self._lock:
            self._workers_started += 1

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            latency = sorted(self._latency)
            waits = sorted(self._queue_wait)
            out = {f"sandbox/{name}": float(value) for name, value in self._counts.items()}
            out["sandbox/workers_started"] = float(self._workers_started)
        out["sandbox/latency_p50_s"] = percentile(latency, 50)
        out["sandbox/latency_p99_s"] = percentile(latency, 99)
        out["sandbox/latency_mean_s"] = sum(latency) / len(latency) if latency else 0.0
        out["sandbox/queue_wait_p50_s"] = percentile(waits, 50)
        out["sandbox/queue_wait_p99_s"] = percentile(waits, 99)
        out["sandbox/queue_wait_mean_s"] = sum(waits) / len(waits) if waits else 0.0
        return out
