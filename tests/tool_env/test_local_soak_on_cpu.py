"""Soak: thousands of runs through a shared sandbox from many threads and asyncio tasks.

Asserts no result is lost or delivered to the wrong caller (every snippet prints its own
token), and that processes, zombies and fds all return to their idle baseline.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

from host_health import assert_healthy, baseline

from tool_env import SandboxConfig, create_sandbox

SOAK_RUNS = int(os.environ.get("TOOL_ENV_SOAK_RUNS", "2000"))
CONCURRENCY = 8
ASYNC_RUNS = 256
ASYNC_CONCURRENCY = 64


def snippet(i: int, token: str) -> str:
    if i % 50 == 0:  # some runs fail: errors must be routed just as carefully
        return f"raise ValueError({token!r})"
    return f"print({token!r})"


def test_soak_threads_then_asyncio() -> None:
    with create_sandbox(SandboxConfig(pool_size=2, preload_modules=("math",), max_output_chars=1000)) as sandbox:
        assert sandbox.wait_until_warm(60)
        base = baseline()
        tokens = [uuid.uuid4().hex for _ in range(SOAK_RUNS)]

        def one(i: int) -> tuple[int, str, str]:
            result = sandbox.run(snippet(i, tokens[i]), timeout_s=30)
            return i, result.stdout, result.error.message if result.error else ""

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            outcomes = list(pool.map(one, range(SOAK_RUNS)))
        wrong = [i for i, out, err in outcomes if (err if i % 50 == 0 else out) != (
            tokens[i] if i % 50 == 0 else tokens[i] + "\n")]
        assert not wrong, f"{len(wrong)} results lost or misrouted, e.g. run {wrong[0]}: {outcomes[wrong[0]]}"

        async def many() -> list[str]:
            gate = asyncio.Semaphore(ASYNC_CONCURRENCY)

            async def run(token: str) -> str:
                async with gate:
                    return (await sandbox.arun(f"print({token!r})")).stdout

            return await asyncio.gather(*(run(t) for t in tokens[:ASYNC_RUNS]))

        assert asyncio.run(many()) == [t + "\n" for t in tokens[:ASYNC_RUNS]]
        metrics = sandbox.metrics()
        assert metrics["sandbox/runs"] == SOAK_RUNS + ASYNC_RUNS
        assert metrics["sandbox/crashes"] == 0 and metrics["sandbox/timeouts"] == 0
        assert_healthy(base)
