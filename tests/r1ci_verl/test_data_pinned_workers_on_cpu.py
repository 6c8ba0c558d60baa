"""The build's worker processes: a pinned string-hash seed, a clean results stream, errors that surface."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from r1ci_verl.data.pinned_workers import PINNED_HASH_SEED, PinnedHashPool, WorkerDied


def pinned_hash(text: str) -> int:
    code = f"print(hash({text!r}))"
    env = {**os.environ, "PYTHONHASHSEED": PINNED_HASH_SEED}
    return int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)


def test_workers_hash_strings_with_the_pinned_seed_whatever_this_process_uses():
    with PinnedHashPool(2) as pool:
        hashes = [pool.submit(hash, word).result(timeout=60) for word in ("alpha", "beta", "alpha")]
    assert hashes == [pinned_hash("alpha"), pinned_hash("beta"), pinned_hash("alpha")]


def test_a_jobs_prints_do_not_corrupt_the_results_and_errors_keep_their_type():
    with PinnedHashPool(1) as pool:
        assert pool.submit(print, "noise on stdout").result(timeout=60) is None
        with pytest.raises(ValueError, match="invalid literal"):
            pool.submit(int, "x").result(timeout=60)
        assert pool.submit(sum, [1, 2, 3]).result(timeout=60) == 6  # the worker survives an error


def test_a_worker_that_dies_is_reported_not_waited_for():
    with PinnedHashPool(1) as pool:
        with pytest.raises(WorkerDied, match="exited"):
            pool.submit(os._exit, 3).result(timeout=60)


def test_a_console_script_without_a_main_guard_is_not_run_again(tmp_path):
    """multiprocessing's spawn would re-run such a script in every worker."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from r1ci_verl.data.pinned_workers import PinnedHashPool\n"
        "print('main ran')\n"
        "with PinnedHashPool(1) as pool:\n"
        "    print(pool.submit(len, 'four').result(timeout=60))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["main ran", "4"]
