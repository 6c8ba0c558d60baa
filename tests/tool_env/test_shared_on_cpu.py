"""The process-wide shared sandbox: built off the event loop, checked once, live sessions capped."""

from __future__ import annotations

import asyncio
import time

import pytest

from tool_env import SandboxConfig, SandboxUnavailableError
from tool_env.config import AUTO_POOL_MAX, AUTO_POOL_MIN, auto_pool_size
from tool_env.shared import ashared_sandbox, close_shared_sandboxes, prepare_shared_sandbox, shared_sandbox

FAST = dict(pool_size=1, timeout_s=5.0, preload_modules=("math",))


@pytest.fixture(autouse=True)
def fresh_cache():
    close_shared_sandboxes()
    yield
    close_shared_sandboxes()


async def test_build_runs_off_the_event_loop_and_is_shared_by_concurrent_callers() -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    boxes = await asyncio.gather(*(ashared_sandbox(SandboxConfig(**FAST)) for _ in range(5)))
    elapsed = time.monotonic() - started
    stop.set()
    await task
    assert all(box is boxes[0] for box in boxes)  # one build, every caller gets it
    assert boxes[0].metrics()["sandbox/runs"] == 1  # the start-up check ran once
    assert ticks >= elapsed / 0.005 / 4  # the loop kept turning while the pool started


async def test_a_failed_build_reaches_every_waiter_with_one_clear_message(monkeypatch) -> None:
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    config = SandboxConfig(backend="e2b")
    results = await asyncio.gather(*(ashared_sandbox(config) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, SandboxUnavailableError) and "E2B_API_KEY" in str(r) for r in results)
    with pytest.raises(SandboxUnavailableError, match="E2B_API_KEY"):
        prepare_shared_sandbox(config)  # the next caller tries again and is told the same


def test_live_stateful_sessions_are_capped_and_evictions_counted() -> None:
    sandbox = shared_sandbox(SandboxConfig(max_sessions=2, **FAST))
    first, second, third = (sandbox.session(stateful=True) for _ in range(3))
    for n, session in enumerate((first, second, third)):
        assert session.run(f"x = {n}").ok
    metrics = sandbox.metrics()
    assert metrics["sandbox/session_evictions"] == 1 and metrics["sandbox/live_sessions"] == 2
    assert second.run("print(x)").stdout == "1\n" and third.run("print(x)").stdout == "2\n"
    evicted = first.run("print('x' in globals())")  # the least recently used lost its worker
    assert evicted.stdout == "False\n" and evicted.extra["session_restarted"] is True
    for session in (first, second, third):
        session.close()
    assert sandbox.metrics()["sandbox/live_sessions"] == 0


async def test_async_sessions_are_capped_too() -> None:
    sandbox = await ashared_sandbox(SandboxConfig(max_sessions=1, **FAST))
    first, second = sandbox.async_session(stateful=True), sandbox.async_session(stateful=True)
    await first.run("x = 1")
    await second.run("x = 2")
    assert (await first.run("print('x' in globals())")).extra["session_restarted"] is True
    assert sandbox.metrics()["sandbox/session_evictions"] == 2  # first evicted second in turn
    await first.close()
    await second.close()


@pytest.mark.parametrize(
    ("cpus", "processes", "expected"),
    [(192, 8, 24), (192, 1, AUTO_POOL_MAX), (2, 8, AUTO_POOL_MIN), (16, 8, AUTO_POOL_MIN), (64, 8, 8)],
)
def test_auto_pool_size_is_a_bounded_share_of_the_node(cpus: int, processes: int, expected: int) -> None:
    assert auto_pool_size(cpus, processes) == expected


def test_default_pool_is_bounded_on_a_big_node(monkeypatch) -> None:
    monkeypatch.setattr("tool_env.config.usable_cpus", lambda: 192)
    monkeypatch.setenv("R1CI_SANDBOX_PROCESSES_PER_NODE", "8")
    config = SandboxConfig()
    assert config.effective_pool_size == 24  # not 192 per process: 8 workers x 24 = one per core
    assert config.effective_max_sessions == 4 * 24
    assert SandboxConfig(processes_per_node=4).effective_pool_size == 32


def test_sessions_racing_for_the_cap_never_run_on_an_evicted_interpreter() -> None:
    """Threads whose sessions evict each other all the time (cap 1): every run either continues
    its own interpreter or says it restarted; none fails because a neighbour evicted it mid-call."""
    import threading

    sandbox = shared_sandbox(SandboxConfig(max_sessions=1, **{**FAST, "pool_size": 2}))
    start = threading.Barrier(4)
    failures: list[str] = []

    def worker() -> None:
        start.wait()
        for _ in range(25):  # new sessions keep being admitted while the others sit idle between runs
            session = sandbox.session(stateful=True)
            expected = 0
            try:
                for _ in range(4):
                    result = session.run("n = globals().get('n', 0) + 1\nprint(n)")
                    expected = 1 if result.extra.get("session_restarted") else expected + 1
                    if not result.ok or result.stdout != f"{expected}\n":
                        failures.append(f"{result.stdout!r} (expected {expected}): {result.error}")
                    time.sleep(0.001)  # idle, as while the model writes its next turn: evictable
            except Exception as exc:  # an evicted inner session used anyway
                failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                session.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    evictions = sandbox.metrics()["sandbox/session_evictions"]
    assert evictions > 10, evictions
