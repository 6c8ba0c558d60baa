"""Host-side handle of one zygote process: start it, send requests, detect its death.

A worker serves one caller at a time (the pool guarantees it). Every read has a deadline,
so a wedged or killed zygote turns into `WorkerDied`, never into a hang.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from typing import Any

from tool_env.local import oom
from tool_env.local.isolation import LaunchPlan, user_kwargs
from tool_env.local.reaping import descendants
from tool_env.local.reply import assemble
from tool_env.local.wire import PAYLOAD_KEY, FrameError, FrameReader, encode_frame

START_TIMEOUT_S = 120.0  # interpreter start + preload imports on a busy machine
STOP_GRACE_S = 2.0  # time the zygote gets to clean up after stdin closes
REPLY_GRACE_S = 10.0  # beyond the run's own timeout: kill, reap and sweep inside the sandbox
READ_CHUNK = 1 << 16


class WorkerDied(RuntimeError):
    """The zygote died, stopped answering, or sent garbage. The worker is unusable."""


class Worker:
    def __init__(self, plan: LaunchPlan) -> None:
        self.plan = plan
        self.level = plan.level
        self.alive = False
        self.preload_errors: dict[str, str] = {}
        self.fork_method = ""  # how the zygote forks runs (`fastfork`), for diagnostics
        self._reader = FrameReader()
        self._pending: list[Any] = []
        try:
            self.proc = subprocess.Popen(
                plan.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=plan.env,
                start_new_session=True,
                close_fds=True,
                **user_kwargs(plan.user),
            )
        except OSError as exc:
            plan.release()
            raise WorkerDied(f"cannot start sandbox worker {plan.argv[0]!r}: {exc}") from None
        self._in = self.proc.stdin.fileno()
        self._out = self.proc.stdout.fileno()
        self._poller = select.poll()
        self._poller.register(self._out, select.POLLIN)
        self.alive = True
        try:
            self._send(plan.settings)
            hello = self._receive(time.monotonic() + START_TIMEOUT_S)
        except WorkerDied as exc:
            self.kill()
            raise WorkerDied(f"sandbox worker ({self.level}) failed to start: {exc}") from None
        if oom.can_pin():  # pin the minimum too, so a run cannot lower it (`oom`)
            for pid in (self.proc.pid, *descendants(self.proc.pid)):
                oom.volunteer(pid)
        self.pid = hello.get("pid")
        self.preload_errors = hello.get("preload_errors", {})
        self.fork_method = hello.get("fork", "")

    def call(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request; the reply must arrive within `timeout_s` plus a grace period."""
        if not self.alive:
            raise WorkerDied("worker already stopped")
        code = None
        if "code" in request:  # sent raw after the header: the zygote never parses it (`scrub`)
            request = dict(request)
            code = request.pop("code").encode("utf-8", "surrogatepass")
            request[PAYLOAD_KEY] = len(code)
        try:
            self._send(request, code)
            reply = self._receive(time.monotonic() + timeout_s + REPLY_GRACE_S)
        except WorkerDied:
            self.kill()
            raise
        if "fatal" in reply:
            self.kill()
            raise WorkerDied(f"sandbox worker failed: {reply['fatal']}")
        if request.get("op") == "run":
            try:
                return assemble(reply, reply.pop("payload", b""), int(self.plan.settings["max_output_chars"]))
            except (KeyError, TypeError, ValueError) as exc:
                self.kill()
                raise WorkerDied(f"worker sent a malformed reply: {exc}") from None
        return reply

    def _send(self, obj: Any, payload: bytes | None = None) -> None:
        data = memoryview(encode_frame(obj) + (payload or b""))
        try:
            while data:
                data = data[os.write(self._in, data) :]
        except OSError as exc:
            raise WorkerDied(f"cannot write to worker: {exc}") from None

    def _receive(self, deadline: float) -> dict[str, Any]:
        while not self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerDied("worker did not answer in time")
            if not self._poller.poll(remaining * 1000):  # poll, not select: fds may exceed 1024
                continue
            chunk = os.read(self._out, READ_CHUNK)
            if not chunk:
                code = self.proc.poll()
                raise WorkerDied(f"worker exited (status {code})")
            try:
                self._pending.extend(self._reader.feed(chunk))
            except (FrameError, ValueError) as exc:
                raise WorkerDied(f"worker sent a corrupt frame: {exc}") from None
        return self._pending.pop(0)

    def exited(self) -> bool:
        """The worker's process is gone (a cheap check: one non-blocking wait)."""
        return self.proc.poll() is not None

    def stop(self) -> None:
        """Polite stop: the zygote kills its children and exits; force it after a grace period."""
        if not self.alive:
            return
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def kill(self) -> None:
        """Hard stop; always reaps the zygote and frees its uid and work dir."""
        self.alive = False
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._kill_uid_leftovers()
        self.plan.release()

    def _kill_uid_leftovers(self) -> None:
        """In rlimit mode a run that escaped its session survives the zygote: kill its uid."""
        uid = self.plan.settings.get("child_uid")
        if uid is None or self.plan.lease is None:
            return  # namespace mode: the kernel ended the pid namespace with its init
        subprocess.run(["kill", "-KILL", "-1"], **user_kwargs(uid), stderr=subprocess.DEVNULL, check=False)
