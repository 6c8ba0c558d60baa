"""Output capture: stream a child's stdout/stderr and status while it runs, then judge the run.

Stdlib, `tool_env.truncate` and `tool_env.local.wire` only: this runs inside the sandbox.
"""

from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass, field
from typing import Any

from tool_env.local.children import Child
from tool_env.local.reaping import CLEANUP_DEADLINE_S, crash_report, wait_child
from tool_env.local.wire import FrameError, FrameReader, write_frame
from tool_env.truncate import HeadTailText

READ_CHUNK = 1 << 16


@dataclass
class Capture:
    """Output and status of one run as it streams in."""

    stdout: HeadTailText
    stderr: HeadTailText
    stream_bytes: dict[int, int] = field(default_factory=dict)
    status: dict[str, Any] | None = None
    status_eof: bool = False
    output_exceeded: bool = False


def execute(child: Child, code: str, deadline: float, max_output_chars: int, max_stream_bytes: int) -> Capture:
    """Send the code and stream output until the child reports, dies, or the deadline."""
    capture = Capture(HeadTailText(max_output_chars), HeadTailText(max_output_chars))
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
            data = read_some(fd)
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
                take_output(capture, sinks, fd, data, max_stream_bytes)
    # Whatever the child wrote before reporting is already in the pipes: drain it.
    for fd in (child.stdout_r, child.stderr_r):
        while fd in open_fds and not capture.output_exceeded:
            data = read_some(fd)
            if not data:
                break
            take_output(capture, sinks, fd, data, max_stream_bytes)
    return capture


def take_output(
    capture: Capture, sinks: dict[int, HeadTailText], fd: int, data: bytes, max_stream_bytes: int
) -> None:
    total = capture.stream_bytes.get(fd, 0) + len(data)
    capture.stream_bytes[fd] = total
    sinks[fd].feed_bytes(data)
    if total > max_stream_bytes:
        capture.output_exceeded = True


def outcome(child: Child, capture: Capture, timeout_s: float, max_stream_bytes: int) -> dict[str, Any]:
    """The reply for a finished capture (waits for the child only if it died without a status)."""
    error: dict[str, Any] | None = None
    exit_code: int | None = None
    timed_out = False
    if capture.output_exceeded:
        error = {
            "name": "OutputLimitExceeded",
            "message": f"a stream exceeded {max_stream_bytes} bytes and the run was stopped",
            "traceback": "",
        }
    elif capture.status is not None:
        error = capture.status.get("error")
        exit_code = capture.status.get("exit_code")
        if capture.status.get("corrupt"):
            error = {"name": "WorkerCrashed", "message": "the run corrupted its status channel", "traceback": ""}
    elif capture.status_eof:
        _, raw = wait_child(child.pid, CLEANUP_DEADLINE_S)
        exit_code, error = crash_report(raw)
    else:
        timed_out = True
        error = {
            "name": "TimeoutError",
            "message": f"execution exceeded the time limit of {timeout_s:g} s and was killed",
            "traceback": "",
        }
    return {
        "stdout": capture.stdout.text(),
        "stderr": capture.stderr.text(),
        "stdout_truncated": capture.stdout.truncated,
        "stderr_truncated": capture.stderr.truncated,
        "error": error,
        "exit_code": exit_code,
        "timed_out": timed_out,
    }


def read_some(fd: int) -> bytes | None:
    try:
        return os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""
