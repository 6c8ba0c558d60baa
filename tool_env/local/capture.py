"""Output capture: stream a child's stdout/stderr and status while it runs, then judge the run.

Everything a run produced stays raw bytes in buffers that are zeroed after the reply
(`scrub`): each stream keeps its first and last bytes (enough for the character limits,
whatever the encoding) and counts its characters; the status frame is kept as the child
wrote it. The host turns them into text and an error record (`reply.assemble`).

Stdlib, `tool_env.local.*` only: this runs inside the sandbox.
"""

from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass
from typing import Any

from tool_env.local.childproc import EXIT_SETUP_FAILED
from tool_env.local.children import Child
from tool_env.local.reaping import CLEANUP_DEADLINE_S, crash_report, wait_child
from tool_env.local.scrub import GrowingBuffer, wipe
from tool_env.local.utf8count import count_utf8_chars
from tool_env.local.wire import HEADER

READ_CHUNK = 1 << 16
UTF8_MAX_BYTES = 4  # per character, also per replacement character of an invalid sequence
UTF8_CARRY = 3  # bytes of a character split across reads
STATUS_CAPACITY = 4096
MAX_STATUS_BYTES = 1 << 20  # a status frame (error record with its traceback) larger than this is corrupt:
# run code can write the status pipe itself, and the frame must not bypass the output caps


def bytes_for_chars(chars: int) -> int:
    """Bytes that surely hold `chars` whole characters, plus one split character."""
    return UTF8_MAX_BYTES * chars + UTF8_CARRY


class StreamBuffer:
    """First `head_capacity` and last `tail_capacity` bytes of a stream, and its character count."""

    def __init__(self, head_capacity: int, tail_capacity: int) -> None:
        self.head = bytearray(head_capacity)
        self.tail = bytearray(tail_capacity)  # a ring
        self.chunk = bytearray(UTF8_CARRY + READ_CHUNK)
        self.reset()

    def reset(self) -> None:
        self.head_len = 0
        self.tail_start = 0
        self.tail_len = 0
        self.total_bytes = 0
        self.total_chars = 0
        self.carry = 0  # undecoded bytes at the start of `chunk`
        self.chunk_used = 0  # how much of `chunk` holds run data (only that is wiped: each
        # page written here is a copy-on-write fault while a pre-forked child shares it)

    def read_from(self, fd: int) -> int | None:
        """Read once; the byte count, 0 at EOF, None if nothing was ready."""
        view = memoryview(self.chunk)
        try:
            got = os.readv(fd, [view[self.carry :]])
        except BlockingIOError:
            return None
        except OSError:
            return 0
        if got:
            self.chunk_used = max(self.chunk_used, self.carry + got)
            self.store(view[self.carry : self.carry + got])
            self.count_chars(self.carry + got, final=False)
        return got

    def store(self, data: memoryview) -> None:
        self.total_bytes += len(data)
        room = len(self.head) - self.head_len
        if room > 0:
            taken = data[:room]
            self.head[self.head_len : self.head_len + len(taken)] = taken
            self.head_len += len(taken)
            data = data[room:]
        size = len(self.tail)
        if not data or not size:
            return
        if len(data) >= size:
            self.tail[:] = data[len(data) - size :]
            self.tail_start, self.tail_len = 0, size
            return
        end = (self.tail_start + self.tail_len) % size
        first = min(len(data), size - end)
        self.tail[end : end + first] = data[:first]
        self.tail[: len(data) - first] = data[first:]
        overflow = self.tail_len + len(data) - size
        if overflow > 0:
            self.tail_start = (self.tail_start + overflow) % size
        self.tail_len = min(size, self.tail_len + len(data))

    def count_chars(self, filled: int, final: bool) -> None:
        """Characters as the host will decode them (UTF-8, invalid bytes replaced)."""
        chars, used = count_utf8_chars(memoryview(self.chunk)[:filled], final)
        self.total_chars += chars
        self.carry = filled - used
        self.chunk[: self.carry] = memoryview(self.chunk)[used:filled]

    def finish(self) -> None:
        if self.carry:
            self.count_chars(self.carry, final=True)

    def meta(self) -> dict[str, int]:
        return {"bytes": self.total_bytes, "chars": self.total_chars, "head": self.head_len, "tail": self.tail_len}

    def views(self) -> list[memoryview]:
        """Head, then the tail ring in stream order (bytes already in the head are not repeated)."""
        size = len(self.tail)
        first = min(self.tail_len, size - self.tail_start)
        tail = memoryview(self.tail)
        return [
            memoryview(self.head)[: self.head_len],
            tail[self.tail_start : self.tail_start + first],
            tail[: self.tail_len - first],
        ]

    def wipe(self) -> None:
        wipe(self.head, self.head_len)
        wipe(self.tail, len(self.tail) if self.total_bytes > self.head_len else 0)
        wipe(self.chunk, self.chunk_used)
        self.reset()


@dataclass
class Capture:
    """Output and status of one run as they stream in (buffers owned by the zygote)."""

    stdout: StreamBuffer
    stderr: StreamBuffer
    status: GrowingBuffer
    status_done: bool = False
    status_corrupt: bool = False
    status_eof: bool = False
    output_exceeded: bool = False

    def wipe(self) -> None:
        """Zero every byte of the run and make the capture ready for the next one."""
        self.stdout.wipe()
        self.stderr.wipe()
        self.status.clear()
        self.status_done = self.status_corrupt = self.status_eof = self.output_exceeded = False


def new_capture(max_output_chars: int) -> Capture:
    head_chars = max_output_chars // 2
    tail_chars = max_output_chars - head_chars
    return Capture(
        StreamBuffer(bytes_for_chars(head_chars), bytes_for_chars(tail_chars) + UTF8_CARRY),
        StreamBuffer(bytes_for_chars(head_chars), bytes_for_chars(tail_chars) + UTF8_CARRY),
        GrowingBuffer(STATUS_CAPACITY),
    )


def execute(child: Child, code: bytearray, capture: Capture, deadline: float, max_stream_bytes: int) -> None:
    """Send the code and stream output until the child reports, dies, or the deadline."""
    try:
        os.writev(child.code_w, [HEADER.pack(len(code)), code]) if len(code) < 1 << 16 else _write_all(child, code)
    except OSError:  # the child died before it got the code
        capture.status_eof = True
        return
    child.runs += 1
    streams = {child.stdout_r: capture.stdout, child.stderr_r: capture.stderr}
    poller = select.poll()
    open_fds = {child.stdout_r, child.stderr_r, child.status_r}
    for fd in open_fds:
        poller.register(fd, select.POLLIN)
    status_chunk = bytearray(STATUS_CAPACITY)
    try:
        while not capture.status_done and not capture.status_eof and not capture.output_exceeded:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for fd, _ in poller.poll(max(1, int(remaining * 1000))):
                if fd == child.status_r:
                    got = _read_status(fd, status_chunk, capture)
                else:
                    got = streams[fd].read_from(fd)
                    if streams[fd].total_bytes > max_stream_bytes:
                        capture.output_exceeded = True
                if got == 0:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    if fd == child.status_r:
                        capture.status_eof = True
        # Whatever the child wrote before reporting is already in the pipes: drain it.
        for fd in (child.stdout_r, child.stderr_r):
            while fd in open_fds and not capture.output_exceeded:
                if not streams[fd].read_from(fd):
                    break
                if streams[fd].total_bytes > max_stream_bytes:
                    capture.output_exceeded = True
    finally:
        wipe(status_chunk)
        capture.stdout.finish()
        capture.stderr.finish()


def _write_all(child: Child, code: bytearray) -> None:
    os.write(child.code_w, HEADER.pack(len(code)))
    view = memoryview(code)
    while view:
        view = view[os.write(child.code_w, view) :]


def _read_status(fd: int, chunk: bytearray, capture: Capture) -> int | None:
    try:
        got = os.readv(fd, [chunk])
    except BlockingIOError:
        return None
    except OSError:
        return 0
    if got:
        capture.status.append(memoryview(chunk)[:got])
        buffered = capture.status.length
        if buffered >= HEADER.size:
            (length,) = HEADER.unpack_from(capture.status.data)
            if length > MAX_STATUS_BYTES:
                capture.status_done = capture.status_corrupt = True
            elif buffered >= HEADER.size + length:
                capture.status_done = True
    return got


def outcome(child: Child, capture: Capture, timeout_s: float, max_stream_bytes: int) -> dict[str, Any]:
    """The reply header for a finished capture (waits for the child only if it died without a status).

    ``status`` is ``"frame"`` when the child's own status frame follows in the payload (the
    host parses it), else the zygote's verdict with its own error record.
    """
    reply: dict[str, Any] = {"error": None, "exit_code": None, "timed_out": False}
    if capture.output_exceeded:
        reply["error"] = {
            "name": "OutputLimitExceeded",
            "message": f"a stream exceeded {max_stream_bytes} bytes and the run was stopped",
            "traceback": "",
        }
    elif capture.status_done and capture.status_corrupt:
        reply["error"] = {"name": "WorkerCrashed", "message": "the run corrupted its status channel", "traceback": ""}
        reply["crash_cause"] = "code"
    elif capture.status_done:
        reply["status"] = "frame"
    elif capture.status_eof:
        _, raw = wait_child(child.pid, CLEANUP_DEADLINE_S)
        reply["exit_code"], reply["error"] = crash_report(raw)
        # The run's process died, or closed its status pipe and lived on; a failed set-up is the sandbox's.
        if raw is None or not (os.WIFEXITED(raw) and os.WEXITSTATUS(raw) == EXIT_SETUP_FAILED):
            reply["crash_cause"] = "code"
    else:
        reply["timed_out"] = True
        reply["error"] = {
            "name": "TimeoutError",
            "message": f"execution exceeded the time limit of {timeout_s:g} s and was killed",
            "traceback": "",
        }
    reply["stdout"] = capture.stdout.meta()
    reply["stderr"] = capture.stderr.meta()
    return reply


def payload(capture: Capture, reply: dict[str, Any]) -> list[memoryview]:
    """The raw bytes that follow the reply header: stdout, stderr, then the status frame."""
    views = capture.stdout.views() + capture.stderr.views()
    if reply.get("status") == "frame":
        views.append(capture.status.view())
    return views
