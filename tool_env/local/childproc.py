"""What a forked child does: lock itself down once, then run snippets like `python script.py`.

Lock-down happens right after the fork, before any code is known (that is what makes a
pre-forked child cheap to use): own session, parent-death signal, private uid, fresh user,
mount and IPC namespaces with new tmpfs scratch (namespace level), no new privileges, no
keyring system calls and no new user namespaces (seccomp), rlimits, clean environment,
private work dir, stdin at /dev/null. Snippets run
as ``__main__`` with their own globals; tracebacks go to stderr exactly as Python prints
them (the model must read them), and a small status record goes to the zygote afterwards.
"""

from __future__ import annotations

import atexit
import ctypes
import io
import linecache
import os
import resource
import signal
import sys
import threading
import traceback
import types
from typing import Any

from tool_env.local import fastfork
from tool_env.local.run_namespaces import enter_fresh_namespaces
from tool_env.local.seccomp import install_run_filter
from tool_env.local.wire import read_code, write_frame
from tool_env.truncate import truncate_text

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
CODE_FD = 3
STATUS_FD = 4
SNIPPET_FILENAME = "<string>"  # what `python -c` shows in tracebacks
EXIT_SETUP_FAILED = 71
MT19937_STATE_WORDS = 624
MT19937_STATE_BYTES = 4 * MT19937_STATE_WORDS

_libc = ctypes.CDLL(None, use_errno=True)
# Function pointers are looked up (and cached on `_libc`) here, in the zygote: a lookup in each
# child would allocate and write shared pages there. The same holds in run_namespaces and seccomp.
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def child_main(
    settings: dict[str, Any],
    *,
    code_r: int,
    stdout_w: int,
    stderr_w: int,
    status_w: int,
    persistent: bool,
    zygote_pid: int,
) -> None:
    try:
        lock_down(settings, code_r, stdout_w, stderr_w, status_w, zygote_pid)
    except BaseException as exc:  # say why on stderr; the zygote reports the abrupt exit
        try:
            os.write(2, f"sandbox child set-up failed: {type(exc).__name__}: {exc}\n".encode())
        finally:
            os._exit(EXIT_SETUP_FAILED)
    serve(persistent, int(settings["max_output_chars"]))


def lock_down(
    settings: dict[str, Any], code_r: int, stdout_w: int, stderr_w: int, status_w: int, zygote_pid: int
) -> None:
    prepared = _prepared or prepare(settings)  # the zygote prepared it once; a bare fork does it here
    os.setsid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != zygote_pid:  # the zygote died between fork and prctl
        os._exit(EXIT_SETUP_FAILED)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(stdout_w, 1)
    os.dup2(stderr_w, 2)
    os.dup2(code_r, CODE_FD)
    os.dup2(status_w, STATUS_FD)
    os.closerange(STATUS_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    for fd in (CODE_FD, STATUS_FD):
        os.set_inheritable(fd, False)  # programs the snippet starts must not inherit them
    uid = settings.get("child_uid")
    if uid is not None and os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 1)  # the zygote is not dumpable; the child's /proc/self should work
    fresh = settings.get("fresh_namespaces")
    if fresh:  # namespace level: this run's own /tmp, work dir, /dev/shm and IPC objects
        enter_fresh_namespaces(fresh)
    install_run_filter()
    limits = settings["rlimits"]
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    os.chdir(settings["workdir"])
    prepared.reseed()
    sys.stdin, sys.stdout, sys.stderr = prepared.streams
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr
    sys.argv = [""]


class Prepared:
    """What every child needs and the zygote can do once, before it forks them.

    Each Python-level step in a fresh fork writes to pages it shares with the zygote, and
    each such page is copied (about 4 us per page here): doing once in the zygote what every
    child did (environment, signal dispositions, the standard streams' objects, finding
    numpy's generator state; `run_namespaces` and `seccomp` prepare their own arguments the
    same way) saves about 1 ms of CPU per stateless run (`benchmarks/profile_sandbox.py`).
    """

    def __init__(self, settings: dict[str, Any], fork_hooks: fastfork.HookRecorder | None = None) -> None:
        if dict(os.environ) != settings["env"]:  # exactly the configured environment, nothing else
            os.environ.clear()
            os.environ.update(settings["env"])
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGALRM):  # a preload may set handlers
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
        # Never written to in the zygote (not installed there): each child gets pristine ones.
        self.streams = (open(0, encoding="utf-8", closefd=False), _text_stream(1), _text_stream(2))
        self.mt_state = _numpy_state_address()
        _warm_fork_hooks()
        # Decided last: the steps above must not start threads or register hooks unseen.
        self.raw_fork, self.raw_fork_refused = (
            fastfork.raw_fork_allowed(fork_hooks) if fork_hooks is not None else (False, "no hook record")
        )
        self.random_generators = fastfork.random_generators(fork_hooks) if self.raw_fork else ()

    def fork(self) -> int:
        return fastfork.fork() if self.raw_fork else os.fork()

    def reseed(self) -> None:
        """Forked children share the zygote's RNG state; real interpreters do not.

        `random` is reseeded from os.urandom by CPython's after-fork hook under `os.fork`, and
        here under the zygote's cheaper fork (`fastfork`), which skips that hook. numpy's global
        generator gets the whole Mersenne Twister state straight from the OS (624 words,
        position 624 = a fresh state): as random as `seed()`, without going through
        SeedSequence (0.5 ms in a fork).
        """
        fastfork.reseed_random(self.random_generators)
        if self.mt_state is not None:
            ctypes.memmove(self.mt_state, os.urandom(MT19937_STATE_BYTES), MT19937_STATE_BYTES)
            ctypes.c_int.from_address(self.mt_state + MT19937_STATE_BYTES).value = MT19937_STATE_WORDS
        elif "numpy.random" in sys.modules:  # layout not recognised: the public, slower way
            key = sys.modules["numpy"].frombuffer(os.urandom(MT19937_STATE_BYTES), dtype="uint32")
            sys.modules["numpy.random"].set_state(("MT19937", key, MT19937_STATE_WORDS))


_prepared: Prepared | None = None
FORK_HOOK_WARMUP_CALLS = 64  # enough for CPython 3.11 to quicken and specialise the hook's bytecode


def _warm_fork_hooks() -> None:
    """Run threading's after-fork hook in the zygote until the interpreter has specialised it.

    CPython runs ``threading._after_fork`` in every forked child. Run cold, the adaptive
    interpreter writes warm-up counters and quickened bytecode into the hook's code objects,
    so every child copies those pages (about 80 page faults, 0.25 ms per run here); run warm,
    it only reads them. In a single-threaded process the hook leaves the state as it was: the
    main thread stays the only thread, its locks are re-created unlocked or held as before.
    """
    threading_module = sys.modules.get("threading")
    hook = getattr(threading_module, "_after_fork", None)
    if hook is None or threading.active_count() != 1 or threading_module._limbo:
        return
    for _ in range(FORK_HOOK_WARMUP_CALLS):
        hook()


def prepare(settings: dict[str, Any], fork_hooks: fastfork.HookRecorder | None = None) -> Prepared:
    """Called by the zygote once, after the preloads (recorded by `fork_hooks`), before the first fork."""
    global _prepared
    _prepared = Prepared(settings, fork_hooks)
    return _prepared


def fork() -> int:
    """The zygote's fork: `fastfork`'s where `prepare` found it safe, else `os.fork`."""
    return _prepared.fork() if _prepared is not None else os.fork()


def _numpy_state_address() -> int | None:
    """Address of numpy's global MT19937 state ({uint32 key[624]; int pos}) if preloaded and
    laid out as expected (checked by writing a pattern and reading it back), else None."""
    numpy_random = sys.modules.get("numpy.random")  # only if preloaded: importing it costs ~20 ms
    if numpy_random is None:
        return None
    try:
        generator = numpy_random.mtrand._rand
        address = generator._bit_generator.ctypes.state_address
        numpy = sys.modules["numpy"]
        pattern = numpy.arange(1, MT19937_STATE_WORDS + 1, dtype="uint32")
        generator.set_state(("MT19937", numpy.zeros(MT19937_STATE_WORDS, dtype="uint32"), 0))  # clears cached gaussian
        ctypes.memmove(address, pattern.tobytes(), MT19937_STATE_BYTES)
        ctypes.c_int.from_address(address + MT19937_STATE_BYTES).value = MT19937_STATE_WORDS
        _, key, pos, has_gauss, _ = generator.get_state()
        laid_out = bool((key == pattern).all()) and pos == MT19937_STATE_WORDS and not has_gauss
        generator.set_state(("MT19937", numpy.frombuffer(os.urandom(MT19937_STATE_BYTES), dtype="uint32"),
                             MT19937_STATE_WORDS))
    except Exception:  # another numpy's internals: use set_state in each child
        return None
    return address if laid_out else None


def _text_stream(fd: int) -> io.TextIOWrapper:
    """Line-buffered like a terminal, so output printed before a timeout is not lost."""
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8", errors="backslashreplace", line_buffering=True)


def serve(persistent: bool, max_chars: int) -> None:
    namespace = _fresh_namespace()
    my_pid = os.getpid()
    while True:
        code = read_code(CODE_FD)
        if code is None:
            os._exit(0)
        error, exit_code = run_snippet(code, namespace)
        if os.getpid() != my_pid:  # the snippet forked and this is the forked copy ending
            _flush()
            os._exit(exit_code)
        if not persistent:
            _finish_like_python()
        _flush()
        if error is not None:  # an exception message can be as huge as any output
            error = {key: truncate_text(value, max_chars)[0] for key, value in error.items()}
        write_frame(STATUS_FD, {"error": error, "exit_code": exit_code})
        if not persistent:
            os._exit(exit_code & 0xFF)


def _fresh_namespace() -> dict[str, Any]:
    module = types.ModuleType("__main__")
    module.__dict__["__file__"] = SNIPPET_FILENAME
    sys.modules["__main__"] = module
    return module.__dict__


def run_snippet(code: str, namespace: dict[str, Any]) -> tuple[dict[str, str] | None, int]:
    """Run one snippet; returns (error record or None, exit status) the way `python -c` would."""
    linecache.cache[SNIPPET_FILENAME] = (len(code), None, code.splitlines(True), SNIPPET_FILENAME)
    try:
        compiled = compile(code, SNIPPET_FILENAME, "exec")
        exec(compiled, namespace)
    except SystemExit as exc:
        return _system_exit(exc)
    except BaseException as exc:
        frames = exc.__traceback__.tb_next if exc.__traceback__ else None  # hide this runner's frame
        text = "".join(traceback.format_exception(type(exc), exc, frames))
        _flush()
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except BaseException:  # the snippet may have closed or replaced stderr
            pass
        return {"name": type(exc).__name__, "message": str(exc), "traceback": text}, 1
    return None, 0


def _system_exit(exc: SystemExit) -> tuple[dict[str, str] | None, int]:
    code = exc.code
    if code is None:
        return None, 0
    if isinstance(code, int):
        error = None if code == 0 else {"name": "SystemExit", "message": str(code), "traceback": ""}
        return error, code
    try:
        sys.stderr.write(f"{code}\n")
    except BaseException:
        pass
    return {"name": "SystemExit", "message": str(code), "traceback": ""}, 1


def _finish_like_python() -> None:
    """What interpreter shutdown does before exit: join non-daemon threads, run atexit."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            try:
                thread.join()
            except BaseException:
                pass
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
