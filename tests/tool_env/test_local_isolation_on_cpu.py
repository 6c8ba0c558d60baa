"""What a run can see, and what survives it: the local sandbox against a reward-hacking policy.

A policy optimised for reward will look for the answer (the training data, the checkout,
the trainer's home, a host service) and for traces of earlier runs (files, IPC objects,
keys, memory). Each test plants something on the host or in one run and proves that a run
cannot reach it. docs/sandbox.md's threat model cites these tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from host_health import skip_without_namespace

from tool_env import ExecutionResult, SandboxConfig, create_sandbox
from tool_env.local import isolation

HOST_VISIBLE_DIR = "/var/tmp"  # not /tmp: a sandbox has its own, so the old code would not see it either
ISOLATION_CONFIG = dict(pool_size=1, timeout_s=5.0, preload_modules=("math",), max_output_chars=4000, disk_mb=64)
CHECKOUT = Path(isolation.PACKAGE_ROOT)
LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"


@pytest.fixture(scope="module")
def namespace_sandbox():
    skip_without_namespace()
    with create_sandbox(SandboxConfig(isolation="namespace", **ISOLATION_CONFIG)) as sandbox:
        yield sandbox


@pytest.fixture()
def host_data(tmp_path_factory):
    """A world-readable training-data directory on the host, as verl's parquet files are."""
    root = Path(tempfile.mkdtemp(prefix="r1ci-data-", dir=HOST_VISIBLE_DIR))
    root.chmod(0o755)
    (root / "train.parquet").write_text("ground_truth=42")
    (root / "train.parquet").chmod(0o644)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def run_ok(sandbox, code: str) -> str:
    result = sandbox.run(code)
    assert result.ok, result
    return result.stdout


# ----- what a run can see -----------------------------------------------------------------
def probe_path(path: str) -> str:
    """Code printing how a path looks from inside: 'absent', 'denied', or what it read."""
    return (
        "import os\n"
        f"p = {path!r}\n"
        "try:\n"
        "    print(sorted(os.listdir(p)) if os.path.isdir(p) else open(p).read())\n"
        "except FileNotFoundError:\n"
        "    print('absent')\n"
        "except PermissionError:\n"
        "    print('denied')\n"
    )


def test_run_cannot_list_or_read_a_host_data_directory(namespace_sandbox, host_data) -> None:
    assert run_ok(namespace_sandbox, probe_path(str(host_data))) == "absent\n"
    assert run_ok(namespace_sandbox, probe_path(str(host_data / "train.parquet"))) == "absent\n"


def test_run_cannot_read_the_project_checkout(namespace_sandbox) -> None:
    assert (CHECKOUT / "pyproject.toml").is_file()
    assert run_ok(namespace_sandbox, probe_path(str(CHECKOUT / "pyproject.toml"))) == "absent\n"
    assert run_ok(namespace_sandbox, probe_path(str(CHECKOUT / "tests"))) == "absent\n"
    # The sandbox's own package is bound alone, read-only, away from the checkout.
    inside = run_ok(namespace_sandbox, probe_path(isolation.SANDBOX_PACKAGE_ROOT))
    assert inside == "['tool_env']\n"


def test_run_cannot_read_the_trainers_home() -> None:
    skip_without_namespace()
    home = Path.home()
    planted = home / f".r1ci-isolation-test-{os.getpid()}"
    planted.write_text("hf_token=secret")
    planted.chmod(0o644)
    try:
        with create_sandbox(SandboxConfig(isolation="namespace", **ISOLATION_CONFIG)) as sandbox:
            assert run_ok(sandbox, probe_path(str(planted))) in ("absent\n", "denied\n")
            listing = run_ok(sandbox, probe_path(str(home)))
            assert planted.name not in listing
    finally:
        planted.unlink()


def test_run_cannot_connect_to_a_host_unix_socket(namespace_sandbox) -> None:
    folder = Path(tempfile.mkdtemp(prefix="r1ci-sock-", dir=HOST_VISIBLE_DIR))
    folder.chmod(0o777)
    path = folder / "service.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    path.chmod(0o777)
    listener.listen(4)
    try:
        code = (
            "import socket\ns = socket.socket(socket.AF_UNIX)\ntry:\n"
            f"    s.connect({str(path)!r})\n    print('connected')\nexcept OSError as e:\n    print('blocked')"
        )
        assert run_ok(namespace_sandbox, code) == "blocked\n"
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_run_cannot_write_the_sandbox_root_or_dev(namespace_sandbox) -> None:
    code = (
        "for p in ('/planted', '/dev/planted', '/sandbox/planted'):\n"
        "    try:\n        open(p, 'w').write('x')\n        print('wrote', p)\n"
        "    except OSError:\n        pass\nprint('done')"
    )
    assert run_ok(namespace_sandbox, code) == "done\n"


def test_extra_ro_paths_are_visible_read_only(host_data) -> None:
    skip_without_namespace()
    config = SandboxConfig(isolation="namespace", extra_ro_paths=(str(host_data),), **ISOLATION_CONFIG)
    with create_sandbox(config) as sandbox:
        assert run_ok(sandbox, probe_path(str(host_data / "train.parquet"))) == "ground_truth=42\n"
        result = sandbox.run(f"open({str(host_data / 'new.txt')!r}, 'w')")
        assert result.error is not None and "Read-only" in result.error.message, result


def test_extra_ro_paths_must_be_absolute_and_exist() -> None:
    with pytest.raises(ValueError, match="extra_ro_paths"):
        SandboxConfig(extra_ro_paths=("data",))
    skip_without_namespace()
    with pytest.raises(ValueError, match="extra_ro_paths"):
        create_sandbox(SandboxConfig(isolation="namespace", extra_ro_paths=("/nonexistent/r1ci",), **ISOLATION_CONFIG))


def test_auto_refuses_to_fall_back_to_rlimit(monkeypatch) -> None:
    monkeypatch.setattr(isolation, "namespace_problem", lambda: "bwrap is not installed (test)")
    with pytest.raises(RuntimeError, match="isolation='rlimit'") as excinfo:
        isolation.resolve_isolation("auto")
    assert "bwrap is not installed (test)" in str(excinfo.value)
    assert isolation.resolve_isolation("rlimit") == "rlimit"  # asked for by name: allowed


# ----- nothing survives a run -----------------------------------------------------------------
PLANT_IPC = LIBC + (
    "IPC_CREAT = 0o1000\n"
    "shm = libc.shmget(0x5231, 4096, IPC_CREAT | 0o666)\n"
    "msg = libc.msgget(0x5232, IPC_CREAT | 0o666)\n"
    "sem = libc.semget(0x5233, 1, IPC_CREAT | 0o666)\n"
    "libc.mq_open.restype = ctypes.c_int\n"
    "mq = libc.mq_open(b'/r1ci-planted', os.O_CREAT | os.O_RDWR, 0o666, None)\n"
    "open('/dev/shm/r1ci-planted', 'w').write('secret')\n"
    "print(shm >= 0, msg >= 0, sem >= 0, mq >= 0)\n"
)
SEE_IPC = LIBC + (
    "found = []\n"
    "for kind in ('shm', 'msg', 'sem'):\n"
    "    rows = open(f'/proc/sysvipc/{kind}').read().splitlines()[1:]\n"
    "    found += [kind] * len(rows)\n"
    "if libc.mq_open(b'/r1ci-planted', os.O_RDONLY, 0, None) >= 0:\n"
    "    found.append('mqueue')\n"
    "if os.path.exists('/dev/shm/r1ci-planted'):\n"
    "    found.append('/dev/shm')\n"
    "print(found)\n"
)


def test_ipc_objects_of_one_run_are_gone_for_the_next(namespace_sandbox) -> None:
    assert run_ok(namespace_sandbox, PLANT_IPC) == "True True True True\n"
    assert run_ok(namespace_sandbox, SEE_IPC) == "[]\n"


def test_ipc_objects_of_a_closed_session_are_gone(namespace_sandbox) -> None:
    with namespace_sandbox.session(stateful=True) as session:
        assert session.run(PLANT_IPC).stdout == "True True True True\n"
        assert session.run(SEE_IPC).stdout == "['shm', 'msg', 'sem', 'mqueue', '/dev/shm']\n"  # within: kept
    assert run_ok(namespace_sandbox, SEE_IPC) == "[]\n"


PLANT_KEYS = LIBC + (
    "import platform\n"
    "ADD_KEY = {'x86_64': 248, 'aarch64': 217}[platform.machine()]\n"
    "made = [libc.syscall(ADD_KEY, b'user', b'r1ci-planted', b'secret', 6, ring) for ring in (-3, -4, -5)]\n"
    "print([m > 0 for m in made], ctypes.get_errno())\n"
)


def test_keys_planted_by_a_run_or_session_are_invisible_later(namespace_sandbox) -> None:
    result = namespace_sandbox.run(PLANT_KEYS)
    with namespace_sandbox.session(stateful=True) as session:
        session.run(PLANT_KEYS)
    assert "r1ci-planted" not in run_ok(namespace_sandbox, "print(open('/proc/keys').read())")
    assert result.stdout.startswith("[False, False, False]"), result  # keyring calls are refused


def test_deep_directory_tree_does_not_crash_the_next_run(namespace_sandbox) -> None:
    deep = "import os\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\nprint('deep')"
    assert run_ok(namespace_sandbox, deep) == "deep\n"
    after = namespace_sandbox.run("import os\nprint(os.listdir('.'), sorted(os.listdir('/tmp')))")
    # /tmp holds the work dir and, where the interpreter itself lives under /tmp (a CI checkout),
    # the read-only path back to it: nothing the deep run made
    kept = {path.split("/")[2] for path in isolation.interpreter_paths_to_keep() if path.startswith("/tmp/")}
    assert after.ok and after.stdout == f"[] {sorted({'work', *kept})}\n", after


FILES_TO_CREATE = 90_000  # under the default disk_inodes cap


def test_a_million_files_cost_the_next_caller_nothing() -> None:
    """The next caller's wait must not grow with what the previous run left behind."""
    skip_without_namespace()
    with create_sandbox(SandboxConfig(isolation="namespace", **ISOLATION_CONFIG)) as sandbox:
        plant = (
            f"import os\nfor i in range({FILES_TO_CREATE}):\n    os.close(os.open(str(i), os.O_CREAT | os.O_WRONLY))\n"
            "print(len(os.listdir('.')))"
        )
        started = time.monotonic()
        assert sandbox.run(plant, timeout_s=120).stdout == f"{FILES_TO_CREATE}\n"
        planting_s = time.monotonic() - started
        started = time.monotonic()
        after = sandbox.run("import os\nprint(os.listdir('.'))", timeout_s=1.0)
        waited_s = time.monotonic() - started
        assert after.ok and after.stdout == "[]\n", after
        # Walking 90k files takes about as long as creating them; discarding a tmpfs does not.
        assert waited_s < max(0.5, planting_s / 4), (waited_s, planting_s)


def test_inodes_of_a_run_are_capped(namespace_sandbox) -> None:
    code = (
        "import os\nn = 0\ntry:\n    while True:\n        os.close(os.open(str(n), os.O_CREAT | os.O_WRONLY))\n"
        "        n += 1\nexcept OSError as e:\n    print('capped', e.errno)"
    )
    assert run_ok(namespace_sandbox, code) == "capped 28\n"  # ENOSPC at disk_inodes, not a full host disk


# A run scanning every readable page of its own memory for two markers: one that was only in an
# earlier run's code, one that was only in its output. The markers are written byte by byte
# into one buffer (hex in this code, never the text itself), and hits inside that buffer or the
# read buffer are not counted.
SCAN_MEMORY = """
import ctypes, os
hexes = {hexes!r}
needles = []
for text in hexes:
    buf = bytearray(len(text) // 2)
    for i in range(len(buf)):
        buf[i] = int(text[2 * i:2 * i + 2], 16)
    needles.append(buf)
chunk = bytearray(1 << 20)
def span(buf):
    start = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
    return start, start + len(buf)
mine = [span(b) for b in needles] + [span(chunk)]
regions = []
for line in open('/proc/self/maps').read().splitlines():
    fields = line.split()
    if fields[1][0] == 'r' and not (len(fields) > 5 and fields[5] in ('[vvar]', '[vsyscall]', '[vvar_vclock]')):
        low, high = (int(x, 16) for x in fields[0].split('-'))
        regions.append((low, high))
mem = os.open('/proc/self/mem', os.O_RDONLY)
found = set()
view = memoryview(chunk)
for low, high in regions:
    address = low
    while address < high:
        size = min(len(chunk), high - address)
        try:
            got = os.preadv(mem, [view[:size]], address)
        except OSError:
            break
        for index, needle in enumerate(needles):
            at = chunk.find(needle, 0, got)
            while at != -1:
                hit = address + at
                if not any(start <= hit < end for start, end in mine):
                    found.add(index)
                at = chunk.find(needle, at + 1, got)
        address += max(got, 1) if got else high
print(sorted(found))
"""


def test_a_run_cannot_find_an_earlier_runs_code_or_output_in_its_memory(namespace_sandbox) -> None:
    in_code = "R1CI-CODE-" + os.urandom(8).hex()
    in_output = "R1CI-OUTPUT-" + os.urandom(8).hex()
    output_hex = in_output.encode().hex()
    # The output marker is built at run time: it is in the output, never in the code.
    planted = namespace_sandbox.run(f"secret = {in_code!r}\nprint(bytes.fromhex({output_hex!r}).decode())")
    assert planted.stdout == in_output + "\n"
    scan = SCAN_MEMORY.format(hexes=[in_code.encode().hex(), output_hex])
    assert run_ok(namespace_sandbox, scan) == "[]\n"


def test_rlimit_level_scrubs_earlier_runs_from_memory_too() -> None:
    with create_sandbox(SandboxConfig(isolation="rlimit", **ISOLATION_CONFIG)) as sandbox:
        in_code = "R1CI-CODE-" + os.urandom(8).hex()
        in_output = "R1CI-OUTPUT-" + os.urandom(8).hex()
        output_hex = in_output.encode().hex()
        sandbox.run(f"secret = {in_code!r}\nprint(bytes.fromhex({output_hex!r}).decode())")
        assert run_ok(sandbox, SCAN_MEMORY.format(hexes=[in_code.encode().hex(), output_hex])) == "[]\n"


def test_next_run_cannot_read_a_predecessor_that_is_still_exiting() -> None:
    """A big run takes a while to exit (its memory is freed first, its files after); the next run
    must not start while /proc/<pid>/root of the previous one still leads to its files."""
    skip_without_namespace()
    config = SandboxConfig(isolation="namespace", **{**ISOLATION_CONFIG, "memory_mb": 2048})
    with create_sandbox(config) as sandbox:
        marker = "R1CI-EXITING-" + os.urandom(8).hex()
        planted = sandbox.run(f"open('left.txt', 'w').write({marker!r})\nheap = b'x' * (600 << 20)\nprint('big')")
        assert planted.stdout == "big\n", planted
        look = (
            "import os\nfound = []\nfor pid in os.listdir('/proc'):\n    if pid.isdigit() and int(pid) not in (1, os.getpid()):\n"
            "        try:\n            found.append(open(f'/proc/{pid}/root/tmp/work/left.txt').read())\n"
            "        except OSError:\n            pass\nprint(found)"
        )
        assert run_ok(sandbox, look) == "[]\n"


def test_hidden_paths_are_masked_under_an_allowed_path(host_data) -> None:
    """A path under an allowed bind (a package's bundled answers in site-packages) stays hidden."""
    skip_without_namespace()
    answers = host_data / "answers"
    answers.mkdir()
    (answers / "gold.jsonl").write_text("secret-gold-answer")
    (host_data / "key.txt").write_text("secret-key")
    config = SandboxConfig(
        isolation="namespace", extra_ro_paths=(str(host_data),),
        hidden_paths=(str(answers), str(host_data / "key.txt")), **ISOLATION_CONFIG,
    )
    with create_sandbox(config) as sandbox:
        code = (
            "import os\n"
            f"root = {str(host_data)!r}\n"
            "print(open(os.path.join(root, 'train.parquet')).read())\n"
            "print(sorted(os.listdir(os.path.join(root, 'answers'))))\n"
            "try:\n    print(repr(open(os.path.join(root, 'key.txt')).read()))\nexcept OSError as e:\n    print('unreadable', e.errno)\n"
            "try:\n    open(os.path.join(root, 'answers', 'planted'), 'w')\nexcept OSError as e:\n    print('read-only', e.errno)\n"
        )
        out = run_ok(sandbox, code)
    assert out.splitlines() == ["ground_truth=42", "[]", "unreadable 13", "read-only 30"]
    assert "secret" not in out


def test_nested_hidden_paths_are_masked_by_the_outer_one(host_data) -> None:
    """A hidden directory and a file inside it (a package and its bundled data, both named)."""
    skip_without_namespace()
    package = host_data / "package"
    (package / "assets").mkdir(parents=True)
    (package / "assets" / "gold.jsonl").write_text("secret-gold-answer")
    config = SandboxConfig(
        isolation="namespace", extra_ro_paths=(str(host_data),),
        hidden_paths=(str(package / "assets" / "gold.jsonl"), str(package / "assets"), str(package)),
        **ISOLATION_CONFIG,
    )
    with create_sandbox(config) as sandbox:
        assert run_ok(sandbox, f"import os\nprint(os.listdir({str(package)!r}))") == "[]\n"


def test_hidden_paths_are_masked_through_a_symlinked_bound_root(host_data) -> None:
    """A root bound under its real name and an alias (a symlinked venv prefix) is two mounts:
    the mask must cover the hidden path under both."""
    skip_without_namespace()
    (host_data / "answers").mkdir()
    (host_data / "answers" / "gold.jsonl").write_text("secret-gold-answer")
    alias = Path(tempfile.mkdtemp(prefix="r1ci-alias-", dir=HOST_VISIBLE_DIR)) / "data"
    alias.parent.chmod(0o755)
    alias.symlink_to(host_data)
    try:
        config = SandboxConfig(
            isolation="namespace", extra_ro_paths=(str(alias), str(host_data)),
            hidden_paths=(str(alias / "answers"),), **ISOLATION_CONFIG,
        )
        with create_sandbox(config) as sandbox:
            code = f"import os\nprint(os.listdir({str(alias / 'answers')!r}), os.listdir({str(host_data / 'answers')!r}))"
            assert run_ok(sandbox, code) == "[] []\n"
    finally:
        shutil.rmtree(alias.parent, ignore_errors=True)


# ----- what concurrent runs in other workers can tell each other ----------------------------
SHARED_FILE = "import os\npath = os.__file__  # the same host inode in every worker\n"
LOCK_SIGNALLER = SHARED_FILE + (
    "import fcntl, time\nf = open(path, 'rb')\n"
    "try:\n    fcntl.flock(f, fcntl.LOCK_EX)\n    print('holding', flush=True)\n    time.sleep(3)\n"
    "except OSError as e:\n    print('refused', e.errno)\n"
)
LOCK_RECEIVER = SHARED_FILE + (
    "import fcntl, time\ntime.sleep(1)\nf = open(path, 'rb')\n"
    "try:\n    fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)\n    print('free')\n"
    "except BlockingIOError:\n    print('busy')\n"
)


def run_side_by_side(isolation: str, background: str, foreground: str) -> tuple[ExecutionResult, ExecutionResult]:
    """Two snippets at once in two workers of one pool, as two trajectories' runs are:
    (background's result, foreground's result); `background` starts first."""
    config = dict(ISOLATION_CONFIG, pool_size=2)
    with create_sandbox(SandboxConfig(isolation=isolation, **config)) as sandbox:
        assert sandbox.wait_until_warm(60)
        results: dict[str, object] = {}
        thread = threading.Thread(target=lambda: results.setdefault("background", sandbox.run(background)))
        thread.start()
        results["foreground"] = sandbox.run(foreground)
        thread.join()
    assert results["background"].ok and results["foreground"].ok, results
    return results["background"], results["foreground"]


def test_a_lock_on_a_shared_file_carries_no_signal_to_a_concurrent_run() -> None:
    """Two trajectories' runs, side by side in two workers, must not talk through a
    site-packages file: one holding an exclusive `flock` that the other probes is a channel."""
    skip_without_namespace()
    _, receiver = run_side_by_side("namespace", LOCK_SIGNALLER, LOCK_RECEIVER)
    assert receiver.stdout == "free\n", receiver


DNOTIFY_RECEIVER = SHARED_FILE + (  # F_NOTIFY: the directory notification inotify replaced
    "import fcntl, signal, time\nevents = []\nsignal.signal(signal.SIGRTMIN, lambda *_: events.append(1))\n"
    "d = os.open(os.path.dirname(path), os.O_RDONLY)\nfcntl.fcntl(d, fcntl.F_SETSIG, signal.SIGRTMIN)\n"
    "try:\n    fcntl.fcntl(d, fcntl.F_NOTIFY, fcntl.DN_ACCESS | fcntl.DN_MULTISHOT)\n"
    "except OSError as e:\n    print('refused', e.errno)\n"
    "time.sleep(2)\nprint('events', len(events))\n"
)
DNOTIFY_SIGNALLER = SHARED_FILE + "import time\ntime.sleep(0.7)\nfor _ in range(5):\n    open(path, 'rb').read()\nprint('read')\n"


def test_a_read_in_a_shared_directory_is_not_reported_to_a_concurrent_run() -> None:
    """Directory notification (`fcntl` `F_NOTIFY`) reopened the channel inotify had: a run in
    another worker was signalled whenever this one read a file of a shared directory."""
    skip_without_namespace()
    _, receiver = run_side_by_side("namespace", DNOTIFY_SIGNALLER, DNOTIFY_RECEIVER)
    assert receiver.stdout == "refused 1\nevents 0\n", receiver


WORKDIR_WRITER = "import time\nopen('answer.txt', 'w').write('42')\nprint('written', flush=True)\ntime.sleep(2.5)\n"
WORKDIR_READER = (  # another worker's run, another uid: its work dir is a sibling in the host's /tmp
    "import glob, os, time\ntime.sleep(1)\nfound = []\n"
    "for path in glob.glob('/tmp/tool_env-*/work'):\n"
    "    if os.path.realpath(path) == os.getcwd():\n        continue\n"
    "    try:\n        found += [open(os.path.join(path, name)).read() for name in os.listdir(path)]\n"
    "    except OSError:\n        pass\n"
    "print(found)\n"
)


def test_rlimit_level_runs_cannot_read_each_others_work_dirs() -> None:
    """At the rlimit level work dirs are host directories; a concurrent run in another worker
    could list one and read what that run wrote (its answer) without the writer's help."""
    if os.geteuid() != 0:
        pytest.skip("without root every run shares the caller's uid (documented)")
    _, reader = run_side_by_side("rlimit", WORKDIR_WRITER, WORKDIR_READER)
    assert reader.stdout == "[]\n", reader
