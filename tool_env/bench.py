"""Sandbox benchmark: latency and throughput of the local backend vs a naive baseline.

The baseline, measured in the same run, is what a sandbox without a zygote does:
``subprocess.run([python, "-c", code])`` per call (an interpreter start and imports each
time). Ratios are printed next to the targets (on a 2-core machine, full isolation):
trivial stateless p50 <= 5 ms; `import numpy` snippet p50 <= 6 ms and >= 20x the baseline;
a warm stateful run <= 1 ms; throughput at c=32 >= 5x the baseline (trivial), >= 20x (numpy).
Used by ``benchmarks/bench_sandbox.py`` and ``r1ci sandbox bench``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable

from tool_env.config import SandboxConfig
from tool_env.local import LocalSandbox
from tool_env.metrics import percentile

SNIPPETS = {
    "trivial": "print(1 + 1)",
    "numpy": "import numpy as np\nprint(int(np.arange(10).sum()))",
}
EXPECTED_STDOUT = {"trivial": "2\n", "numpy": "45\n"}
RUN_TIMEOUT_S = 60.0
WARM_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Plan:
    """How much to measure; `quick` is the few-second version shown in the README."""

    latency_runs: int
    naive_latency_runs: int
    concurrency: tuple[int, ...]
    throughput_runs: Callable[[int], int]
    levels: tuple[str, ...]
    throughput_snippets: tuple[str, ...]


def full_plan(levels: tuple[str, ...]) -> Plan:
    return Plan(200, 30, (1, 8, 32, 64), lambda c: max(64, 2 * c), levels, ("trivial", "numpy"))


def quick_plan(levels: tuple[str, ...]) -> Plan:
    return Plan(30, 6, (1, 8, 32), lambda c: max(16, c), levels[:1], ("trivial",))


@dataclass
class Report:
    latency_ms: dict[tuple[str, str, str], tuple[float, float]] = field(default_factory=dict)  # (who, snippet, mode)
    throughput: dict[tuple[str, str, int], float] = field(default_factory=dict)  # (who, snippet, c) -> runs/s


def _check(stdout: str, snippet: str) -> None:
    if stdout != EXPECTED_STDOUT[snippet]:
        raise RuntimeError(f"benchmark snippet {snippet!r} printed {stdout!r}")


def _latencies(call: Callable[[], str], snippet: str, runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        _check(call(), snippet)
        samples.append(time.perf_counter() - start)
    samples.sort()
    return percentile(samples, 50) * 1e3, percentile(samples, 99) * 1e3


def _throughput(call: Callable[[], str], snippet: str, concurrency: int, runs: int) -> float:
    with ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        outputs = list(pool.map(lambda _: call(), range(runs)))
        elapsed = time.perf_counter() - start
    for out in outputs:
        _check(out, snippet)
    return runs / elapsed


def naive_run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=RUN_TIMEOUT_S).stdout


def run_benchmark(plan: Plan, log: Callable[[str], None] = print) -> Report:
    """Measure every point for each sandbox and then for the baseline back to back, so that
    both see the same machine load (on a shared machine the load drifts within minutes)."""
    report = Report()
    with ExitStack() as stack:
        sandboxes = {}
        for level in plan.levels:
            log(f"starting local sandbox (isolation={level}) ...")
            sandbox = stack.enter_context(LocalSandbox(SandboxConfig(isolation=level)))
            if not sandbox.wait_until_warm(WARM_TIMEOUT_S):
                raise RuntimeError("the sandbox pool did not warm up")
            sandboxes[f"local-{level}"] = sandbox
        log("measuring (each point: every sandbox, then the naive subprocess.run baseline) ...")
        for snippet, code in SNIPPETS.items():
            for who, sandbox in sandboxes.items():
                sandbox.run(code)  # warm the code paths once
                report.latency_ms[(who, snippet, "stateless")] = _latencies(
                    lambda: sandbox.run(code, RUN_TIMEOUT_S).stdout, snippet, plan.latency_runs)
                with sandbox.session(stateful=True) as session:
                    session.run(code)
                    report.latency_ms[(who, snippet, "stateful")] = _latencies(
                        lambda: session.run(code, RUN_TIMEOUT_S).stdout, snippet, plan.latency_runs)
            report.latency_ms[("naive", snippet, "subprocess")] = _latencies(
                lambda: naive_run(code), snippet, plan.naive_latency_runs)
        for snippet in plan.throughput_snippets:
            code = SNIPPETS[snippet]
            for c in plan.concurrency:
                runs = plan.throughput_runs(c)
                for who, sandbox in sandboxes.items():
                    report.throughput[(who, snippet, c)] = _throughput(
                        lambda: sandbox.run(code, RUN_TIMEOUT_S).stdout, snippet, c, runs)
                report.throughput[("naive", snippet, c)] = _throughput(lambda: naive_run(code), snippet, c, runs)
    return report


def format_report(report: Report, plan: Plan) -> str:
    lines = ["Latency (ms)", f"{'who':<18}{'snippet':<9}{'mode':<12}{'p50':>9}{'p99':>9}"]
    for (who, snippet, mode), (p50, p99) in report.latency_ms.items():
        lines.append(f"{who:<18}{snippet:<9}{mode:<12}{p50:>9.2f}{p99:>9.2f}")
    header = "".join(f"{'c=' + str(c):>10}" for c in plan.concurrency)
    lines += ["", "Throughput (runs/s)", f"{'who':<18}{'snippet':<9}{header}"]
    for who in dict.fromkeys(k[0] for k in report.throughput):
        for snippet in plan.throughput_snippets:
            cells = "".join(f"{report.throughput.get((who, snippet, c), float('nan')):>10.1f}" for c in plan.concurrency)
            lines.append(f"{who:<18}{snippet:<9}{cells}")
    lines += ["", "Ratios vs naive baseline (higher is better) and targets"]
    naive_p50 = {s: report.latency_ms[("naive", s, "subprocess")][0] for s in SNIPPETS}
    targets = {"trivial": "p50 <= 5 ms", "numpy": "p50 <= 6 ms, >= 20x"}
    for (who, snippet, mode), (p50, _) in report.latency_ms.items():
        if who == "naive":
            continue
        target = targets[snippet] if mode == "stateless" else "<= 1 ms"
        lines.append(f"  {who} {snippet} {mode}: p50 {p50:.2f} ms, {naive_p50[snippet] / p50:.1f}x faster  (target {target})")
    throughput_targets = {"trivial": 5, "numpy": 20}
    for (who, snippet, c), runs_per_s in report.throughput.items():
        if who == "naive":
            continue
        ratio = runs_per_s / report.throughput[("naive", snippet, c)]
        target = f"  (target >= {throughput_targets[snippet]}x)" if c == 32 else ""
        lines.append(f"  {who} {snippet} c={c}: {ratio:.1f}x the naive throughput{target}")
    return "\n".join(lines)
