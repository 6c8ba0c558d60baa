"""Sandbox benchmark: latency, throughput and CPU per run of the local backend vs a naive baseline.

The baselines, measured in the same run and interleaved with the sandbox (each point is
measured in alternating chunks, so a load change on a shared machine hits both sides):

- ``plain``: a plain interpreter start per call, as a user of another project would run it:
  ``python -I -S -c`` of the same interpreter with a clean environment (numpy's directory
  appended to ``sys.path`` so the numpy snippet works without processing site-packages).
  Ratios and targets use this one.
- ``venv``: ``python -c`` of this project's virtualenv interpreter with the caller's
  environment (its site-packages and editable install make each start about 2.5x slower);
  printed beside it, never used for a target.
- ``fork-floor``: the fork-per-call floor (`tool_env.fork_floor`): warm interpreters with the
  same preloads and pool size that fork a child per call with rlimits and nothing else. Not a
  sandbox; it shows what the design itself reaches on this machine and what isolation adds.

Besides latency and throughput it prints the CPU a stateless run costs at saturation (the
caller process plus every process the sandbox started, from ``getrusage`` and ``/proc``),
runs/s per core for pool sizes 1 and 2, and the tail latency at 64 concurrent callers with
the queue wait the sandbox reports. Targets (namespace level): trivial stateless p50 <= 5 ms;
numpy snippet p50 >= 20x plain; a warm stateful run <= 1 ms; throughput at c=32 >= 4x plain
(trivial) and >= 20x (numpy); CPU per stateless run <= 4 ms; p99 at c=64 within 3x the p50
plus the reported queue wait. Used by ``benchmarks/bench_sandbox.py`` and ``r1ci sandbox bench``.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable

from tool_env.config import SandboxConfig
from tool_env.fork_floor import ForkFloor
from tool_env.local import LocalSandbox
from tool_env.local.isolation import namespace_problem
from tool_env.metrics import percentile

SNIPPETS = {
    "trivial": "print(1 + 1)",
    "numpy": "import numpy as np\nprint(int(np.arange(10).sum()))",
}
EXPECTED_STDOUT = {"trivial": "2\n", "numpy": "45\n"}
RUN_TIMEOUT_S = 60.0
WARM_TIMEOUT_S = 120.0
ROUNDS = 2  # each point alternates sandbox and baseline chunks this many times
POOL_ROUNDS = 4  # pool sizes alternate in more, shorter chunks: their ratio is the point
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROJECTED_CORES = 64  # the sandbox node size the projection is printed for

# Targets (issue "Sandbox throughput at saturation"); ratios are against the plain baseline.
TRIVIAL_P50_MS = 5.0
STATEFUL_P50_MS = 1.0
NUMPY_LATENCY_RATIO = 20.0
THROUGHPUT_RATIO_AT_32 = {"trivial": 4.0, "numpy": 20.0}
CPU_PER_RUN_MS = 4.0
TAIL_FACTOR = 3.0
SATURATED = 32  # the concurrency at which throughput ratios and CPU per run are judged
FLOOR = "fork-floor"


@dataclass(frozen=True)
class Plan:
    """How much to measure; `quick` is the under-a-minute version shown in the README."""

    latency_runs: int
    naive_latency_runs: int
    concurrency: tuple[int, ...]
    throughput_runs: Callable[[int], int]
    levels: tuple[str, ...]
    throughput_snippets: tuple[str, ...]
    pool_sizes: tuple[int, ...] = (1, 2)
    saturation_runs: int = 200  # per pool size, trivial snippet at c=32
    tail_concurrency: int = 64
    tail_runs: int = 256
    naive_concurrency_cap: int = 32  # naive points above this reuse it (interpreter starts only get slower)
    throughput_baselines: tuple[str, ...] = ("plain", "venv", FLOOR)
    numpy_concurrency: tuple[int, ...] | None = None  # None: the same points as the trivial snippet

    def points(self, snippet: str) -> tuple[int, ...]:
        if snippet == "numpy" and self.numpy_concurrency is not None:
            return self.numpy_concurrency
        return self.concurrency


def full_plan(levels: tuple[str, ...]) -> Plan:
    return Plan(200, 20, (1, 8, 32, 64), lambda c: max(96, 3 * c), levels, ("trivial", "numpy"),
                saturation_runs=600, tail_runs=512, numpy_concurrency=(1, 32))


def quick_plan(levels: tuple[str, ...]) -> Plan:
    return Plan(40, 6, (1, 8, 32), lambda c: max(32, c), levels[:1], ("trivial", "numpy"),
                saturation_runs=200, tail_runs=192, throughput_baselines=("plain", FLOOR), numpy_concurrency=(32,))


def available_levels() -> tuple[str, ...]:
    return ("namespace", "rlimit") if namespace_problem() is None else ("rlimit",)


# ----- what a call costs -----------------------------------------------------------------
def _proc_cpu_ticks(pid: int) -> tuple[int, int]:
    """(ppid, utime + stime + cutime + cstime in clock ticks) of one live process."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        stat = handle.read()
    fields = stat[stat.rfind(b")") + 2 :].split()  # fields[0] is the state (field 3 of proc(5))
    return int(fields[1]), sum(int(value) for value in fields[11:15])


def process_tree_cpu_s() -> tuple[float, float]:
    """CPU seconds so far of (this process, everything it started).

    "Everything it started" is cumulative: processes it reaped (``RUSAGE_CHILDREN``) plus,
    for every live descendant, its own time and that of the descendants it reaped (the
    zygote reaps its runs). A difference of two readings is therefore exactly the CPU spent
    in between by the sandbox's workers and runs (or by the naive baseline's interpreters).
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    parent_of: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent_of[int(entry)], ticks[int(entry)] = _proc_cpu_ticks(int(entry))
            except (OSError, ValueError, IndexError):
                continue  # exited meanwhile
    descendants, frontier = 0, {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parent_of.items() if parent in frontier}
        descendants += sum(ticks[pid] for pid in frontier)
    return own.ru_utime + own.ru_stime, reaped.ru_utime + reaped.ru_stime + descendants / CLOCK_TICKS


@dataclass
class Cost:
    """Runs, wall time and CPU (host = the caller process, sandbox = what it started) of a point."""

    runs: int = 0
    wall_s: float = 0.0
    host_cpu_s: float = 0.0
    sandbox_cpu_s: float = 0.0

    def add(self, runs: int, wall_s: float, before: tuple[float, float], after: tuple[float, float]) -> None:
        self.runs += runs
        self.wall_s += wall_s
        self.host_cpu_s += after[0] - before[0]
        self.sandbox_cpu_s += after[1] - before[1]

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.wall_s if self.wall_s else float("nan")

    @property
    def cpu_ms_per_run(self) -> float:
        return (self.host_cpu_s + self.sandbox_cpu_s) / self.runs * 1e3 if self.runs else float("nan")

    @property
    def host_ms_per_run(self) -> float:
        return self.host_cpu_s / self.runs * 1e3 if self.runs else float("nan")


# ----- baselines ---------------------------------------------------------------------------
def _numpy_dir() -> str:
    spec = importlib.util.find_spec("numpy")
    if spec is None or spec.origin is None:
        raise RuntimeError("the benchmark needs numpy")
    return os.path.dirname(os.path.dirname(spec.origin))


def _plain_env() -> dict[str, str]:
    """A clean environment with the same single-threaded BLAS the sandbox's workers get."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def plain_run(code: str) -> str:
    """A plain interpreter start: `python -I -S -c` with a clean environment."""
    prologue = f"import sys; sys.path.append({_numpy_dir()!r})\n"
    argv = [sys.executable, "-I", "-S", "-c", prologue + code]
    return subprocess.run(argv, capture_output=True, text=True, env=_plain_env(), timeout=RUN_TIMEOUT_S).stdout


def venv_run(code: str) -> str:
    """`python -c` of this interpreter as the caller would start it (site-packages, environment)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=RUN_TIMEOUT_S).stdout


NAIVE = {"plain": plain_run, "venv": venv_run}


# ----- measuring ---------------------------------------------------------------------------
@dataclass
class Report:
    cores: int = 0
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    latency_s: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)  # (who, snippet, mode)
    throughput: dict[tuple[str, str, int], Cost] = field(default_factory=dict)  # (who, snippet, c)
    pools: dict[int, Cost] = field(default_factory=dict)  # pool size -> trivial at c=32
    tail: dict[str, list[float]] = field(default_factory=dict)  # "latency" / "queue_wait" at c=64, seconds

    def p(self, key: tuple[str, str, str], q: float) -> float:
        return percentile(sorted(self.latency_s[key]), q) * 1e3


def _check(stdout: str, snippet: str) -> None:
    if stdout != EXPECTED_STDOUT[snippet]:
        raise RuntimeError(f"benchmark snippet {snippet!r} printed {stdout!r}")


def _latencies(call: Callable[[], str], snippet: str, runs: int, into: list[float]) -> None:
    for _ in range(runs):
        start = time.perf_counter()
        _check(call(), snippet)
        into.append(time.perf_counter() - start)


def burst(call: Callable[[], str], snippet: str, concurrency: int, runs: int, cost: Cost) -> None:
    """`runs` calls from `concurrency` threads; adds wall time and CPU to `cost`."""
    with ThreadPoolExecutor(concurrency) as pool:
        before = process_tree_cpu_s()
        start = time.perf_counter()
        outputs = list(pool.map(lambda _: call(), range(runs)))
        elapsed = time.perf_counter() - start
        after = process_tree_cpu_s()
    for out in outputs:
        _check(out, snippet)
    cost.add(runs, elapsed, before, after)


def start_sandbox(level: str, pool_size: int = 0) -> LocalSandbox:
    sandbox = LocalSandbox(SandboxConfig(isolation=level, pool_size=pool_size))
    if not sandbox.wait_until_warm(WARM_TIMEOUT_S):
        sandbox.close()
        raise RuntimeError("the sandbox pool did not warm up")
    return sandbox


def _stateless(sandbox: LocalSandbox, code: str) -> Callable[[], str]:
    return lambda: sandbox.run(code, RUN_TIMEOUT_S).stdout


def run_benchmark(plan: Plan, log: Callable[[str], None] = print) -> Report:
    """Measure every point in `ROUNDS` alternating chunks of sandbox and baselines."""
    report = Report(cores=os.cpu_count() or 1, load_before=os.getloadavg())
    with ExitStack() as stack:
        sandboxes: dict[str, LocalSandbox] = {}
        for level in plan.levels:
            log(f"starting local sandbox (isolation={level}) ...")
            sandboxes[f"local-{level}"] = stack.enter_context(start_sandbox(level))
        floor = stack.enter_context(ForkFloor(SandboxConfig().effective_pool_size))
        baselines: dict[str, Callable[[str], str]] = {**NAIVE, FLOOR: floor.run}
        log("latency ...")
        for snippet, code in SNIPPETS.items():
            for sandbox in sandboxes.values():
                sandbox.run(code)  # warm the code paths once
            floor.run(code)
            for _ in range(ROUNDS):
                for who, sandbox in sandboxes.items():
                    _latencies(_stateless(sandbox, code), snippet, plan.latency_runs // ROUNDS,
                               report.latency_s.setdefault((who, snippet, "stateless"), []))
                    with sandbox.session(stateful=True) as session:
                        session.run(code)
                        _latencies(lambda: session.run(code, RUN_TIMEOUT_S).stdout, snippet,
                                   plan.latency_runs // ROUNDS, report.latency_s.setdefault((who, snippet, "stateful"), []))
                _latencies(lambda: floor.run(code), snippet, plan.latency_runs // ROUNDS,
                           report.latency_s.setdefault((FLOOR, snippet, "stateless"), []))
                for name, naive in NAIVE.items():
                    _latencies(lambda: naive(code), snippet, max(1, plan.naive_latency_runs // ROUNDS),
                               report.latency_s.setdefault((name, snippet, "subprocess"), []))
        log("throughput ...")
        for snippet in plan.throughput_snippets:
            code = SNIPPETS[snippet]
            for c in plan.points(snippet):
                chunk = max(1, plan.throughput_runs(c) // ROUNDS)
                naive_c = min(c, plan.naive_concurrency_cap)
                for _ in range(ROUNDS):
                    for who, sandbox in sandboxes.items():
                        burst(_stateless(sandbox, code), snippet, c, chunk,
                               report.throughput.setdefault((who, snippet, c), Cost()))
                    for name in plan.throughput_baselines:
                        naive = baselines[name]
                        burst(lambda: naive(code), snippet, c if name == FLOOR else naive_c, chunk,
                               report.throughput.setdefault((name, snippet, c), Cost()))
        first = next(iter(sandboxes.values()))
        log(f"tail latency at c={plan.tail_concurrency} ...")
        _tail(first, plan, report)
    level = plan.levels[0]
    log(f"saturation with pool_size={', '.join(map(str, plan.pool_sizes))} (interleaved) ...")
    with ExitStack() as stack:
        pools = {size: stack.enter_context(start_sandbox(level, pool_size=size)) for size in plan.pool_sizes}
        for _ in range(POOL_ROUNDS):
            for size, sandbox in pools.items():
                burst(_stateless(sandbox, SNIPPETS["trivial"]), "trivial", SATURATED,
                       max(1, plan.saturation_runs // POOL_ROUNDS), report.pools.setdefault(size, Cost()))
    report.load_after = os.getloadavg()
    return report


def _tail(sandbox: LocalSandbox, plan: Plan, report: Report) -> None:
    code = SNIPPETS["trivial"]
    latency, queue_wait = report.tail.setdefault("latency", []), report.tail.setdefault("queue_wait", [])

    def call() -> str:
        start = time.perf_counter()
        result = sandbox.run(code, RUN_TIMEOUT_S)
        latency.append(time.perf_counter() - start)
        queue_wait.append(result.queue_wait_s)
        return result.stdout

    burst(call, "trivial", plan.tail_concurrency, plan.tail_runs, Cost())


# ----- the report --------------------------------------------------------------------------
def _saturated(plan: Plan, snippet: str) -> int:
    points = plan.points(snippet)
    return SATURATED if SATURATED in points else points[-1]


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def format_report(report: Report, plan: Plan) -> str:
    load = " -> ".join(f"{a:.2f}/{b:.2f}/{c:.2f}" for a, b, c in (report.load_before, report.load_after))
    lines = [f"{report.cores} cores; load average (1/5/15 min) {load}", "",
             "Latency (ms)", f"{'who':<18}{'snippet':<9}{'mode':<12}{'p50':>9}{'p99':>9}"]
    for key in report.latency_s:
        who, snippet, mode = key
        lines.append(f"{who:<18}{snippet:<9}{mode:<12}{report.p(key, 50):>9.2f}{report.p(key, 99):>9.2f}")
    header = "".join(f"{'c=' + str(c):>9}" for c in plan.concurrency)
    lines += ["", f"Throughput (runs/s); CPU per run at c={SATURATED} (ms: total = caller + what it started, and the caller alone)",
              f"{'who':<18}{'snippet':<9}{header}{'cpu/run':>10}{'caller':>9}"]
    for who in dict.fromkeys(k[0] for k in report.throughput):
        for snippet in plan.throughput_snippets:
            cells = "".join(f"{report.throughput[(who, snippet, c)].runs_per_s:>9.1f}"
                            if (who, snippet, c) in report.throughput else f"{'-':>9}" for c in plan.concurrency)
            cost = report.throughput[(who, snippet, _saturated(plan, snippet))]
            lines.append(f"{who:<18}{snippet:<9}{cells}{cost.cpu_ms_per_run:>10.2f}{cost.host_ms_per_run:>9.2f}")
    lines += ["", f"Pool size (trivial, c={SATURATED}, isolation={plan.levels[0]})",
              f"{'pool':<6}{'runs/s':>9}{'runs/s/core':>13}{'cpu/run ms':>12}{'caller ms':>11}"]
    for size, cost in report.pools.items():
        per_core = cost.runs_per_s / min(size, report.cores)
        lines.append(f"{size:<6}{cost.runs_per_s:>9.1f}{per_core:>13.1f}{cost.cpu_ms_per_run:>12.2f}{cost.host_ms_per_run:>11.2f}")
    lines += _targets(report, plan)
    return "\n".join(lines)


def _targets(report: Report, plan: Plan) -> list[str]:
    who = f"local-{plan.levels[0]}"
    lines = ["", f"Targets ({who}; ratios against the plain interpreter start, venv in brackets)"]
    trivial_p50 = report.p((who, "trivial", "stateless"), 50)
    lines.append(f"  trivial stateless p50 {trivial_p50:.2f} ms (target <= {TRIVIAL_P50_MS:g} ms): "
                 f"{_verdict(trivial_p50 <= TRIVIAL_P50_MS)}")
    for snippet in SNIPPETS:
        p50 = report.p((who, snippet, "stateless"), 50)
        plain, venv = (report.p((name, snippet, "subprocess"), 50) for name in NAIVE)
        line = f"  {snippet} stateless p50 {p50:.2f} ms: {plain / p50:.1f}x plain ({venv / p50:.1f}x venv)"
        if snippet == "numpy":
            line += f" (target >= {NUMPY_LATENCY_RATIO:g}x): {_verdict(plain / p50 >= NUMPY_LATENCY_RATIO)}"
        lines.append(line)
        stateful = report.p((who, snippet, "stateful"), 50)
        lines.append(f"  {snippet} stateful p50 {stateful:.2f} ms (target <= {STATEFUL_P50_MS:g} ms): "
                     f"{_verdict(stateful <= STATEFUL_P50_MS)}")
    for snippet in plan.throughput_snippets:
        for c in plan.points(snippet):
            mine = report.throughput[(who, snippet, c)].runs_per_s
            plain = report.throughput[("plain", snippet, c)].runs_per_s
            line = f"  {snippet} c={c}: {mine / plain:.1f}x plain throughput"
            if ("venv", snippet, c) in report.throughput:
                line += f" ({mine / report.throughput[('venv', snippet, c)].runs_per_s:.1f}x venv)"
            if (FLOOR, snippet, c) in report.throughput:
                line += f"; the fork floor {report.throughput[(FLOOR, snippet, c)].runs_per_s / plain:.1f}x"
            if c == SATURATED:
                target = THROUGHPUT_RATIO_AT_32[snippet]
                line += f" (target >= {target:g}x): {_verdict(mine / plain >= target)}"
            lines.append(line)
    point = _saturated(plan, "trivial")
    saturated = report.throughput[(who, "trivial", point)]
    plain_cost = report.throughput[("plain", "trivial", point)]
    floor_cost = report.throughput.get((FLOOR, "trivial", point))
    floor = f"; fork floor {floor_cost.cpu_ms_per_run:.2f} ms" if floor_cost else ""
    lines.append(f"  CPU per stateless run at c={point}: {saturated.cpu_ms_per_run:.2f} ms "
                 f"(caller {saturated.host_ms_per_run:.2f} ms; plain start {plain_cost.cpu_ms_per_run:.2f} ms{floor}) "
                 f"(target <= {CPU_PER_RUN_MS:g} ms): {_verdict(saturated.cpu_ms_per_run <= CPU_PER_RUN_MS)}")
    latency, queue_wait = sorted(report.tail["latency"]), sorted(report.tail["queue_wait"])
    in_slot = sorted(t - w for t, w in zip(report.tail["latency"], report.tail["queue_wait"]))
    bound = TAIL_FACTOR * trivial_p50
    lines.append(f"  c={plan.tail_concurrency}: p50 {percentile(latency, 50) * 1e3:.1f} ms, "
                 f"p99 {percentile(latency, 99) * 1e3:.1f} ms, queue wait p50 {percentile(queue_wait, 50) * 1e3:.1f} ms "
                 f"p99 {percentile(queue_wait, 99) * 1e3:.1f} ms; p99 of (latency - its queue wait) "
                 f"{percentile(in_slot, 99) * 1e3:.2f} ms (target <= {TAIL_FACTOR:g}x p50 = {bound:.2f} ms): "
                 f"{_verdict(percentile(in_slot, 99) * 1e3 <= bound)}")
    if report.pools:
        best = min(report.pools.values(), key=lambda cost: cost.cpu_ms_per_run)
        lines.append(f"  projected for a {PROJECTED_CORES}-core sandbox node (pool_size={PROJECTED_CORES}, CPU-bound): "
                     f"about {PROJECTED_CORES / best.cpu_ms_per_run * 1e3:.0f} trivial runs/s "
                     f"({PROJECTED_CORES} cores / {best.cpu_ms_per_run:.2f} ms per run)")
    return lines
