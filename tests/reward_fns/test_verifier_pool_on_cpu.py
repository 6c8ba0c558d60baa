"""Budgeted verifiers run in killable worker processes (reward_fns.verifier_pool).

With the former thread pool, 8 hanging answers held all 8 threads for good and every later
answer of those tasks timed out: these tests hang more answers than there are workers and
check that the next normal answer still scores correctly, within a bound.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from reward_fns import registry
from reward_fns.registry import register_verifier
from reward_fns.scoring import compute_score
from reward_fns.verifier_pool import MAX_WORKERS, VerifierPool, shared_pool

BUDGET_S = 1.0
HUNG = MAX_WORKERS + 2  # more hanging answers than workers
NORMAL_BOUND_S = BUDGET_S + 4.0  # a normal answer after the hangs: its own budget plus a fresh fork
SEQUENTIAL_BUDGET_S = 0.3
HANGS_MATH_VERIFY = r"9^{9^{9^{9}}}"  # sympy tries to evaluate the power tower: runs for minutes
_ids = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{next(_ids)}"


MATH_TRUTH = json.dumps({"task": "symbench/math_geometry", "answer": r"\frac{1}{2}", "meta": {}})


@pytest.fixture()
def short_math_budget(monkeypatch):
    """The real math_geometry verifier, with a 1 s budget so the test stays short."""
    registry.get_verifier("symbench/math_geometry")  # loads the built-ins
    monkeypatch.setitem(registry._TIME_BUDGETS, "symbench/math_geometry", BUDGET_S)


def test_hanging_math_answers_are_killed_and_the_next_answer_still_scores(short_math_budget) -> None:
    hang = f"<<<{HANGS_MATH_VERIFY}>>>"
    start = time.monotonic()
    with ThreadPoolExecutor(HUNG) as threads:
        hung = list(threads.map(lambda _: compute_score("symbench/math_geometry", hang, MATH_TRUTH), range(HUNG)))
    assert all(r["verifier_timeout"] == 1.0 and r["acc"] == 0.0 for r in hung), hung
    assert all("time budget of 1 s" in r["reward_error"] for r in hung)
    # HUNG answers on MAX_WORKERS workers: two rounds of budgets, not minutes of hanging
    assert time.monotonic() - start < 2 * BUDGET_S + 10.0

    start = time.monotonic()
    normal = compute_score("symbench/math_geometry", "<<<0.5>>>", MATH_TRUTH)
    assert time.monotonic() - start < NORMAL_BOUND_S
    assert normal["acc"] == 1.0 and normal["verifier_timeout"] == 0.0 and normal["reward_error"] == ""


def test_one_after_another_hangs_do_not_poison_later_answers(monkeypatch) -> None:
    registry.get_verifier("symbench/math_geometry")
    monkeypatch.setitem(registry._TIME_BUDGETS, "symbench/math_geometry", SEQUENTIAL_BUDGET_S)
    for _ in range(HUNG):
        result = compute_score("symbench/math_geometry", f"<<<{HANGS_MATH_VERIFY}>>>", MATH_TRUTH)
        assert result["verifier_timeout"] == 1.0
    start = time.monotonic()
    assert compute_score("symbench/math_geometry", r"<<<\frac{2}{4}>>>", MATH_TRUTH)["acc"] == 1.0
    assert time.monotonic() - start < NORMAL_BOUND_S


def test_a_verifier_that_kills_its_process_is_an_error_and_the_worker_is_replaced() -> None:
    name = unique("test/exit")
    register_verifier(name, lambda answer, reference: os._exit(3) if answer == "die" else 1.0, time_budget_s=5)
    died = compute_score(name, "<<<die>>>", "x")
    assert died["acc"] == 0.0 and died["verifier_error"] == 1.0 and died["verifier_timeout"] == 0.0
    assert "process died" in died["reward_error"] and "exit code 3" in died["reward_error"]
    assert compute_score(name, "<<<fine>>>", "x")["acc"] == 1.0


def test_verifiers_registered_after_a_worker_started_are_found() -> None:
    first = unique("test/first")
    register_verifier(first, lambda answer, reference: 1.0, time_budget_s=5)
    assert compute_score(first, "<<<a>>>", "a")["acc"] == 1.0  # a worker is forked and kept idle
    later = unique("test/later")
    register_verifier(later, lambda answer, reference: float(answer == "b"), time_budget_s=5)  # a closure
    assert compute_score(later, "<<<b>>>", "b")["acc"] == 1.0
    assert compute_score(later, "<<<c>>>", "b")["acc"] == 0.0


def test_pool_counts_timeouts_and_reuses_idle_workers() -> None:
    name = unique("test/sleepy")
    register_verifier(name, lambda answer, reference: time.sleep(float(answer)) or 1.0, time_budget_s=5)
    pool = VerifierPool(max_workers=2)
    try:
        reference = registry.Reference(task=name, answer=None)
        assert pool.run(name, "0", reference, 5.0).result == 1.0
        worker_pid = pool._idle[0].process.pid
        assert pool.run(name, "0", reference, 5.0).result == 1.0
        assert pool._idle[0].process.pid == worker_pid  # reused, not forked again
        outcome = pool.run(name, "30", reference, 0.3)
        assert outcome.timed_out and outcome.result is None and pool.timeouts == 1
        with pytest.raises(ProcessLookupError):
            os.kill(worker_pid, 0)  # the overrunning worker is gone, not left running
    finally:
        pool.close()


def test_shared_pool_is_per_process() -> None:
    assert shared_pool() is shared_pool()


KILLED_SCORER = """
import os, signal
from reward_fns import registry
from reward_fns.registry import register_verifier
from reward_fns.verifier_pool import VerifierPool
register_verifier("test/orphan", lambda answer, reference: True, time_budget_s=5)
pool = VerifierPool(max_workers=2)
reference = registry.Reference(task="test/orphan", answer=None)
assert pool.run("test/orphan", "a", reference, 5.0).result is True
print(pool._idle[0].process.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # an OOM kill or a killed Ray actor: no cleanup runs
"""


def test_workers_die_with_a_killed_scoring_process() -> None:
    """Each worker is a fork of the trainer: a killed scorer must not leave them running."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", KILLED_SCORER], capture_output=True, text=True, timeout=60)
    worker = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(worker, 9)
    pytest.fail(f"verifier worker {worker} outlived its killed parent")


def test_a_numpy_bool_result_is_a_bool() -> None:
    import numpy as np

    name = unique("test/numpy-bool")
    register_verifier(name, lambda answer, reference: np.bool_(answer == "a"), time_budget_s=5)
    assert compute_score(name, "<<<a>>>", "a")["acc"] == 1.0
