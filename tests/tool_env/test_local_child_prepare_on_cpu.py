"""What the zygote prepares once for all its children (`childproc.Prepared`) must leave each
child exactly as the per-child set-up did: a fresh numpy generator, working threads, the
configured environment and default signal dispositions, pristine standard streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tool_env import SandboxConfig, create_sandbox

ROOT = str(Path(__file__).resolve().parents[2])


def _python(code: str) -> str:
    """Run `code` in a fresh single-threaded interpreter (Prepared changes process-wide state)."""
    proc = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {ROOT!r})\n{code}"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_numpy_state_is_found_and_each_reseed_is_a_fresh_full_state() -> None:
    out = _python(
        "import json, os, numpy, numpy.random\n"
        "from tool_env.local import childproc\n"
        "prepared = childproc.Prepared({'env': dict(os.environ)})\n"
        "states = []\n"
        "for _ in range(2):\n"
        "    prepared.reseed()\n"
        "    _, key, pos, has_gauss, _ = numpy.random.get_state()\n"
        "    states.append([key[:4].tolist(), int(pos), int(has_gauss), float(numpy.random.rand())])\n"
        "print(json.dumps([prepared.mt_state is not None, states]))"
    )
    found, (first, second) = json.loads(out)
    assert found, "numpy's MT19937 layout was not recognised: children fall back to the slow set_state"
    assert first[1] == second[1] == 624 and first[2] == second[2] == 0
    assert first[0] != second[0] and first[3] != second[3]


def test_warming_the_fork_hooks_leaves_threading_working_in_parent_and_forks() -> None:
    out = _python(
        "import os, threading\n"
        "from tool_env.local import childproc\n"
        "childproc._warm_fork_hooks()\n"
        "assert threading.current_thread() is threading.main_thread()\n"
        "box = []\n"
        "t = threading.Thread(target=box.append, args=(1,)); t.start(); t.join()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    t = threading.Thread(target=box.append, args=(2,)); t.start(); t.join()\n"
        "    os._exit(0 if box == [1, 2] and threading.active_count() == 1 else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(box, os.waitstatus_to_exitcode(status), threading.active_count())"
    )
    assert out == "[1] 0 1\n"


def test_children_get_default_signals_pristine_streams_and_the_configured_environment() -> None:
    code = (
        "import os, signal, sys\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler,"
        " all(signal.getsignal(s) == signal.SIG_DFL for s in (signal.SIGTERM, signal.SIGCHLD, signal.SIGALRM)),"
        " sys.stdout is sys.__stdout__, sys.stdin.read() == '', os.environ['HOME'] == os.getcwd())\n"
        "sys.stdout.write('unterminated')"
    )
    with create_sandbox(SandboxConfig(pool_size=1, preload_modules=("numpy", "numpy.random"))) as sandbox:
        outputs = [sandbox.run(code).stdout for _ in range(3)]
    assert outputs == ["True True True True True\nunterminated"] * 3
