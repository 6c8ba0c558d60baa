"""Local-backend behaviour beyond the shared contract: pool fairness, sessions, metrics, limits."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from tool_env import SandboxClosedError, SandboxConfig, create_sandbox
from tool_env.local.pool import FairSlots
from tool_env.metrics import SandboxMetrics, percentile
from tool_env.result import ExecutionError, ExecutionResult, is_infra_failure

FAST = dict(preload_modules=("math",), max_output_chars=1000)


@pytest.fixture(scope="module")
def sandbox():
    with create_sandbox(SandboxConfig(pool_size=2, session_ttl_s=60, **FAST)) as sandbox:
        yield sandbox


# ----- fair slots ---------------------------------------------------------------------
def test_fair_slots_serve_waiters_in_arrival_order() -> None:
    slots = FairSlots(1)
    slots.acquire()
    order: list[int] = []
    threads = []
    for i in range(6):
        thread = threading.Thread(target=lambda i=i: (slots.acquire(), order.append(i), slots.release()))
        thread.start()
        threads.append(thread)
        while slots.waiting < i + 1:  # make arrival order deterministic
            time.sleep(0.001)
    slots.release()
    for thread in threads:
        thread.join(5)
    assert order == list(range(6))


def test_fair_slots_never_exceed_their_size() -> None:
    slots = FairSlots(3)
    active, peak, lock = 0, 0, threading.Lock()

    def use() -> None:
        nonlocal active, peak
        slots.acquire()
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1
        slots.release()

    threads = [threading.Thread(target=use) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert peak == 3


def test_closing_slots_wakes_waiters_with_an_error() -> None:
    slots = FairSlots(1)
    slots.acquire()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            slots.acquire()
        except SandboxClosedError as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    while not slots.waiting:
        time.sleep(0.001)
    slots.close()
    thread.join(5)
    assert len(errors) == 1
    with pytest.raises(SandboxClosedError):
        slots.acquire()


# ----- queueing and metrics -------------------------------------------------------------
def test_queue_wait_is_measured_when_all_slots_are_busy() -> None:
    with create_sandbox(SandboxConfig(pool_size=1, **FAST)) as sandbox:
        results: dict[str, ExecutionResult] = {}
        first = threading.Thread(target=lambda: results.setdefault("first", sandbox.run("import time\ntime.sleep(1)")))
        first.start()
        time.sleep(0.3)
        second = sandbox.run("print('second')")
        first.join()
        assert second.stdout == "second\n"
        assert second.queue_wait_s >= 0.4  # it waited for the first run to finish
        assert results["first"].queue_wait_s < 0.3


def test_metrics_count_runs_errors_timeouts_and_truncations(sandbox) -> None:
    before = sandbox.metrics()
    sandbox.run("print(1)")
    sandbox.run("1/0")
    sandbox.run("while True:\n    pass", timeout_s=0.5)
    sandbox.run("print('x' * 5000)")
    sandbox.run("import os\nos._exit(1)")
    after = sandbox.metrics()
    assert all(isinstance(v, float) for v in after.values())
    counters = [f"sandbox/{name}" for name in ("runs", "errors", "timeouts", "truncations", "crashes")]
    delta = {key: after[key] - before[key] for key in counters}
    assert delta == {
        "sandbox/runs": 5.0,
        "sandbox/errors": 3.0,
        "sandbox/timeouts": 1.0,
        "sandbox/truncations": 1.0,
        "sandbox/crashes": 1.0,
    }
    assert 0 < after["sandbox/latency_p50_s"] <= after["sandbox/latency_p99_s"]
    assert after["sandbox/queue_wait_p99_s"] >= 0


def test_metrics_summaries() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([float(i) for i in range(100)], 99) == 98.0
    metrics = SandboxMetrics(window=3)
    for latency in (1.0, 2.0, 3.0, 100.0):  # the window keeps the last three
        metrics.record(ExecutionResult(error=ExecutionError("WorkerCrashed", "x")), latency)
    snap = metrics.snapshot()
    assert snap["sandbox/runs"] == 4.0 and snap["sandbox/crashes"] == 4.0
    assert snap["sandbox/latency_p50_s"] == 3.0 and snap["sandbox/latency_p99_s"] == 100.0


# ----- stateful sessions ------------------------------------------------------------------
def test_stateful_timeout_kills_the_session_and_the_next_run_starts_fresh(sandbox) -> None:
    with sandbox.session(stateful=True) as session:
        session.run("kept = 1")
        assert session.run("while True:\n    pass", timeout_s=0.5).timed_out
        after = session.run("print('kept' in globals())")
        assert after.stdout == "False\n"
        assert after.extra == {"session_restarted": True}
        again = session.run("print('again')")
        assert again.extra == {}  # only the first run after the loss says so


def test_stateful_crash_restarts_fresh(sandbox) -> None:
    with sandbox.session(stateful=True) as session:
        session.run("kept = 1")
        assert session.run("import ctypes\nctypes.string_at(0)").error.name == "WorkerCrashed"
        after = session.run("print('kept' in globals())")
        assert after.stdout == "False\n" and after.extra.get("session_restarted") is True


def test_a_session_that_corrupts_its_status_channel_is_reported_crashed_and_restarted(sandbox) -> None:
    """Reported as WorkerCrashed, it must also be treated as one: what is left in the channel
    must not be read as the next run's status."""
    with sandbox.session(stateful=True) as session:
        session.run("kept = 1")
        corrupt = session.run("import os\nos.write(4, b'\\xff' * 64)")
        assert corrupt.error.name == "WorkerCrashed" and "status channel" in corrupt.error.message
        after = session.run("print('kept' in globals())")
        assert after.ok and after.stdout == "False\n" and after.extra.get("session_restarted") is True


def test_idle_stateful_sessions_expire_after_their_ttl() -> None:
    with create_sandbox(SandboxConfig(pool_size=1, session_ttl_s=1, **FAST)) as sandbox:
        session = sandbox.session(stateful=True)
        session.run("x = 1")
        assert sandbox.metrics()["sandbox/open_sessions"] == 1.0
        deadline = time.monotonic() + 10
        while not session.closed and time.monotonic() < deadline:
            time.sleep(0.1)
        assert session.closed and session.expired
        with pytest.raises(SandboxClosedError, match="session_ttl_s"):
            session.run("print(x)")
        assert sandbox.metrics()["sandbox/open_sessions"] == 0.0
        assert sandbox.run("print('pool still serves')").ok


def test_abandoned_stateful_session_is_still_reaped_by_ttl() -> None:
    import gc

    # a TTL well above one run's latency on a loaded machine, so the session is still open when counted
    with create_sandbox(SandboxConfig(pool_size=1, session_ttl_s=3, **FAST)) as sandbox:
        sandbox.session(stateful=True).run("x = 1")  # never closed, no reference kept
        gc.collect()
        assert sandbox.metrics()["sandbox/open_sessions"] == 1.0
        deadline = time.monotonic() + 15
        while sandbox.metrics()["sandbox/open_sessions"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sandbox.metrics()["sandbox/open_sessions"] == 0.0


def test_stateful_default_comes_from_config() -> None:
    with create_sandbox(SandboxConfig(pool_size=1, stateful=True, **FAST)) as sandbox:
        with sandbox.session() as session:
            assert session.stateful
            session.run("y = 2")
            assert session.run("print(y)").stdout == "2\n"


# ----- behaviour of the child ---------------------------------------------------------------
def test_random_state_differs_between_stateless_runs() -> None:
    with create_sandbox(SandboxConfig(pool_size=1, preload_modules=("random", "numpy", "numpy.random"))) as sandbox:
        code = "import random, numpy\nprint(random.random(), numpy.random.rand())"
        outputs = {sandbox.run(code).stdout for _ in range(4)}
        assert len(outputs) == 4


def test_preloaded_modules_are_warm_and_failures_are_reported() -> None:
    with create_sandbox(SandboxConfig(pool_size=1, preload_modules=("json", "no_such_module_xyz"))) as sandbox:
        assert "no_such_module_xyz" in sandbox.preload_errors
        assert sandbox.run("import sys\nprint('json' in sys.modules)").stdout == "True\n"


def test_environment_is_minimal() -> None:
    with create_sandbox(SandboxConfig(pool_size=1, **FAST)) as sandbox:
        names = sandbox.run("import os\nprint(sorted(os.environ))").stdout
    assert eval(names) == sorted(
        ["HOME", "LANG", "LC_ALL", "MKL_NUM_THREADS", "MPLBACKEND", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
         "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "TMPDIR"]
    )


def test_subprocess_python_works_inside() -> None:
    with create_sandbox(SandboxConfig(pool_size=1, **FAST)) as sandbox:
        result = sandbox.run("import subprocess, sys\nprint(subprocess.run([sys.executable, '-c', 'print(7)'], "
                             "capture_output=True, text=True).stdout.strip())")
    assert result.stdout == "7\n", result


@pytest.mark.parametrize("isolation", ["namespace", "rlimit"])
def test_runs_are_the_oom_killers_first_choice(isolation: str) -> None:
    """A node out of memory must lose sandbox runs, not the trainer: every run (and anything it
    starts) carries the highest oom_score_adj; a host holding CAP_SYS_RESOURCE pins it there."""
    from tool_env.local import oom
    from tool_env.local.isolation import namespace_problem

    if isolation == "namespace" and namespace_problem() is not None:
        pytest.skip("no namespaces here")
    lower = ("import os\ntry:\n    with open('/proc/self/oom_score_adj', 'w') as f:\n        f.write('0')\n"
             "except OSError:\n    pass\nprint(open('/proc/self/oom_score_adj').read().strip())")
    with create_sandbox(SandboxConfig(isolation=isolation, pool_size=1, **FAST)) as sandbox:
        assert sandbox.run("print(open('/proc/self/oom_score_adj').read().strip())").stdout == "1000\n"
        started = sandbox.run("import subprocess\nprint(subprocess.run(['cat', '/proc/self/oom_score_adj'], "
                              "capture_output=True, text=True).stdout.strip())")
        assert started.stdout == "1000\n", started
        assert sandbox.run(lower).stdout == ("1000\n" if oom.can_pin() else "0\n")
        assert sandbox.run("print(open('/proc/self/oom_score_adj').read().strip())").stdout == "1000\n"


# ----- lifecycle and configuration ------------------------------------------------------------
def test_closed_sandbox_refuses_work() -> None:
    sandbox = create_sandbox(SandboxConfig(pool_size=1, **FAST))
    session = sandbox.session(stateful=True)
    session.run("x = 1")
    sandbox.close()
    sandbox.close()  # idempotent
    assert session.closed
    with pytest.raises(SandboxClosedError):
        sandbox.run("print(1)")
    with pytest.raises(SandboxClosedError):
        sandbox.session()


def test_rlimit_mode_is_announced_loudly(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="tool_env"):
        with create_sandbox(SandboxConfig(isolation="rlimit", pool_size=1, **FAST)) as sandbox:
            assert sandbox.isolation == "rlimit"
    assert any("isolation=rlimit" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("timeout_s", 0, ValueError),
        ("max_output_chars", 10, ValueError),
        ("memory_mb", 10**9, ValueError),
        ("pool_size", -1, ValueError),
        ("disk_mb", 0, ValueError),
        ("max_processes", "many", TypeError),
        ("isolation", "chroot", ValueError),
    ],
)
def test_absurd_config_is_rejected_with_the_field_name(field, value, error) -> None:
    with pytest.raises(error, match=field):
        SandboxConfig(**{field: value})


@pytest.mark.parametrize(
    "code",
    [
        # memoised recursion through C (lru_cache) with a raised limit overflows the C stack: SIGSEGV
        "import sys\nfrom functools import lru_cache\nsys.setrecursionlimit(10 ** 6)\n@lru_cache(None)\n"
        "def f(n):\n    return 0 if n == 0 else f(n - 1) + 1\nprint(f(300_000))",
        "import os\nos._exit(3)",
        "import os\nos.write(4, b'\\xff' * 64)",  # a corrupted status channel
        "import os, time\nos.close(4)\ntime.sleep(30)",  # a status channel closed by a run that lives on
    ],
    ids=["segfault", "os_exit", "corrupt_status", "closed_status"],
)
def test_a_crash_of_the_code_is_not_a_sandbox_failure(sandbox, code: str) -> None:
    """Reported as WorkerCrashed, but the sandbox answered: counting it as an infrastructure
    failure let code that crashes often (a common memoised-recursion idiom) stop training."""
    result = sandbox.run(code)
    assert result.error is not None and result.error.name == "WorkerCrashed", result
    assert not is_infra_failure(result), result


def test_a_worker_that_died_idle_is_replaced_not_handed_out() -> None:
    """A worker can die between runs (the OOM killer picks sandbox processes first): the next
    caller must get a live one, not a WorkerCrashed for nothing its code did."""
    with create_sandbox(SandboxConfig(pool_size=1, **FAST)) as sandbox:
        assert sandbox.run("print(1)").ok
        assert sandbox.wait_until_warm(60)
        (idle,) = sandbox._pool._idle
        os.killpg(idle.proc.pid, 9)
        deadline = time.monotonic() + 10
        while idle.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        result = sandbox.run("print(2)")
        assert result.ok and result.stdout == "2\n", result
        assert not is_infra_failure(result)
