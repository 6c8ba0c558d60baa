"""What the offline commands (`potential`, `eval`, `sft synth`) share around their sampling loop.

Each checks the model client before any work, opens a sandbox only when code will run, and on
the way out - also after a failure or Ctrl-C - reports retried requests in one line and closes
the client and the sandbox. Failed answers end the run with one resumable error.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from r1ci_verl.cli.errors import RunError
from r1ci_verl.cli.rollout_args import check_client, open_sandbox


@asynccontextmanager
async def client_and_sandbox(args: argparse.Namespace, client: Any, log: logging.Logger,
                             *, with_sandbox: bool) -> AsyncIterator[Callable[[], Any] | None]:
    """Check `client`, open a sandbox if `with_sandbox`; yield its session factory (None without one)."""
    sandbox = None
    try:
        await check_client(client)
        if with_sandbox:
            sandbox = open_sandbox(args)
        yield (lambda: sandbox.async_session()) if sandbox is not None else None
    finally:
        retries = client.usage.retry_line()
        if retries:
            log.warning("%s", retries)
        await client.aclose()
        if sandbox is not None:
            sandbox.close()


def raise_if_failed(failures: int) -> None:
    """Failed answers stay out of the results file, so the same command retries them."""
    if failures:
        raise RunError(f"{failures} answers failed (see above); rerun the same command to retry them")


def usage_line(client: Any) -> str:
    """Requests and tokens of a finished run, for its closing log line."""
    u = client.usage
    return f"{u.requests} requests, {u.prompt_tokens} prompt + {u.completion_tokens} completion tokens"
