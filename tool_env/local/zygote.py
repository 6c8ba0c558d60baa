"""The zygote: a warm interpreter inside the sandbox that forks one child per run.

Started once per worker (inside bubblewrap, or as a plain process in rlimit mode), it
imports the preload modules, then serves requests from the host over its stdin/stdout:
``{"op": "run", "code", "timeout_s", "keep"}`` and ``{"op": "reset"}``. Each stateless run
goes to a child forked *before* the request arrived (rlimits, uid, cwd already applied), so
a run costs a pipe round trip, not an interpreter start. ``keep=True`` keeps the child
alive between runs (a stateful session). After every run the zygote kills whatever the
run left behind and reaps it, so nothing outlives a run: as pid 1 of its pid namespace it
``kill(-1)``s the namespace; in rlimit mode a helper with the run's private uid does the
same for that uid; without root it kills its own descendants (it is their subreaper).

Stdlib and `tool_env.truncate`/`tool_env.local.wire` only: this runs inside the sandbox.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import resource
import select
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from tool_env.local import childproc
from tool_env.local.wire import FrameError, FrameReader, read_frame, write_frame
from tool_env.truncate import HeadTailText

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
READ_CHUNK = 1 << 16
REAP_POLL_S = 0.005
CLEANUP_DEADLINE_S = 5.0  # leftovers that survive SIGKILL this long mean the worker is unusable
KILL_MODES = ("pidns", "uid", "tree")
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25  # Linux >= 6.1; older kernels answer EINVAL and nothing changes
HUGE_PAGE_BYTES = 2 << 20

_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def prctl(option: int, value: int) -> None:
    if _libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}) failed: {os.strerror(err)}")


@dataclass
class Child:
    """Zygote-side handle of one forked interpreter."""

    pid: int
    code_w: int
    stdout_r: int
    stderr_r: int
    status_r: int
    persistent: bool
    runs: int = 0

    def close_fds(self) -> None:
        for fd in (self.code_w, self.stdout_r, self.stderr_r, self.status_r):
            try:
                os.close(fd)
            except OSError:
                pass


@dataclass
class Capture:
    """Output and status of one run as it streams in."""

    stdout: HeadTailText
    stderr: HeadTailText
    stream_bytes: dict[int, int] = field(default_factory=dict)
    status: dict[str, Any] | None = None
    status_eof: bool = False
    output_exceeded: bool = False


class Zygote:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.kill_mode = settings["kill_mode"]
        if self.kill_mode not in KILL_MODES:
            raise ValueError(f"kill_mode={self.kill_mode!r}: expected one of {KILL_MODES}")
        self.workdir = settings["workdir"]
        self.scratch_dirs = [d for d in settings["scratch_dirs"] if d]
        self.keep_paths = tuple(settings.get("keep_paths", ()))  # read-only binds inside scratch
        self.max_output_chars = int(settings["max_output_chars"])
        self.max_stream_bytes = int(settings["max_stream_bytes"])
        self.child_uid = settings.get("child_uid")
        self.pid = os.getpid()
        self.prefork: Child | None = None
        self.session: Child | None = None
        self.session_lost = False
        self.preload_errors: dict[str, str] = {}
        self.dirty: Child | None = None  # finished child awaiting reaping and a sweep
        self.exiting: set[int] = set()  # SIGKILLed children not reaped yet (pid-namespace fast path)

    # ----- start-up -------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        prctl(PR_SET_DUMPABLE, 0)  # same-uid children must not ptrace the zygote
        if self.kill_mode != "pidns":
            prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a run reparent here, not to init
        os.makedirs(self.workdir, exist_ok=True)
        if self.child_uid is not None and os.getuid() == 0:
            os.chown(self.workdir, self.child_uid, self.child_uid)
        for name in self.settings["preload"]:
            try:
                __import__(name)
            except BaseException as exc:  # a broken optional library must not kill the worker
                self.preload_errors[name] = f"{type(exc).__name__}: {exc}"
        gc.collect()
        gc.freeze()  # a collection in a child must not touch (and so copy) every inherited page
        collapse_heap_into_huge_pages()
        self.prefork = self.fork_child(persistent=False)
        return {"ready": True, "pid": self.pid, "preload_errors": self.preload_errors}

    # ----- requests -------------------------------------------------------------------
    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "run":
            return self.run(str(request["code"]), float(request["timeout_s"]), bool(request.get("keep")))
        if op == "reset":
            self.end_session()
            return {"clean": True}
        return {"fatal": f"unknown op {op!r}"}

    def run(self, code: str, timeout_s: float, keep: bool) -> dict[str, Any]:
        restarted = False
        if keep:
            if self.prefork is not None:  # a session worker has no use for it
                self.prefork.close_fds()
                _kill_quietly(self.prefork.pid)
                _wait_child(self.prefork.pid, CLEANUP_DEADLINE_S)
                self.prefork = None
            if self.session is None:
                restarted = self.session_lost
                self.session_lost = False
                self.session = self.fork_child(persistent=True)
            child = self.session
        else:
            if self.prefork is not None and not _alive(self.prefork.pid):  # e.g. killed by the OOM killer
                self.prefork.close_fds()
                self.prefork = None
            child = self.prefork or self.fork_child(persistent=False)
            self.prefork = None
        started = time.monotonic()
        capture = self.execute(child, code, started + timeout_s)
        duration = time.monotonic() - started
        reply = self.finish(child, capture, timeout_s, keep)
        reply.update(duration_s=duration, session_restarted=restarted)
        return reply

    def after_reply(self) -> None:
        """Off the critical path: clean up after the run, fork the child for the next one."""
        if self.dirty is not None and self.kill_mode == "pidns" and self.session is None:
            self.recycle_fast()
        else:
            self.clean_up()
        if self.prefork is None and self.session is None:
            self.prefork = self.fork_child(persistent=False)

    def recycle_fast(self) -> None:
        """pid-namespace fast path: the next child is forked before the old one has finished exiting.

        A process exit costs milliseconds (tearing down the inherited address space); the
        next run need not wait for it. The old child is already SIGKILLed; anything else
        alive in the namespace is a leftover and triggers the full sweep. Exited children
        are reaped while the zygote idles (`reap_exited`).
        """
        child, self.dirty = self.dirty, None
        child.close_fds()
        self.exiting.add(child.pid)
        known = {self.pid, *self.exiting}
        if any(pid not in known for pid in _namespace_pids()):
            self.exiting.clear()
            if not self.sweep():
                raise RuntimeError("processes left by a run survived SIGKILL")
        elif self.scratch_used():  # before the next fork: its cwd must be the new work dir
            self.wipe_scratch()

    def reap_exited(self) -> None:
        for pid in list(self.exiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.exiting.discard(pid)

    # ----- children -------------------------------------------------------------------
    def fork_child(self, persistent: bool) -> Child:
        code_r, code_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                childproc.child_main(
                    self.settings, code_r=code_r, stdout_w=out_w, stderr_w=err_w,
                    status_w=status_w, persistent=persistent, zygote_pid=self.pid,
                )
            finally:
                os._exit(70)
        for fd in (code_r, out_w, err_w, status_w):
            os.close(fd)
        for fd in (out_r, err_r, status_r):
            os.set_blocking(fd, False)
        return Child(pid, code_w, out_r, err_r, status_r, persistent)

    def execute(self, child: Child, code: str, deadline: float) -> Capture:
        """Send the code and stream output until the child reports, dies, or the deadline."""
        capture = Capture(HeadTailText(self.max_output_chars), HeadTailText(self.max_output_chars))
        sinks = {child.stdout_r: capture.stdout, child.stderr_r: capture.stderr}
        try:
            write_frame(child.code_w, {"code": code})
        except OSError:  # the child died before it got the code
            capture.status_eof = True
            return capture
        child.runs += 1
        frames = FrameReader()
        poller = select.poll()
        open_fds = {child.stdout_r, child.stderr_r, child.status_r}
        for fd in open_fds:
            poller.register(fd, select.POLLIN)
        while capture.status is None and not capture.status_eof and not capture.output_exceeded:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for fd, _ in poller.poll(max(1, int(remaining * 1000))):
                data = _read_some(fd)
                if data is None:
                    continue
                if not data:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    if fd == child.status_r:
                        capture.status_eof = True
                elif fd == child.status_r:
                    try:
                        found = frames.feed(data)
                    except (FrameError, ValueError):
                        found = [{"error": None, "exit_code": None, "corrupt": True}]
                    if found:
                        capture.status = found[0]
                else:
                    self.take_output(capture, sinks, fd, data)
        # Whatever the child wrote before reporting is already in the pipes: drain it.
        for fd in (child.stdout_r, child.stderr_r):
            while fd in open_fds and not capture.output_exceeded:
                data = _read_some(fd)
                if not data:
                    break
                self.take_output(capture, sinks, fd, data)
        return capture

    def take_output(self, capture: Capture, sinks: dict[int, HeadTailText], fd: int, data: bytes) -> None:
        total = capture.stream_bytes.get(fd, 0) + len(data)
        capture.stream_bytes[fd] = total
        sinks[fd].feed_bytes(data)
        if total > self.max_stream_bytes:
            capture.output_exceeded = True

    def finish(self, child: Child, capture: Capture, timeout_s: float, keep: bool) -> dict[str, Any]:
        """Turn a capture into a reply. Killing and reaping what the run leaves behind waits
        for `after_reply`, off the caller's critical path (but before the next run here)."""
        error: dict[str, Any] | None = None
        exit_code: int | None = None
        timed_out = False
        if capture.output_exceeded:
            error = {
                "name": "OutputLimitExceeded",
                "message": f"a stream exceeded {self.max_stream_bytes} bytes and the run was stopped",
                "traceback": "",
            }
        elif capture.status is not None:
            error = capture.status.get("error")
            exit_code = capture.status.get("exit_code")
            if capture.status.get("corrupt"):
                error = {"name": "WorkerCrashed", "message": "the run corrupted its status channel", "traceback": ""}
        elif capture.status_eof:
            _, raw = _wait_child(child.pid, CLEANUP_DEADLINE_S)
            exit_code, error = _crash_report(raw)
        else:
            timed_out = True
            error = {
                "name": "TimeoutError",
                "message": f"execution exceeded the time limit of {timeout_s:g} s and was killed",
                "traceback": "",
            }
        if not keep or capture.status is None or capture.output_exceeded:
            _kill_quietly(child.pid)  # stop it now; reaping and the sweep come after the reply
            self.dirty = child
            if keep:
                self.session = None
                self.session_lost = True
        return {
            "stdout": capture.stdout.text(),
            "stderr": capture.stderr.text(),
            "stdout_truncated": capture.stdout.truncated,
            "stderr_truncated": capture.stderr.truncated,
            "error": error,
            "exit_code": exit_code,
            "timed_out": timed_out,
        }

    def clean_up(self) -> None:
        """Reap the finished child, then kill and reap anything it left behind."""
        child, self.dirty = self.dirty, None
        if child is not None:
            _wait_child(child.pid, CLEANUP_DEADLINE_S)
            child.close_fds()
            if not self.sweep():
                raise RuntimeError("processes left by a run survived SIGKILL")

    def end_session(self) -> None:
        if self.session is not None:
            _kill_quietly(self.session.pid)
            _wait_child(self.session.pid, CLEANUP_DEADLINE_S)
            self.session.close_fds()
            self.session = None
        self.session_lost = False
        if not self.sweep():
            raise RuntimeError("processes left by a session survived SIGKILL")

    # ----- cleanup --------------------------------------------------------------------
    def sweep(self) -> bool:
        """Kill and reap every process the runs left behind, wipe scratch dirs. True if clean."""
        if self.prefork is not None:  # the sweep kills it too; fork a fresh one afterwards
            self.prefork.close_fds()
            self.prefork = None
        clean = True
        if _has_children():
            clean = self.kill_leftovers()
        if self.scratch_used():
            self.wipe_scratch()
        return clean

    def wipe_scratch(self) -> None:
        for path in self.scratch_dirs:
            _wipe(path, self.keep_paths)
        os.makedirs(self.workdir, exist_ok=True)
        if self.child_uid is not None and os.getuid() == 0:
            os.chown(self.workdir, self.child_uid, self.child_uid)

    def scratch_used(self) -> bool:
        """Cheap check that skips the wipe for the common run that wrote no files."""
        for path in self.scratch_dirs:
            if _has_entries(path, skip=(self.workdir, *self.keep_paths)):
                return True
        try:
            return bool(os.listdir(self.workdir))
        except OSError:
            return True

    def kill_leftovers(self) -> bool:
        deadline = time.monotonic() + CLEANUP_DEADLINE_S
        while time.monotonic() < deadline:
            if self.kill_mode == "pidns":
                _kill_quietly(-1)  # pid 1 of the namespace: everyone but us
            elif self.kill_mode == "uid":
                self.kill_as_uid()
            else:
                for pid in _descendants(self.pid):
                    _kill_quietly(pid)
            if not _reap_all(until=time.monotonic() + 0.05):
                return True
        return not _has_children()

    def kill_as_uid(self) -> None:
        """kill(-1) from a helper holding the runs' uid: atomic, so fork bombs cannot outrun it."""
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the helper
            try:
                os.setgroups([])
                os.setgid(self.child_uid)
                os.setuid(self.child_uid)
                os.kill(-1, signal.SIGKILL)
            except BaseException:
                pass
            os._exit(0)
        _wait_child(pid, CLEANUP_DEADLINE_S)

    def shutdown(self) -> None:
        for child in (self.prefork, self.session, self.dirty):
            if child is not None:
                _kill_quietly(child.pid)
        self.prefork = self.session = self.dirty = None
        if _has_children():
            self.kill_leftovers()
        for path in self.scratch_dirs:
            _wipe(path)


# ----- helpers ------------------------------------------------------------------------
def collapse_heap_into_huge_pages() -> int:
    """Back the warm heap with 2 MB pages so that each fork copies far fewer page-table entries.

    fork copies one entry per resident 4 kB anonymous page and the child's exit frees them
    again: with numpy and sympy loaded (about 50 MB of heap) that copy was the largest single
    cost of a stateless run. A 2 MB page needs one entry. A child writing into such a page
    copies only 4 kB of it (the kernel splits the mapping in the child alone); the zygote's
    own writes while a child shares a page split the zygote's mapping too, so in steady
    state about a third of the heap stays huge (measured: ~15% less CPU per stateless run).
    Best effort: returns the bytes collapsed, 0 where the kernel cannot (Linux < 6.1).
    """
    collapsed = 0
    try:
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        perms, path = fields[1], (fields[5] if len(fields) > 5 else "")
        if not perms.startswith("rw") or perms[3] != "p" or path not in ("", "[heap]"):
            continue  # only private anonymous memory: the Python and malloc heaps
        low, high = (int(bound, 16) for bound in fields[0].split("-"))
        start = (low + HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1)
        end = high & ~(HUGE_PAGE_BYTES - 1)
        if end <= start:
            continue
        _libc.madvise(start, end - start, MADV_HUGEPAGE)
        if _libc.madvise(start, end - start, MADV_COLLAPSE) == 0:
            collapsed += end - start
    return collapsed


def _read_some(fd: int) -> bytes | None:
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _kill_quietly(pid: int) -> None:
    try:
        if pid > 0:
            os.killpg(pid, signal.SIGKILL)  # children lead their own process group
    except OSError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _wait_child(pid: int, timeout_s: float) -> tuple[int, int | None]:
    """waitpid with a deadline; returns (pid, raw status) or (0, None) if it did not exit."""
    deadline = time.monotonic() + timeout_s
    delay = 0.0002
    while True:
        try:
            done, raw = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return pid, None
        if done:
            return done, raw
        if time.monotonic() > deadline:
            return 0, None
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def _has_children() -> bool:
    """Reap what already exited; True while any child (a leftover) is still alive."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _reap_all(until: float) -> bool:
    """Reap until no child is left (False) or the time is up (True: some remain)."""
    while True:
        if not _has_children():
            return False
        if time.monotonic() > until:
            return True
        time.sleep(0.001)


def _namespace_pids() -> list[int]:
    """Every process in our pid namespace (its /proc shows nothing else)."""
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _descendants(root: int) -> list[int]:
    """Every live descendant of `root`, from /proc (rlimit mode without root only)."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        parent_of[int(entry)] = int(fields[1])
    found, frontier = [], {root}
    while frontier:
        frontier = {pid for pid, ppid in parent_of.items() if ppid in frontier}
        found.extend(frontier)
    return found


def _crash_report(raw: int | None) -> tuple[int | None, dict[str, Any]]:
    if raw is None:
        return None, {"name": "WorkerCrashed", "message": "the interpreter vanished", "traceback": ""}
    if os.WIFSIGNALED(raw):
        sig = os.WTERMSIG(raw)
        try:
            sig_name = f"{signal.Signals(sig).name} ({signal.strsignal(sig)})"
        except ValueError:
            sig_name = str(sig)
        message = f"the interpreter was killed by signal {sig_name}"
        if sig == signal.SIGKILL:
            message += "; a memory, CPU-time or process limit may have been hit"
        return -sig, {"name": "WorkerCrashed", "message": message, "traceback": ""}
    status = os.WEXITSTATUS(raw)
    message = f"the interpreter exited abruptly with status {status} (os._exit or a fatal error)"
    return status, {"name": "WorkerCrashed", "message": message, "traceback": ""}


def _holds(entry_path: str, paths: tuple[str, ...]) -> bool:
    """True if `entry_path` is an ancestor of one of `paths` (a directory to descend into)."""
    return any(p.startswith(entry_path + "/") for p in paths)


def _has_entries(path: str, skip: tuple[str, ...]) -> bool:
    """Whether `path` holds anything besides the `skip` paths and their parent directories."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.path in skip:
                    continue
                if not _holds(entry.path, skip) or _has_entries(entry.path, skip):
                    return True
    except OSError:
        pass
    return False


def _wipe(path: str, keep: tuple[str, ...] = ()) -> None:
    """Empty a scratch directory even if the run chmod-ed things away; `keep` paths survive."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        if entry.path in keep:
            continue
        if _holds(entry.path, keep):
            _wipe(entry.path, keep)
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                _make_writable(entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _make_writable(top: str) -> None:
    for root, dirs, _ in os.walk(top):
        for name in dirs:
            try:
                os.chmod(os.path.join(root, name), 0o700)
            except OSError:
                pass
    try:
        os.chmod(top, 0o700)
    except OSError:
        pass


def main() -> None:
    """Entry point inside the sandbox: fds 0/1 are the control channel from the host."""
    ctl_in, ctl_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # a preloaded library printing must not corrupt the channel
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    settings = read_frame(ctl_in)
    if settings is None:
        return
    for key, value in settings["env"].items():  # e.g. single-threaded BLAS before numpy loads
        os.environ[key] = value
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    zygote = Zygote(settings)
    write_frame(ctl_out, zygote.start())
    while True:
        if zygote.exiting:  # reap in idle moments, but answer a request at once
            ready, _, _ = select.select([ctl_in], [], [], REAP_POLL_S)
            zygote.reap_exited()
            if not ready:
                continue
        try:
            request = read_frame(ctl_in)
        except (FrameError, ValueError, OSError):
            break
        if request is None:
            break
        try:
            reply = zygote.handle(request)
        except Exception as exc:  # report, then die: the host replaces a broken worker
            write_frame(ctl_out, {"fatal": f"{type(exc).__name__}: {exc}"})
            break
        try:
            write_frame(ctl_out, reply)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                break
            raise
        try:
            zygote.after_reply()
        except Exception as exc:  # unclean: exit so the host replaces this worker
            print(f"tool_env zygote: {type(exc).__name__}: {exc}", file=sys.stderr)
            break
    zygote.shutdown()


if __name__ == "__main__":
    main()
