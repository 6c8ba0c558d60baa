"""Per-run counters and latency summaries, recorded from ExecutionResults.

Backends that cannot see inside their workers (E2B's cloud, the Ray pool) still see every
result they return; recording those gives the same metric names for every backend, and
exact percentiles across all workers of a pool.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from tool_env.result import ExecutionResult

LATENCY_WINDOW = 4096  # most recent runs kept for percentiles; counters cover all runs


class RunStats:
    """Thread-safe accumulator; `snapshot()` is a flat dict of floats for a metrics tracker."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self._durations: deque[float] = deque(maxlen=window)
        self._queue_waits: deque[float] = deque(maxlen=window)
        self._counts = {"runs": 0, "errors": 0, "timeouts": 0, "crashes": 0, "truncated": 0}

    def record(self, result: ExecutionResult) -> None:
        with self._lock:
            self._counts["runs"] += 1
            self._counts["timeouts"] += result.timed_out
            self._counts["errors"] += result.error is not None and not result.timed_out
            self._counts["crashes"] += result.error is not None and result.error.name == "WorkerCrashed"
            self._counts["truncated"] += result.truncated
            self._durations.append(result.duration_s)
            self._queue_waits.append(result.queue_wait_s)

    def snapshot(self, prefix: str = "") -> dict[str, float]:
        with self._lock:
            durations = sorted(self._durations)
            waits = sorted(self._queue_waits)
            metrics = {f"{prefix}{name}": float(count) for name, count in self._counts.items()}
        metrics[f"{prefix}latency_mean_s"] = sum(durations) / len(durations) if durations else 0.0
        metrics[f"{prefix}latency_p50_s"] = _percentile(durations, 0.50)
        metrics[f"{prefix}latency_p95_s"] = _percentile(durations, 0.95)
        metrics[f"{prefix}latency_max_s"] = durations[-1] if durations else 0.0
        metrics[f"{prefix}queue_wait_mean_s"] = sum(waits) / len(waits) if waits else 0.0
        metrics[f"{prefix}queue_wait_max_s"] = waits[-1] if waits else 0.0
        return metrics


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


__all__ = ["LATENCY_WINDOW", "RunStats"]
