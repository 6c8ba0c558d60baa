"""The zygote: a warm interpreter inside the sandbox that forks one child per run.

Started once per worker (inside bubblewrap, or as a plain process in rlimit mode), it
imports the preload modules, then serves requests from the host over its stdin/stdout:
``{"op": "run", "code", "timeout_s", "keep"}`` and ``{"op": "reset"}``. Each stateless run
goes to a child forked *before* the request arrived (rlimits, uid, cwd already applied), so
a run costs a pipe round trip, not an interpreter start. ``keep=True`` keeps the child
alive between runs (a stateful session). After every run the zygote kills whatever the
run left behind and reaps it (`reaping`), and wipes the scratch dirs (`scratch`), so
nothing outlives a run. This module is the request loop; forking lives in `children`,
output capture in `capture`.

Stdlib and `tool_env.truncate`/`tool_env.local.*` only: this runs inside the sandbox.
"""

from __future__ import annotations

import errno
import gc
import os
import resource
import select
import signal
import sys
import time
from typing import Any

from tool_env.local import childproc, fastfork, oom, reaping, run_namespaces
from tool_env.local.capture import Capture, execute, new_capture, outcome, payload
from tool_env.local.children import (
    PR_SET_CHILD_SUBREAPER,
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    Child,
    collapse_heap_into_huge_pages,
    fork_child,
    prctl,
)
from tool_env.local.reaping import CLEANUP_DEADLINE_S, KILL_MODES, kill_quietly, wait_child
from tool_env.local.scratch import Scratch
from tool_env.local.scrub import wipe
from tool_env.local.wire import PAYLOAD_KEY, FrameError, read_frame, read_payload_into, write_frame

REAP_POLL_S = 0.005


class Zygote:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.kill_mode = settings["kill_mode"]
        if self.kill_mode not in KILL_MODES:
            raise ValueError(f"kill_mode={self.kill_mode!r}: expected one of {KILL_MODES}")
        self.child_uid = settings.get("child_uid")
        self.scratch = Scratch(
            settings["scratch_dirs"],
            settings["workdir"],
            tuple(settings.get("keep_paths", ())),  # read-only binds inside scratch
            self.child_uid,
        )
        self.max_output_chars = int(settings["max_output_chars"])
        self.max_stream_bytes = int(settings["max_stream_bytes"])
        self.capture: Capture = new_capture(self.max_output_chars)  # reused, zeroed after every reply
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
        self.scratch.make_workdir()
        with fastfork.HookRecorder() as fork_hooks:  # which after-fork hooks the preloads add
            for name in self.settings["preload"]:
                try:
                    __import__(name)
                except BaseException as exc:  # a broken optional library must not kill the worker
                    self.preload_errors[name] = f"{type(exc).__name__}: {exc}"
        if self.settings.get("fresh_namespaces"):  # system-call arguments made once, not per child
            self.settings["fresh_namespaces"] = run_namespaces.prepare(self.settings["fresh_namespaces"])
        prepared = childproc.prepare(self.settings, fork_hooks)  # once here, not in every child
        gc.collect()
        gc.freeze()  # a collection in a child must not touch (and so copy) every inherited page
        collapse_heap_into_huge_pages()
        self.prefork = self.fork_child(persistent=False)
        fork = "libc fork (no after-fork work)" if prepared.raw_fork else f"os.fork ({prepared.raw_fork_refused})"
        return {"ready": True, "pid": self.pid, "preload_errors": self.preload_errors, "fork": fork}

    def fork_child(self, persistent: bool) -> Child:
        return fork_child(self.settings, persistent, self.pid)

    # ----- requests -------------------------------------------------------------------
    def handle(self, request: dict[str, Any], code: bytearray) -> dict[str, Any]:
        op = request.get("op")
        if op == "run":
            return self.run(code, float(request["timeout_s"]), bool(request.get("keep")))
        if op == "reset":
            self.end_session()
            return {"clean": True}
        return {"fatal": f"unknown op {op!r}"}

    def run(self, code: bytearray, timeout_s: float, keep: bool) -> dict[str, Any]:
        restarted = False
        if keep:
            if self.prefork is not None:  # a session worker has no use for it
                self.prefork.close_fds()
                kill_quietly(self.prefork.pid)
                wait_child(self.prefork.pid, CLEANUP_DEADLINE_S)
                self.prefork = None
            if self.session is None:
                restarted = self.session_lost
                self.session_lost = False
                self.session = self.fork_child(persistent=True)
            child = self.session
        else:
            if self.prefork is not None and not reaping.alive(self.prefork.pid):  # e.g. killed by the OOM killer
                self.prefork.close_fds()
                self.prefork = None
            child = self.prefork or self.fork_child(persistent=False)
            self.prefork = None
        for pid in self.exiting:  # the fast path did not wait for the previous run to go
            if not reaping.wait_released(pid, CLEANUP_DEADLINE_S):
                raise RuntimeError("a killed run stayed readable through /proc")
        started = time.monotonic()
        capture = self.capture
        execute(child, code, capture, started + timeout_s, self.max_stream_bytes)
        duration = time.monotonic() - started
        reply = self.finish(child, capture, timeout_s, keep)
        reply.update(duration_s=duration, session_restarted=restarted)
        return reply

    def finish(self, child: Child, capture: Capture, timeout_s: float, keep: bool) -> dict[str, Any]:
        """Turn a capture into a reply header. Killing and reaping what the run leaves behind
        waits for `after_reply`, off the caller's critical path (but before the next run here)."""
        reply = outcome(child, capture, timeout_s, self.max_stream_bytes)
        if not keep or not capture.status_done or capture.status_corrupt or capture.output_exceeded:
            kill_quietly(child.pid)  # stop it now; reaping and the sweep come after the reply
            self.dirty = child
            if keep:
                self.session = None
                self.session_lost = True
        return reply

    # ----- after each run -------------------------------------------------------------
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
        if any(pid not in known for pid in reaping.namespace_pids()):
            self.exiting.clear()
            if not self.sweep():
                raise RuntimeError("processes left by a run survived SIGKILL")
        elif self.scratch.used():  # before the next fork: its cwd must be the new work dir
            self.scratch.wipe()

    def reap_exited(self) -> None:
        for pid in list(self.exiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.exiting.discard(pid)

    def clean_up(self) -> None:
        """Reap the finished child, then kill and reap anything it left behind."""
        child, self.dirty = self.dirty, None
        if child is not None:
            wait_child(child.pid, CLEANUP_DEADLINE_S)
            child.close_fds()
            if not self.sweep():
                raise RuntimeError("processes left by a run survived SIGKILL")

    def end_session(self) -> None:
        if self.session is not None:
            kill_quietly(self.session.pid)
            wait_child(self.session.pid, CLEANUP_DEADLINE_S)
            self.session.close_fds()
            self.session = None
        self.session_lost = False
        if not self.sweep():
            raise RuntimeError("processes left by a session survived SIGKILL")

    def sweep(self) -> bool:
        """Kill and reap every process the runs left behind, wipe scratch dirs. True if clean."""
        if self.prefork is not None:  # the sweep kills it too; fork a fresh one afterwards
            self.prefork.close_fds()
            self.prefork = None
        clean = True
        if reaping.has_children():
            clean = reaping.kill_leftovers(self.kill_mode, self.pid, self.child_uid)
        self.exiting.clear()  # all reaped above: a recycled pid must not pass for one still exiting
        if self.scratch.used():
            self.scratch.wipe()
        return clean

    def shutdown(self) -> None:
        for child in (self.prefork, self.session, self.dirty):
            if child is not None:
                kill_quietly(child.pid)
        self.prefork = self.session = self.dirty = None
        if reaping.has_children():
            reaping.kill_leftovers(self.kill_mode, self.pid, self.child_uid)
        self.scratch.wipe_all()


def write_views(fd: int, views: list[memoryview]) -> None:
    """Write raw buffers without joining them (a joined copy would outlive the wipe)."""
    for view in views:
        while view:
            view = view[os.write(fd, view) :]


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
    oom.volunteer()  # before any child: a host out of memory kills sandbox processes first
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
        code = bytearray(int(request.get(PAYLOAD_KEY) or 0))
        try:
            try:
                read_payload_into(ctl_in, code)
                reply = zygote.handle(request, code)
                views = payload(zygote.capture, reply) if request.get("op") == "run" else []
                reply[PAYLOAD_KEY] = sum(len(view) for view in views)
            except Exception as exc:  # report, then die: the host replaces a broken worker
                write_frame(ctl_out, {"fatal": f"{type(exc).__name__}: {exc}"})
                break
            try:
                write_frame(ctl_out, reply)
                write_views(ctl_out, views)
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    break
                raise
        finally:  # before the next child is forked from this memory (`scrub`)
            wipe(code)
            zygote.capture.wipe()
            del code
        try:
            zygote.after_reply()
        except Exception as exc:  # unclean: exit so the host replaces this worker
            print(f"tool_env zygote: {type(exc).__name__}: {exc}", file=sys.stderr)
            break
    zygote.shutdown()


if __name__ == "__main__":
    main()
