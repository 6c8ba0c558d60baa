"""One node under rollout load: N agent-loop worker processes, each with its shared sandbox.

Simulates the paper's step on one node (128 prompts x 5 responses = 640 concurrent
trajectories, up to 8 code calls each, spread over verl's 8 agent-loop workers): every
trajectory alternates a "generation" pause with one code block in its own session. It
reports, for the node-aware default (`pool_size: 0` = each worker's share of the node's
cores) and, measured in the same run, the old default (every worker a pool of all cores):
warm workers started, peak RSS of all sandbox processes on the node, queue wait p50/p99 (time
waiting for a pool slot), run p99 (the run itself: CPU contention shows here), wall time and
whether every trajectory completed.

    python benchmarks/bench_node_load.py                # paper scale: 8 workers, 640 trajectories
    python benchmarks/bench_node_load.py --quick        # 2 workers, 32 trajectories, 3 calls (seconds)
    python benchmarks/bench_node_load.py --node-cpus 192 --quick   # size pools as a 192-core node would
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import random
import threading
import time
from dataclasses import dataclass

import psutil

from tool_env import SandboxConfig
from tool_env.config import auto_pool_size
from tool_env.metrics import percentile
from tool_env.shared import ashared_sandbox, close_shared_sandboxes

SNIPPET = "total = sum(i * i for i in range({n}))\nprint(total % 97)"
RSS_SAMPLE_S = 0.1


@dataclass(frozen=True)
class Load:
    workers: int  # agent-loop worker processes on the node
    trajectories: int  # concurrent trajectories on the node
    calls: int  # code calls per trajectory
    generate_s: float  # mean pause between calls (the LLM generating)
    stateful: bool


def worker_main(load: Load, pool_size: int, share: int, seed: int, out: mp.Queue) -> None:
    """One agent-loop worker: its share of the trajectories, all concurrent, on its shared sandbox."""
    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(seed)
    config = SandboxConfig(pool_size=pool_size, stateful=load.stateful, timeout_s=30.0,
                           preload_modules=("math", "json"))

    async def trajectory(sandbox) -> list[tuple[float, float]]:
        waits = []
        async with sandbox.async_session(stateful=load.stateful) as session:
            for _ in range(load.calls):
                await asyncio.sleep(rng.expovariate(1 / load.generate_s))
                result = await session.run(SNIPPET.format(n=rng.randint(1_000, 50_000)))
                if not result.ok:
                    raise RuntimeError(f"code call failed: {result.error}")
                waits.append((result.queue_wait_s, result.duration_s))
        return waits

    async def main() -> None:
        sandbox = await ashared_sandbox(config)
        started = time.monotonic()
        outcomes = await asyncio.gather(*(trajectory(sandbox) for _ in range(share)), return_exceptions=True)
        waits = [w for o in outcomes if isinstance(o, list) for w, _ in o]
        runs = [d for o in outcomes if isinstance(o, list) for _, d in o]
        failed = sum(isinstance(o, BaseException) for o in outcomes)
        metrics = sandbox.metrics()
        out.put({"waits": waits, "runs": runs, "failed": failed, "done": share - failed, "elapsed": time.monotonic() - started,
                 "workers_started": metrics["sandbox/workers_started"],
                 "evictions": metrics["sandbox/session_evictions"]})

    try:
        asyncio.run(main())
    finally:
        close_shared_sandboxes()


def peak_rss(stop: threading.Event, peak: list[int]) -> None:
    """Peak resident memory of every process this benchmark started (workers and their sandboxes)."""
    me = psutil.Process()
    while not stop.wait(RSS_SAMPLE_S):
        total = 0
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                continue
        peak[0] = max(peak[0], total)


def run(load: Load, pool_size: int) -> dict:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    shares = [load.trajectories // load.workers + (i < load.trajectories % load.workers) for i in range(load.workers)]
    procs = [ctx.Process(target=worker_main, args=(load, pool_size, share, i, out)) for i, share in enumerate(shares)]
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=peak_rss, args=(stop, peak), daemon=True)
    sampler.start()
    started = time.monotonic()
    for proc in procs:
        proc.start()
    reports = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    stop.set()
    sampler.join()
    waits = sorted(w for r in reports for w in r["waits"])
    runs = sorted(d for r in reports for d in r["runs"])
    return {
        "pool_per_worker": pool_size,
        "workers_started": sum(r["workers_started"] for r in reports),
        "peak_rss_mb": peak[0] / 2**20,
        "wait_p50_s": percentile(waits, 50),
        "wait_p99_s": percentile(waits, 99),
        "run_p99_s": percentile(runs, 99),
        "completed": sum(r["done"] for r in reports),
        "failed": sum(r["failed"] for r in reports),
        "calls": len(waits),
        "evictions": sum(r["evictions"] for r in reports),
        "wall_s": time.monotonic() - started,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small load that runs in seconds on 2 cores")
    parser.add_argument("--node-cpus", type=int, default=os.cpu_count() or 1, help="cores of the node to size for")
    parser.add_argument("--stateful", action="store_true", help="stateful sessions (each holds a worker)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the old all-cores-per-worker default")
    parser.add_argument("--workers", type=int, help="agent-loop worker processes (paper: 8)")
    parser.add_argument("--trajectories", type=int, help="concurrent trajectories on the node (paper: 640)")
    parser.add_argument("--calls", type=int, help="code calls per trajectory (paper: up to 8)")
    parser.add_argument("--generate-s", type=float, help="mean generation pause between calls")
    args = parser.parse_args(argv)
    if args.quick:
        load = Load(workers=2, trajectories=32, calls=3, generate_s=0.05, stateful=args.stateful)
    else:
        load = Load(workers=8, trajectories=640, calls=8, generate_s=0.5, stateful=args.stateful)
    load = Load(
        workers=args.workers or load.workers, trajectories=args.trajectories or load.trajectories,
        calls=args.calls or load.calls, generate_s=args.generate_s or load.generate_s, stateful=args.stateful,
    )
    rows = [("node-aware default", run(load, auto_pool_size(args.node_cpus, load.workers)))]
    if not args.no_baseline:
        rows.append(("old default (all cores per worker)", run(load, args.node_cpus)))
    print(f"{load.trajectories} trajectories x {load.calls} calls on {load.workers} agent-loop workers, "
          f"pools sized for a {args.node_cpus}-core node ({os.cpu_count()} cores here)")
    header = ("setting", "pool/worker", "workers", "peak RSS MB", "wait p50 s", "wait p99 s", "run p99 s", "completed",
              "failed", "evictions", "wall s")
    print(" | ".join(header))
    for name, r in rows:
        print(" | ".join([name, str(r["pool_per_worker"]), f"{r['workers_started']:.0f}", f"{r['peak_rss_mb']:.0f}",
                          f"{r['wait_p50_s']:.3f}", f"{r['wait_p99_s']:.3f}", f"{r['run_p99_s']:.3f}",
                          f"{r['completed']}/{load.trajectories}",
                          str(r["failed"]), f"{r['evictions']:.0f}", f"{r['wall_s']:.1f}"]))
    if len(rows) == 2:
        new, old = rows[0][1], rows[1][1]
        print(f"peak RSS ratio new/old: {new['peak_rss_mb'] / max(old['peak_rss_mb'], 1e-9):.2f}; "
              f"wait p99 ratio new/old: {new['wait_p99_s'] / max(old['wait_p99_s'], 1e-9):.2f}")
    return 0 if all(r["failed"] == 0 for _, r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
