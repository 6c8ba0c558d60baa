"""The zygote's cheaper fork (`tool_env.local.fastfork`) skips CPython's after-fork work only
where that work is a no-op, and leaves each child as `os.fork` would: its own `random`
entropy, a working `threading`, a working interpreter. Anything it does not recognise keeps
`os.fork`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tool_env import SandboxConfig, create_sandbox

ROOT = str(Path(__file__).resolve().parents[2])


def _python(code: str) -> dict:
    """Run `code` in a fresh interpreter (the decision depends on the whole process); it prints JSON."""
    proc = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {ROOT!r})\n{code}"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    *before, last = proc.stdout.splitlines()
    return {**json.loads(last), "printed_before": before}


CHILD_REPORT = """
import json, os, random, threading
from tool_env.local import fastfork
with fastfork.HookRecorder() as recorder:
    import logging, concurrent.futures.thread  # stdlib modules whose hooks are known
allowed, why = fastfork.raw_fork_allowed(recorder)
generators = fastfork.random_generators(recorder)
parent_next = random.getstate()
reports = []
for _ in range(2):
    r, w = os.pipe()
    pid = fastfork.fork()
    if pid == 0:
        os.close(r)
        fastfork.reseed_random(generators)
        box = []
        worker = threading.Thread(target=box.append, args=(os.getpid(),))
        worker.start(); worker.join()
        report = {"random": random.random(), "thread_ran": box == [os.getpid()],
                  "main": threading.current_thread() is threading.main_thread(),
                  "threads": threading.active_count(), "gauss": random.gauss(0, 1)}
        os.write(w, json.dumps(report).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    reports.append({**json.loads(data), "status": os.waitstatus_to_exitcode(status), "pid": pid})
print(json.dumps({"allowed": allowed, "why": why, "parent_unchanged": random.getstate() == parent_next,
                  "parent_pid": os.getpid(), "children": reports}))
"""


def test_children_of_the_libc_fork_get_fresh_entropy_and_working_threads() -> None:
    out = _python(CHILD_REPORT)
    assert out["allowed"], out["why"]
    first, second = out["children"]
    assert first["status"] == second["status"] == 0
    assert first["random"] != second["random"] and first["gauss"] != second["gauss"]
    assert first["thread_ran"] and second["thread_ran"] and first["main"] and first["threads"] == 1
    assert out["parent_unchanged"] and out["parent_pid"] not in (first["pid"], second["pid"])


@pytest.mark.parametrize(
    "setup, refusal",
    [
        ("with fastfork.HookRecorder() as recorder:\n    os.register_at_fork(after_in_child=lambda: None)",
         "unknown after-fork hooks"),
        ("import threading, time\nwith fastfork.HookRecorder() as recorder:\n    pass\n"
         "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()", "2 threads"),
    ],
    ids=["preload registers its own hook", "a thread is running"],
)
def test_anything_unrecognised_keeps_os_fork(setup: str, refusal: str) -> None:
    out = _python(
        "import json, os\nfrom tool_env.local import fastfork\n" + setup + "\n"
        "allowed, why = fastfork.raw_fork_allowed(recorder)\n"
        "print(json.dumps({'allowed': allowed, 'why': why}))"
    )
    assert not out["allowed"] and refusal in out["why"]


def test_recorder_restores_register_at_fork_and_hooks_still_run_under_os_fork() -> None:
    out = _python(
        "import json, os\nfrom tool_env.local import fastfork\n"
        "original = os.register_at_fork\n"
        "with fastfork.HookRecorder() as recorder:\n"
        "    os.register_at_fork(after_in_child=lambda: print('hook ran', flush=True))\n"
        "restored = os.register_at_fork is original\n"
        "pid = os.fork()\n"
        "if pid == 0:\n    os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "print(json.dumps({'restored': restored, 'recorded': len(recorder.after_in_child)}))"
    )
    assert out == {"restored": True, "recorded": 1, "printed_before": ["hook ran"]}


def test_the_default_sandbox_forks_runs_without_after_fork_work() -> None:
    """The profile's saving depends on it: a default config must not fall back silently."""
    with create_sandbox(SandboxConfig(pool_size=1)) as sandbox:
        assert sandbox.fork_method.startswith("libc fork"), sandbox.fork_method
        values = {sandbox.run("import random, numpy\nprint(random.random(), numpy.random.rand())").stdout
                  for _ in range(3)}
    assert len(values) == 3
