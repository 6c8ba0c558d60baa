"""Worker processes that run with a fixed string-hash seed, so set iteration order is the same in every build.

Some Reasoning-Gym generators draw from the iteration order of sets of strings, which follows
Python's per-process hash seed (see `r1ci_verl.data.build`). A worker here is a fresh
interpreter started with ``PYTHONHASHSEED`` fixed and this checkout's ``sys.path``. Unlike
`multiprocessing`'s spawn start method, it never re-imports the caller's ``__main__`` (a
console script or a user's script without a ``__main__`` guard would run again). Jobs and
results travel as length-prefixed pickles over the worker's stdin/stdout; anything the job
prints goes to the worker's stderr.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import Any, BinaryIO, Callable

PINNED_HASH_SEED = "0"
_HEADER = struct.Struct(">Q")
_STOP = None


def hash_seed_pinned() -> bool:
    """Whether this interpreter hashes strings as one started with ``PYTHONHASHSEED=0`` does."""
    return sys.flags.hash_randomization == 0


class WorkerDied(RuntimeError):
    """A worker process exited while running a job (killed, out of memory, crashed)."""


def _send(stream: BinaryIO, payload: Any) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class PinnedHashPool:
    """`workers` long-lived worker processes; `submit` returns a `Future`, results keep no order of their own."""

    def __init__(self, workers: int) -> None:
        self._jobs: queue.Queue = queue.Queue()
        env = {**os.environ, "PYTHONHASHSEED": PINNED_HASH_SEED,
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}  # fmt: skip
        self._processes = [
            subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
            for _ in range(workers)
        ]
        self._threads = [threading.Thread(target=self._feed, args=(p,), daemon=True) for p in self._processes]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        self._jobs.put((fn, args, future))
        return future

    def _feed(self, process: subprocess.Popen) -> None:
        while True:
            item = self._jobs.get()
            if item is _STOP:
                return
            fn, args, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                _send(process.stdin, (fn, args))
                ok, value = _receive(process.stdout)
            except (EOFError, BrokenPipeError, OSError):
                future.set_exception(WorkerDied(f"a build worker process exited (status {process.poll()})"))
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def shutdown(self) -> None:
        """Cancel queued jobs, stop the workers and wait for them (killing any that hang)."""
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                item[2].cancel()
        for _ in self._threads:
            self._jobs.put(_STOP)
        for process in self._processes:
            try:
                process.stdin.close()
            except OSError:
                pass
        for process, thread in zip(self._processes, self._threads):
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            thread.join(timeout=5)
            process.stdout.close()

    def __enter__(self) -> "PinnedHashPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _serve() -> None:
    """The worker's loop: read a job, run it, write the result; until stdin closes."""
    results = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a job's prints must not corrupt the results stream
    jobs = sys.stdin.buffer
    while True:
        try:
            fn, args = _receive(jobs)
        except EOFError:
            return
        try:
            reply = (True, fn(*args))
        except Exception as exc:  # handed to the caller, which reports it
            reply = (False, _picklable(exc))
        _send(results, reply)


if __name__ == "__main__":
    _serve()
