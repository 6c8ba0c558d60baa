"""The fork-per-call floor: the simplest warm-zygote sandbox, as a reference for the benchmark.

What a peer harness calls "fork-per-call (warm zygote, rlimits, no namespaces)": one warm
interpreter per pool slot with the same preloads as the local sandbox, which per call forks
a child (`os.fork`), sets rlimits, runs the code with its stdout and stderr on a pipe, and
reaps it. No namespaces, no seccomp, no scratch reset, no prefork, no output limits: it is
not a sandbox, only the cost of the fork-per-run design itself on this machine, so the
benchmark can show what isolation adds on top and what ratio the design reaches here.

    pool = ForkFloor(slots=2)
    pool.run("print(1 + 1)")  # -> "2\n"
    pool.close()

Run as ``python -m tool_env.fork_floor <preload,...>`` it is one slot's server: requests and
replies are a 4-byte big-endian length and UTF-8 bytes on stdin and stdout.
"""

from __future__ import annotations

import gc
import os
import queue
import resource
import struct
import subprocess
import sys
from typing import BinaryIO

from tool_env.config import SandboxConfig

_LENGTH = struct.Struct(">I")


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("fork floor: the other side closed the channel")
    return data


def _read_message(stream: BinaryIO) -> bytes:
    return _read_exactly(stream, _LENGTH.unpack(_read_exactly(stream, _LENGTH.size))[0])


def _write_message(stream: BinaryIO, payload: bytes) -> None:
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _child(code: bytes, write_end: int, config: SandboxConfig) -> None:
    """In the forked child: rlimits, output on the pipe, run, exit without cleanup."""
    status = 0
    try:
        resource.setrlimit(resource.RLIMIT_AS, (config.memory_mb << 20,) * 2)
        resource.setrlimit(resource.RLIMIT_CPU, (config.cpu_time_s,) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (config.max_file_mb << 20,) * 2)
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        exec(compile(code, "<run>", "exec"), {"__name__": "__main__"})
    except BaseException:  # noqa: BLE001 - the floor reports nothing but output and exit
        status = 1
    finally:
        sys.stdout.flush()
        os._exit(status)


def serve(preload: list[str]) -> None:
    """One slot: import the preloads once, then fork a child per request."""
    for name in preload:
        __import__(name)
    gc.collect()
    gc.freeze()
    config = SandboxConfig()
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            code = _read_message(requests)
        except EOFError:
            return
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _child(code, write_end, config)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as output:
            out = output.read()
        os.waitpid(pid, 0)
        _write_message(replies, out)


class ForkFloor:
    """`slots` fork-per-call servers; `run` is thread-safe and blocks for a free slot."""

    def __init__(self, slots: int, preload: tuple[str, ...] | None = None) -> None:
        modules = ",".join(SandboxConfig().preload_modules if preload is None else preload)
        self._idle: queue.Queue[subprocess.Popen[bytes]] = queue.Queue()
        self._servers = [
            subprocess.Popen([sys.executable, "-m", __name__, modules], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for _ in range(slots)
        ]
        for server in self._servers:
            self._idle.put(server)

    def run(self, code: str) -> str:
        server = self._idle.get()
        try:
            assert server.stdin is not None and server.stdout is not None
            _write_message(server.stdin, code.encode())
            return _read_message(server.stdout).decode(errors="replace")
        finally:
            self._idle.put(server)

    def close(self) -> None:
        for server in self._servers:
            if server.stdin is not None:
                server.stdin.close()
        for server in self._servers:
            server.wait()

    def __enter__(self) -> "ForkFloor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    serve([name for name in sys.argv[1].split(",") if name])
