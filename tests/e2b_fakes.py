"""FAKES of E2B's network boundary (its cloud cannot be reached from tests), named as such.

The fake sandboxes speak the code-interpreter server's wire format (JSON lines) and let the
SDK's own `parse_output` build the `Execution`, `Logs`, `Result` and `ExecutionError`
objects, so the adapter is tested on exactly what the SDK hands it. Timeouts and dead
sandboxes are the SDK's own exceptions. Tests import this module as `e2b_fakes`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

from e2b import SandboxNotRunningException
from e2b_code_interpreter import Execution
from e2b_code_interpreter.models import Context, parse_output

from tool_env.base import HEALTH_CHECK_CODE, HEALTH_CHECK_OUTPUT
from tool_env.e2b import E2BCloud

# ---------------------------------------------------------------------------------------
# Fakes of the network boundary
# ---------------------------------------------------------------------------------------


def stdout(text: str) -> str:
    return json.dumps({"type": "stdout", "text": text, "timestamp": 0})


def stderr(text: str) -> str:
    return json.dumps({"type": "stderr", "text": text, "timestamp": 0})


def error(name: str, value: str, traceback: str) -> str:
    return json.dumps({"type": "error", "name": name, "value": value, "traceback": traceback})


def displayed(text: str) -> str:
    return json.dumps({"type": "result", "text": text, "is_main_result": True})


# A script maps code to what the server streams back; an exception instance in the list is
# raised after the lines before it were streamed (e.g. an SDK timeout mid-execution).
Script = Callable[[str], list[Any]]


def echo_script(code: str) -> list[Any]:
    if code == HEALTH_CHECK_CODE:  # the backend's start-up check
        return [stdout(f"{HEALTH_CHECK_OUTPUT}\n")]
    return [stdout(f"ran {code}\n")]


class FakeE2BCloudSandbox:
    """FAKE of `e2b_code_interpreter.Sandbox`: records calls, answers via a script."""

    def __init__(self, sandbox_id: str, script: Script) -> None:
        self.sandbox_id = sandbox_id
        self.script = script
        self.killed = False
        self.calls: list[dict[str, Any]] = []
        self.contexts_created: list[Context] = []
        self.contexts_removed: list[str] = []
        self._context_ids = itertools.count()

    def run_code(self, code: str, context: Context | None = None, on_stdout=None, on_stderr=None, **kw: Any):
        if self.killed:
            raise SandboxNotRunningException("sandbox was killed")
        self.calls.append({"code": code, "context": context.id if context else None, **kw})
        execution = Execution()
        for item in self.script(code):
            if isinstance(item, BaseException):
                raise item
            parse_output(execution, item, on_stdout=on_stdout, on_stderr=on_stderr)
        return execution

    def create_code_context(self) -> Context:
        context = Context(context_id=f"ctx-{next(self._context_ids)}", language="python", cwd="/home/user")
        self.contexts_created.append(context)
        return context

    def remove_code_context(self, context: Context) -> None:
        self.contexts_removed.append(context.id)

    def kill(self) -> bool:
        self.killed = True
        return True


class FakeAsyncE2BCloudSandbox:
    """FAKE of `e2b_code_interpreter.AsyncSandbox`: the sync fake behind async methods."""

    def __init__(self, inner: FakeE2BCloudSandbox) -> None:
        self.inner = inner
        self.sandbox_id = inner.sandbox_id

    async def run_code(self, code: str, **kw: Any):
        await asyncio.sleep(0)
        return self.inner.run_code(code, **kw)

    async def create_code_context(self) -> Context:
        return self.inner.create_code_context()

    async def remove_code_context(self, context: Context) -> None:
        self.inner.remove_code_context(context)

    async def kill(self) -> bool:
        return self.inner.kill()

    @property
    def killed(self) -> bool:
        return self.inner.killed


class FakeE2BCloud(E2BCloud):
    """FAKE of the SDK's create/kill entry points; keeps every sandbox it made."""

    def __init__(self, script: Script = echo_script) -> None:
        self.script = script
        self.created: list[Any] = []
        self.api_keys: list[str] = []
        self.killed_by_id: list[str] = []

    def create(self, api_key: str) -> FakeE2BCloudSandbox:
        self.api_keys.append(api_key)
        self.created.append(FakeE2BCloudSandbox(f"sbx-{len(self.created)}", self.script))
        return self.created[-1]

    async def acreate(self, api_key: str) -> FakeAsyncE2BCloudSandbox:
        self.api_keys.append(api_key)
        self.created.append(FakeAsyncE2BCloudSandbox(FakeE2BCloudSandbox(f"sbx-{len(self.created)}", self.script)))
        return self.created[-1]

    def kill_by_id(self, sandbox_id: str, api_key: str) -> None:
        self.killed_by_id.append(sandbox_id)




# ---------------------------------------------------------------------------------------
# FAKE of E2B's HTTP API on loopback, for the SDK's real client code
# ---------------------------------------------------------------------------------------

# The "kernel": a persistent interpreter per code context, as Jupyter keeps one. It reads one
# JSON request per line, runs the code in its namespace, and answers with the code-interpreter
# server's JSON lines (stdout/stderr chunks as they are written, an error as data, SystemExit
# reported as an error like IPython does), then a private end marker.
FAKE_KERNEL_SOURCE = r'''
import io, json, os, sys, threading, time, traceback
OUT = os.fdopen(os.dup(1), "w", buffering=1)
LOCK = threading.Lock()
def emit(message):
    with LOCK:
        OUT.write(json.dumps(message) + "\n"); OUT.flush()
class Stream(io.TextIOBase):
    def __init__(self, name):
        self.name, self.pending, self.buffer = name, [], self
    def write(self, text):
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        with LOCK:
            self.pending.append(text)
        return len(text)
    def flush_pending(self):
        with LOCK:
            text, self.pending = "".join(self.pending), []
        if text:
            emit({"type": self.name, "text": text, "timestamp": 0})
STREAMS = [Stream("stdout"), Stream("stderr")]
def flusher():
    while True:
        time.sleep(0.02)
        for s in STREAMS: s.flush_pending()
threading.Thread(target=flusher, daemon=True).start()
namespace = {"__name__": "__main__"}
for line in sys.stdin:
    request = json.loads(line)
    sys.stdout, sys.stderr = STREAMS
    saved_stdin, sys.stdin = sys.stdin, io.StringIO("")
    error = None
    try:
        exec(compile(request["code"], "<cell>", "exec"), namespace)
    except SystemExit as exc:
        error = {"type": "error", "name": "SystemExit", "value": str(exc.code if exc.code is not None else 0),
                 "traceback": "SystemExit: %s" % exc.code}
    except BaseException as exc:
        error = {"type": "error", "name": type(exc).__name__, "value": str(exc),
                 "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next))}
    finally:
        sys.stdout, sys.stderr, sys.stdin = sys.__stdout__, sys.__stderr__, saved_stdin
    for s in STREAMS: s.flush_pending()
    if error: emit(error)
    emit({"type": "end_of_execution"})
    emit({"type": "__fake_done__"})
'''


class _FakeKernel:
    """FAKE Jupyter kernel: one interpreter subprocess in the sandbox's work dir."""

    def __init__(self, cwd: str) -> None:
        import subprocess
        import sys

        self.proc = subprocess.Popen(
            [sys.executable, "-c", FAKE_KERNEL_SOURCE], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, bufsize=0,
        )

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class FakeE2BHttpServer:
    """FAKE of E2B's control-plane REST API and code-interpreter server, on 127.0.0.1.

    Point the real SDK at it with ``e2b_api_url`` and ``e2b_sandbox_url`` (and
    E2B_HTTP_VERSION=1.1: this server speaks HTTP/1.1 only). Serves POST /v2/sandboxes,
    DELETE /sandboxes/{id}, POST /execute (streamed JSON lines), POST /contexts and
    DELETE /contexts/{id}; the sandbox is named by the E2b-Sandbox-Id header as the SDK sends
    it. A client that disconnects mid-execution (the SDK's timeout) gets its kernel killed.
    `refuse_next` queues HTTP statuses (401, 429, 503) for the next creates.
    """

    def __init__(self) -> None:
        import http.server
        import tempfile

        self.root = tempfile.TemporaryDirectory(prefix="fake-e2b-")
        self.sandboxes: dict[str, dict[str, Any]] = {}  # id -> {"dir", "kernels": {context: kernel}}
        self.created = 0
        self.killed: list[str] = []
        self.refuse_next: list[int] = []
        self._lock = __import__("threading").Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.startswith("/v2/sandboxes"):
                    fake._create(self)
                elif self.path == "/execute":
                    fake._execute(self, body)
                elif self.path == "/contexts":
                    fake._new_context(self)
                else:
                    fake._reply(self, 404, {"message": f"no route {self.path}"})

            def do_DELETE(self) -> None:
                if self.path.startswith("/sandboxes/"):
                    fake._kill(self, self.path.rsplit("/", 1)[-1])
                elif self.path.startswith("/contexts/"):
                    fake._remove_context(self, self.path.rsplit("/", 1)[-1])
                else:
                    fake._reply(self, 404, {"message": f"no route {self.path}"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = __import__("threading").Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for sandbox in list(self.sandboxes.values()):
            for kernel in sandbox["kernels"].values():
                kernel.kill()
        self.root.cleanup()

    # -- routes ---------------------------------------------------------------------------
    @staticmethod
    def _reply(handler: Any, status: int, payload: Any = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _create(self, handler: Any) -> None:
        import os

        with self._lock:
            if self.refuse_next:
                status = self.refuse_next.pop(0)
                return self._reply(handler, status, {"code": status, "message": "refused by the fake"})
            self.created += 1
            sandbox_id = f"fake{self.created}"
            workdir = os.path.join(self.root.name, sandbox_id)
            os.makedirs(workdir)
            self.sandboxes[sandbox_id] = {"dir": workdir, "kernels": {}}
        self._reply(handler, 201, {"templateID": "code-interpreter-v1", "sandboxID": sandbox_id,
                                   "clientID": "fake", "envdVersion": "0.2.0", "domain": None})

    def _kill(self, handler: Any, sandbox_id: str) -> None:
        with self._lock:
            sandbox = self.sandboxes.pop(sandbox_id, None)
        if sandbox is None:
            return self._reply(handler, 404, {"code": 404, "message": "sandbox not found"})
        self.killed.append(sandbox_id)
        for kernel in sandbox["kernels"].values():
            kernel.kill()
        self._reply(handler, 204)

    def _sandbox(self, handler: Any) -> dict[str, Any] | None:
        sandbox = self.sandboxes.get(handler.headers.get("E2b-Sandbox-Id", ""))
        if sandbox is None:
            self._reply(handler, 502, {"message": "sandbox not found"})
        return sandbox

    def _new_context(self, handler: Any) -> None:
        if (sandbox := self._sandbox(handler)) is None:
            return
        context_id = f"ctx{len(sandbox['kernels']) + 1}"
        sandbox["kernels"][context_id] = _FakeKernel(sandbox["dir"])
        self._reply(handler, 200, {"id": context_id, "language": "python", "cwd": sandbox["dir"]})

    def _remove_context(self, handler: Any, context_id: str) -> None:
        if (sandbox := self._sandbox(handler)) is None:
            return
        kernel = sandbox["kernels"].pop(context_id, None)
        if kernel is not None:
            kernel.kill()
        self._reply(handler, 200)

    def _execute(self, handler: Any, body: dict[str, Any]) -> None:
        import os
        import select

        if (sandbox := self._sandbox(handler)) is None:
            return
        context_id = body.get("context_id") or "default"
        kernel = sandbox["kernels"].get(context_id)
        if kernel is None or kernel.proc.poll() is not None:
            kernel = sandbox["kernels"][context_id] = _FakeKernel(sandbox["dir"])
        handler.send_response(200)
        handler.send_header("Content-Type", "application/x-ndjson")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        kernel.proc.stdin.write((json.dumps({"code": body["code"]}) + "\n").encode())
        client, out_fd, pending, done = handler.connection, kernel.proc.stdout.fileno(), b"", False
        try:
            while not done:
                ready, _, _ = select.select([out_fd, client], [], [], 1.0)
                if client in ready and not client.recv(1, __import__("socket").MSG_PEEK):
                    raise ConnectionError("client went away")  # the SDK timed out: interrupt
                if out_fd not in ready:
                    continue
                data = os.read(out_fd, 1 << 16)
                if not data:
                    break  # the kernel died
                pending += data
                *lines, pending = pending.split(b"\n")
                chunk = b""
                for line in lines:
                    if b'"__fake_done__"' in line:
                        done = True
                        break
                    chunk += line + b"\n"
                if chunk:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (ConnectionError, OSError):
            kernel.kill()
            sandbox["kernels"].pop(context_id, None)
            handler.close_connection = True
