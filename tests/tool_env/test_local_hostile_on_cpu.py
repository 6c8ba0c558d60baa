"""Hostile snippets against the local sandbox: each must be contained, and the host healthy after.

Every case asserts (a) what the snippet was allowed to achieve, and (b) host health: no
leftover process or zombie, no leaked fd in the test process, and the sandbox still serving.
Cases marked ``namespace_only`` check guarantees the weaker ``rlimit`` mode does not make
(network, private /tmp); docs/sandbox.md lists them.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from host_health import assert_healthy, baseline, skip_without_namespace

from tool_env import ExecutionResult, SandboxConfig, create_sandbox
from tool_env.result import is_infra_failure

HOST_VISIBLE_DIR = "/var/tmp"
SECRET_NAME = "R1CI_FAKE_API_KEY"
SECRET_VALUE = "sk-fake-secret-0123456789"
HOSTILE_CONFIG = dict(
    pool_size=2,
    timeout_s=1.0,
    max_output_chars=4000,
    memory_mb=512,
    max_processes=32,
    max_file_mb=16,
    max_open_files=64,
    disk_mb=32,
    session_ttl_s=60,
)


@dataclass
class Ctx:
    level: str
    private_file: Path  # root-only host file: must stay unreadable
    host_dir: Path  # a host directory the code must not write into
    port: int  # a TCP listener on the host's loopback

    def fill(self, code: str) -> str:
        return (
            code.replace("@PRIVATE@", str(self.private_file))
            .replace("@HOSTDIR@", str(self.host_dir))
            .replace("@PORT@", str(self.port))
            .replace("@SECRET_NAME@", SECRET_NAME)
            .replace("@TEST_PID@", str(os.getpid()))
        )


Check = Callable[[ExecutionResult, Ctx], None]


@dataclass
class Case:
    name: str
    code: str
    check: Check
    namespace_only: bool = False
    timeout_s: float | None = None  # for cases that end by themselves but may be slow on a loaded machine


def timed_out(r: ExecutionResult, ctx: Ctx) -> None:
    assert r.timed_out and r.error.name == "TimeoutError", r


def error_named(*names: str) -> Check:
    def check(r: ExecutionResult, ctx: Ctx) -> None:
        assert r.error is not None and r.error.name in names, r

    return check


def stdout_is(expected: str) -> Check:
    def check(r: ExecutionResult, ctx: Ctx) -> None:
        assert r.stdout == expected, r

    return check


def crashed(r: ExecutionResult, ctx: Ctx) -> None:
    assert r.error is not None and r.error.name == "WorkerCrashed" and not r.timed_out, r


def no_secret(r: ExecutionResult, ctx: Ctx) -> None:
    blob = r.stdout + r.stderr + (r.error.message if r.error else "")
    assert SECRET_VALUE not in blob, r


def fork_limited(r: ExecutionResult, ctx: Ctx) -> None:
    assert r.stdout.startswith("limited"), r
    forks = int(r.stdout.split()[1])
    assert forks < HOSTILE_CONFIG["max_processes"], r


def bounded_output(r: ExecutionResult, ctx: Ctx) -> None:
    limit = HOSTILE_CONFIG["max_output_chars"]
    assert len(r.stdout) <= limit + 100 and len(r.stderr) <= limit + 100, (len(r.stdout), len(r.stderr))
    assert r.truncated or r.error is not None, r


def host_dir_untouched(r: ExecutionResult, ctx: Ctx) -> None:
    allowed = ("PermissionError", "OSError") + (("FileNotFoundError",) if ctx.level == "namespace" else ())
    assert r.error is not None and r.error.name in allowed, r
    assert list(ctx.host_dir.iterdir()) == [], r


def private_file_unreadable(r: ExecutionResult, ctx: Ctx) -> None:
    """rlimit: the private uid may not read it; namespace: the file does not even exist inside."""
    expected = "FileNotFoundError" if ctx.level == "namespace" else "PermissionError"
    assert r.error is not None and r.error.name == expected, r


def host_tmp_untouched(r: ExecutionResult, ctx: Ctx) -> None:
    assert r.stdout == "wrote\n", r  # the sandbox's own /tmp is writable...
    assert not os.path.exists("/tmp/r1ci_escape_marker")  # ...and private


def succeeded(r: ExecutionResult, ctx: Ctx) -> None:
    assert r.ok, r


def stdout_starts(prefix: str) -> Check:
    def check(r: ExecutionResult, ctx: Ctx) -> None:
        assert r.stdout.startswith(prefix), r

    return check


def stdout_ends(suffix: str) -> Check:
    def check(r: ExecutionResult, ctx: Ctx) -> None:
        assert r.stdout.endswith(suffix), r

    return check


def returned_or_timed_out(r: ExecutionResult, ctx: Ctx) -> None:
    assert r.timed_out or r.stdout.endswith("returned\n"), r


def bounded_error(r: ExecutionResult, ctx: Ctx) -> None:
    limit = HOSTILE_CONFIG["max_output_chars"] + 100
    assert r.error.name == "ValueError" and r.stderr_truncated, r
    assert len(r.error.message) <= limit and len(r.error.traceback) <= limit and len(r.stderr) <= limit


FORGE_STATUS = (  # writes `frame` (a Python expression: text or a JSON-able object) as the status frame
    "import json, os, struct, time\nframe = {frame}\n"
    "body = (frame if isinstance(frame, str) else json.dumps(frame)).encode()\n"
    "os.write(4, struct.pack('>I', len(body)) + body)\ntime.sleep(5)"
)


def encodable_error(r: ExecutionResult) -> None:
    assert r.error.name == "ValueError" and r.error.message == "m\\udcff", r
    assert r.error.traceback.strip() in r.stderr, r  # the same text, so the loop shows it once
    (r.stdout + r.stderr + r.error.message + r.error.traceback).encode("utf-8")


def bounded_forged_error(r: ExecutionResult) -> None:
    assert r.error is not None and r.error.name == "E" and r.exit_code == 1, r
    assert len(r.error.message) <= HOSTILE_CONFIG["max_output_chars"] + 100, len(r.error.message)


CASES = [
    # ----- processes ------------------------------------------------------------------
    Case("fork_bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
         timed_out),
    Case("fork_bomb_hits_process_limit",
         "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(60)\n"
         "            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('limited', n, e.errno)",
         fork_limited, timeout_s=20),
    Case("shell_fork_bomb", "import os\nos.system(':(){ :|:& };:')\nprint('returned')", returned_or_timed_out),
    Case("thread_storm",
         "import threading, time\nts = []\ntry:\n    for _ in range(10_000):\n"
         "        t = threading.Thread(target=time.sleep, args=(30,), daemon=True)\n        t.start()\n"
         "        ts.append(t)\nexcept RuntimeError as e:\n    print('limited', len(ts))",
         stdout_starts("limited")),
    Case("setsid_orphan_outlives_run",
         "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(120)\n"
         "    os._exit(0)\nprint('parent done')",
         stdout_is("parent done\n")),
    Case("setsid_orphan_outlives_timeout",
         "import os, time, signal\nif os.fork() == 0:\n    os.setsid()\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "    if os.fork() == 0:\n        time.sleep(120)\n    os._exit(0)\ntime.sleep(120)",
         timed_out),
    Case("background_subprocess", "import subprocess\nsubprocess.Popen(['sleep', '120'])\nprint('spawned')",
         stdout_is("spawned\n")),
    Case("nohup_shell_background", "import os\nos.system('nohup sleep 120 >/dev/null 2>&1 &')\nprint('ok')",
         stdout_is("ok\n")),
    Case("kill_parent", "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError as e:\n"
         "    print('denied')\nprint('after')", stdout_ends("after\n")),
    Case("stop_parent", "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGSTOP)\nexcept OSError:\n    pass\n"
         "print('after')", stdout_ends("after\n")),
    Case("kill_everything", "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass",
         succeeded),
    Case("kill_test_process", "import os, signal\ntry:\n    os.kill(@TEST_PID@, signal.SIGKILL)\nexcept OSError as e:\n"
         "    print('denied')", stdout_is("denied\n")),
    Case("ignore_sigterm_busy", "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass",
         timed_out),
    Case("stop_self", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)", timed_out),
    Case("sleep_past_timeout", "import time\ntime.sleep(3600)", timed_out),
    Case("busy_loop", "while True:\n    pass", timed_out),
    Case("non_daemon_thread_never_ends", "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,)).start()",
         timed_out),
    Case("atexit_hangs", "import atexit, time\natexit.register(time.sleep, 3600)\nprint('main done')", timed_out),
    # ----- memory, cpu, recursion -----------------------------------------------------
    Case("memory_bomb", "x = bytearray(10 ** 11)", error_named("MemoryError")),
    Case("memory_growth",  # lazily zeroed pages: the address-space limit, not the timeout, must stop it
         "import numpy as np\nchunks = []\nwhile True:\n    chunks.append(np.zeros(10 ** 8, dtype=np.uint8))",
         error_named("MemoryError", "_ArrayMemoryError")),
    Case("string_bomb", "s = 'a' * 10 ** 10", error_named("MemoryError")),
    Case("numpy_bomb", "import numpy as np\na = np.ones((10 ** 5, 10 ** 5))", error_named("MemoryError", "_ArrayMemoryError")),
    Case("recursion_bomb", "def f():\n    return f()\nf()", error_named("RecursionError")),
    Case("c_stack_overflow", "import sys\nsys.setrecursionlimit(10 ** 8)\ndef f(n):\n    return f(n + 1)\nf(0)",
         error_named("WorkerCrashed", "RecursionError", "MemoryError", "TimeoutError")),
    Case("ctypes_segfault", "import ctypes\nctypes.string_at(0)", crashed),
    Case("os_exit", "import os\nprint('bye', flush=True)\nos._exit(3)",
         lambda r, c: (crashed(r, c), stdout_is("bye\n")(r, c)) and None),
    Case("abort", "import os\nos.abort()", crashed),
    Case("raise_cpu_limit", "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (10 ** 6, 10 ** 6))",
         error_named("ValueError", "PermissionError", "OSError")),
    Case("raise_process_limit", "import resource\nr = resource.RLIM_INFINITY\nresource.setrlimit(resource.RLIMIT_NPROC, (r, r))",
         error_named("ValueError", "PermissionError", "OSError")),
    # ----- output -----------------------------------------------------------------------
    Case("huge_single_print", "print('x' * 10 ** 8)", bounded_output),
    Case("endless_printing", "while True:\n    print('spam ' * 100)", bounded_output),
    Case("stderr_flood", "import sys\nwhile True:\n    sys.stderr.write('e' * 10000)", bounded_output),
    Case("lone_surrogate_in_error",  # JSON carries it, UTF-8 cannot: a tokenizer raised on it
         "raise ValueError('m\\udcff')", lambda r, c: encodable_error(r)),
    Case("huge_exception_message", "raise ValueError('v' * 10 ** 7)", bounded_error),
    Case("binary_garbage_output", "import sys\nsys.stdout.buffer.write(bytes(range(256)) * 100)",
         succeeded),
    Case("close_own_stdout", "import os\nos.close(1)\nos.close(2)\nprint('lost')", error_named("OSError")),
    Case("corrupt_status_channel", "import os\nos.write(4, b'\\xff' * 64)", crashed),
    Case("oversized_status_frame",  # a frame past the status cap, written straight to the pipe
         "import os, struct\nos.write(4, struct.pack('>I', 40 << 20))\nos.write(4, b'{' * (2 << 20))", crashed),
    Case("close_status_channel", "import os\nos.close(4)\nprint('x')", crashed),
    # A frame the run forges itself is untrusted: a wrong shape must not raise in the caller (and
    # leak the worker), and its text is capped like any other.
    Case("forged_status_of_wrong_shape", FORGE_STATUS.format(frame='{"error": "x", "exit_code": 0}'), crashed),
    Case("forged_status_without_name", FORGE_STATUS.format(frame='{"error": {"message": "m"}, "exit_code": 0}'), crashed),
    Case("forged_status_of_wrong_types",
         FORGE_STATUS.format(frame='{"error": {"name": 1, "message": [2], "traceback": ""}, "exit_code": "0"}'), crashed),
    Case("forged_status_nested_too_deep", FORGE_STATUS.format(frame="'[' * 200_000"), crashed),
    Case("forged_status_with_huge_message",
         FORGE_STATUS.format(frame='{"error": {"name": "E", "message": "m" * 10 ** 6, "traceback": ""}, "exit_code": 1}'),
         lambda r, c: bounded_forged_error(r)),
    Case("read_code_channel", "import os\nos.read(3, 10)", timed_out),
    Case("stdin_reads", "import sys\nprint(repr(sys.stdin.read()), repr(sys.stdin.readline()))\ninput()",
         error_named("EOFError")),
    # ----- filesystem -----------------------------------------------------------------
    Case("read_private_host_file", "print(open('@PRIVATE@').read())", private_file_unreadable),
    Case("read_shadow", "print(open('/etc/shadow').read())", error_named("PermissionError", "FileNotFoundError")),
    Case("write_system_dir", "open('/usr/evil.txt', 'w').write('x')", error_named("PermissionError", "OSError")),
    Case("write_host_dir", "open('@HOSTDIR@/evil.txt', 'w').write('x')", host_dir_untouched),
    Case("write_host_tmp", "open('/tmp/r1ci_escape_marker', 'w').write('x')\nprint('wrote')", host_tmp_untouched,
         namespace_only=True),
    Case("big_file", "open('big.bin', 'wb').write(b'0' * 10 ** 9)", error_named("OSError", "MemoryError")),
    Case("disk_fill",
         "import os\ntry:\n    for i in range(40):\n        with open(f'f{i}', 'wb') as f:\n"
         "            f.write(os.urandom(10 ** 6) * 10)\nexcept OSError as e:\n    print('full', e.errno)",
         stdout_is("full 28\n"), namespace_only=True),
    Case("fd_exhaustion",
         "fs = []\ntry:\n    while True:\n        fs.append(open('/dev/null'))\nexcept OSError as e:\n    print('limited', e.errno)",
         stdout_is("limited 24\n")),
    Case("chmod_maze_left_behind",
         "import os\nos.makedirs('a/b/c')\nopen('a/b/c/f', 'w').write('x')\nos.chmod('a/b/c', 0)\nos.chmod('a/b', 0)\nos.chmod('a', 0)",
         succeeded),
    Case("deep_tree_left_behind",  # deeper than the recursion limit and PATH_MAX: the wipe must not crash
         "import os\nfor _ in range(2000):\n    os.mkdir('d')\n    os.chdir('d')\nopen('f', 'w').close()\nprint('deep')",
         stdout_is("deep\n"), timeout_s=20),
    # ----- identity, privileges, environment --------------------------------------------
    Case("env_secret", "import os\nprint(os.environ.get('@SECRET_NAME@'))\nprint(dict(os.environ))", no_secret),
    Case("proc_environ_scan",
         "import os\nfor p in os.listdir('/proc'):\n    try:\n        print(open(f'/proc/{p}/environ', 'rb').read())\n"
         "    except Exception:\n        pass", no_secret),
    Case("setuid_root", "import os\nos.setuid(0)", error_named("PermissionError", "OSError")),
    Case("su_to_root", "import shutil, subprocess\nsu = shutil.which('su')\n"
         "print(su is None or subprocess.run([su, '-c', 'id'], capture_output=True).returncode != 0)",
         stdout_is("True\n"), timeout_s=10),  # PAM sleeps a few seconds after a failed attempt
    Case("no_new_privs",
         "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('NoNewPrivs')][0])", stdout_is("1\n")),
    Case("no_capabilities",  # the zygote holds CAP_SYS_ADMIN in its sandbox: a run must hold nothing
         "import re\nstatus = open('/proc/self/status').read()\n"
         "print({k: int(v, 16) for k, v in re.findall(r'^(Cap(?:Inh|Prm|Eff|Amb)):\\s*([0-9a-f]+)$', status, re.M)})",
         stdout_is("{'CapInh': 0, 'CapPrm': 0, 'CapEff': 0, 'CapAmb': 0}\n")),
    Case("not_root", "import os\nprint(os.getuid() != 0 and os.geteuid() != 0)", stdout_is("True\n")),
    Case("mount_tmpfs", "import subprocess\nr = subprocess.run(['mount', '-t', 'tmpfs', 'x', '/mnt'], capture_output=True)\n"
         "print(r.returncode != 0)", stdout_is("True\n")),
    Case("nested_user_namespace",  # its creator may mount a tmpfs with no cap and fill the host's memory
         "import ctypes, os, platform, subprocess\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "mount = subprocess.run(['unshare', '-Urm', 'mount', '-t', 'tmpfs', 'x', '/tmp'], capture_output=True)\n"
         "clone = {'x86_64': 56, 'aarch64': 220}[platform.machine()]\n"
         "pid = libc.syscall(clone, 0x10000000 | 17, 0, 0, 0, 0)\nif pid == 0:\n    os._exit(0)\n"
         "print(libc.unshare(0x10000000), pid, mount.returncode != 0, subprocess.run(['true']).returncode)",
         stdout_is("-1 -1 True 0\n")),
    Case("memfd_past_memory_limit",  # unmapped shared memory is outside RLIMIT_AS: 768 MB against 512
         "import os\nheld = 0\ntry:\n    for _ in range(48):\n        fd = os.memfd_create('m')\n"
         "        os.write(fd, bytes(16 << 20))\n        held += 16\nexcept OSError:\n    pass\nprint(held)",
         stdout_is("0\n")),
    Case("sysv_shm_past_memory_limit",  # attach, fill, detach: segments stay, outside RLIMIT_AS
         "import ctypes\nlibc = ctypes.CDLL(None)\n"
         "print(libc.shmget(0, 16 << 20, 0o600) < 0, libc.shmget(0, 4096, 0o600) >= 0)", stdout_is("True True\n")),
    Case("i386_system_calls",  # another ABI's numbers must not dodge the seccomp filter
         "import ctypes, mmap, os, platform\nif platform.machine() != 'x86_64':\n    print(-1)\n    raise SystemExit\n"
         "code = bytes.fromhex('b814000000cd80c3')  # mov eax, 20 (i386 getpid); int 0x80; ret\n"
         "page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\npage.write(code)\n"
         "call = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))\n"
         "r, w = os.pipe()\nif os.fork() == 0:\n    os.write(w, str(call()).encode())\n    os._exit(0)\n"
         "os.close(w)\nos.wait()\nprint(os.read(r, 32).decode() or -1)  # no i386 ABI in this kernel: nothing to dodge",
         stdout_is("-1\n")),
    Case("watch_shared_files",  # the open and access events of files other workers' runs import
         "import ctypes\nlibc = ctypes.CDLL(None)\nprint(libc.inotify_init1(0), libc.fanotify_init(0x200, 0))",
         stdout_is("-1 -1\n")),
    Case("exclusive_lock_on_a_shared_file",  # a signal a concurrent run in another worker could probe
         "import fcntl, os\nf = open(os.__file__, 'rb')\nfcntl.flock(f, fcntl.LOCK_SH)\nfcntl.flock(f, fcntl.LOCK_UN)\n"
         "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n    print('locked')\n"
         "except OSError as e:\n    print(os.strerror(e.errno))", stdout_is("No locks available\n")),
    Case("directory_notification",  # inotify's predecessor, through fcntl: reads of shared files
         "import fcntl, os\nd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)\n"
         "try:\n    fcntl.fcntl(d, fcntl.F_NOTIFY, fcntl.DN_ACCESS)\nexcept OSError as e:\n    print(os.strerror(e.errno))",
         stdout_is("Operation not permitted\n")),
    Case("io_uring_and_userfaultfd",  # kernel attack surface with no use in model code: absent
         "import ctypes, errno, platform\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "params = ctypes.create_string_buffer(120)\n"
         "uffd = {'x86_64': 323, 'aarch64': 282}[platform.machine()]\n"
         "print([(libc.syscall(nr, *args), errno.errorcode[ctypes.get_errno()]) for nr, args in "
         "((425, (8, params)), (426, (0, 0, 0, 0)), (427, (0, 0, 0, 0)), (uffd, (0,)))])",
         stdout_is("[(-1, 'ENOSYS'), (-1, 'ENOSYS'), (-1, 'ENOSYS'), (-1, 'ENOSYS')]\n")),
    Case("sqlite_wal",  # what the filter leaves: process-associated locks and F_GETLK (WAL needs both)
         "import sqlite3\nc = sqlite3.connect('t.db')\nc.execute('pragma journal_mode=wal')\n"
         "c.execute('create table t(x)')\nc.execute('insert into t values (41)')\nc.commit()\n"
         "print(sqlite3.connect('t.db').execute('select x + 1 from t').fetchone()[0])",
         stdout_is("42\n")),
    # ----- network ----------------------------------------------------------------------
    Case("connect_host_loopback",
         "import socket\ntry:\n    socket.create_connection(('127.0.0.1', @PORT@), timeout=1)\n    print('connected')\n"
         "except OSError as e:\n    print('blocked')", stdout_is("blocked\n"), namespace_only=True),
    Case("connect_internet",
         "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n    print('connected')\n"
         "except OSError as e:\n    print('blocked')", stdout_is("blocked\n"), namespace_only=True),
]

LEVELS = ["namespace", "rlimit"]


@pytest.fixture(scope="module", params=LEVELS)
def hostile(request):
    level = request.param
    if level == "namespace":
        skip_without_namespace()
    # Not under /tmp: a namespace sandbox has its own /tmp, and these files must be visible to it.
    root = Path(tempfile.mkdtemp(prefix=f"r1ci-hostile-{level}-", dir=HOST_VISIBLE_DIR))
    private = root / "private.txt"
    private.write_text("host-only")
    private.chmod(stat.S_IRUSR | stat.S_IWUSR)
    host_dir = root / "host_dir"
    host_dir.mkdir()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    os.environ[SECRET_NAME] = SECRET_VALUE  # present in the parent: must never reach the child
    try:
        with create_sandbox(SandboxConfig(isolation=level, **HOSTILE_CONFIG)) as sandbox:
            assert sandbox.wait_until_warm(60), "the worker pool never filled"
            yield sandbox, Ctx(level, private, host_dir, listener.getsockname()[1]), baseline()
    finally:
        os.environ.pop(SECRET_NAME, None)
        listener.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_snippet_is_contained(hostile, case: Case) -> None:
    sandbox, ctx, base = hostile
    if case.namespace_only and ctx.level != "namespace":
        pytest.skip("rlimit mode does not isolate the network or /tmp (documented)")
    started = time.monotonic()
    timeout = case.timeout_s or HOSTILE_CONFIG["timeout_s"]
    result = sandbox.run(ctx.fill(case.code), timeout_s=timeout)
    assert time.monotonic() - started < timeout + 15, "the call itself must not hang"
    case.check(result, ctx)
    assert_healthy(base)
    for _ in range(HOSTILE_CONFIG["pool_size"]):  # every worker serves, from an empty work dir
        assert sandbox.run("import os\nprint(os.listdir('.'))").stdout == "[]\n"


def test_hostile_suite_is_big_enough() -> None:
    assert len(CASES) >= 40


def test_kill_everything_does_not_touch_a_concurrent_run(hostile) -> None:
    """kill(-1) from one run must not reach another worker's run (pid namespace / private uid)."""
    sandbox, ctx, base = hostile
    results = {}
    victim = threading.Thread(target=lambda: results.setdefault("victim", sandbox.run(
        "import time\ntime.sleep(1.5)\nprint('survived')", timeout_s=10)))
    victim.start()
    time.sleep(0.5)
    sandbox.run("import os, signal\nfor _ in range(3):\n    try:\n        os.kill(-1, signal.SIGKILL)\n"
                "    except OSError:\n        pass")
    victim.join()
    assert results["victim"].stdout == "survived\n", results["victim"]
    assert_healthy(base)


def test_zygote_killed_from_outside_mid_run_is_reported_and_replaced(hostile) -> None:
    sandbox, ctx, base = hostile
    with sandbox.session(stateful=True) as session:
        session.run("x = 1")
        worker = session._worker
        killer = threading.Timer(0.5, lambda: os.killpg(worker.proc.pid, 9))
        killer.start()
        result = session.run("import time\ntime.sleep(5)")
        killer.join()
        assert result.error is not None and result.error.name == "WorkerCrashed", result
        assert is_infra_failure(result), result  # the sandbox died, not the code: counted against the run
        after = session.run("print('x' in globals())")
        assert after.stdout == "False\n" and after.extra.get("session_restarted") is True
    assert sandbox.run("print('alive')").stdout == "alive\n"
    assert_healthy(base)


def test_fork_bomb_in_one_worker_does_not_starve_another(hostile) -> None:
    """RLIMIT_NPROC counts per uid: each worker has its own, so one run's bomb is its own problem."""
    sandbox, ctx, base = hostile
    bomb = ("import os, time\nwhile True:\n    try:\n        if os.fork() == 0:\n            time.sleep(60)\n"
            "            os._exit(0)\n    except OSError:\n        time.sleep(0.01)")
    results = {}
    thread = threading.Thread(target=lambda: results.setdefault("bomb", sandbox.run(bomb, timeout_s=3)))
    thread.start()
    time.sleep(1.0)  # the bomb now holds every process its worker may have
    other = sandbox.run("import subprocess\nprint(subprocess.run(['true']).returncode)", timeout_s=10)
    thread.join()
    assert results["bomb"].timed_out
    assert other.stdout == "0\n", other
    assert_healthy(base)
