"""The `e2b_*` options of SandboxConfig.extra, validated, and the API key lookup."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tool_env.base import SandboxUnavailableError

DEFAULT_API_KEY_ENV = "E2B_API_KEY"
DEFAULT_REQUEST_TIMEOUT_S = 30.0
DEFAULT_CREATE_RETRIES = 4  # retries of a refused create (429 rate limit, 503 busy), with backoff
DEFAULT_RETRY_BACKOFF_S = 1.0  # first wait; doubles per retry (with jitter), capped below
MAX_RETRY_BACKOFF_S = 30.0


@dataclass(frozen=True)
class E2BOptions:
    """The `e2b_*` keys of SandboxConfig.extra, validated."""

    api_key_env: str = DEFAULT_API_KEY_ENV
    template: str | None = None
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    allow_internet: bool = False
    create_retries: int = DEFAULT_CREATE_RETRIES
    retry_backoff_s: float = DEFAULT_RETRY_BACKOFF_S
    api_url: str | None = None  # a self-hosted E2B (or a local double in tests); default: the SDK's
    sandbox_url: str | None = None

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> E2BOptions:
        known = {f"e2b_{name}" for name in cls.__dataclass_fields__}
        unknown = sorted(k for k in extra if k.startswith("e2b_") and k not in known)
        if unknown:
            raise ValueError(f"unknown E2B options {unknown} in SandboxConfig.extra; known: {sorted(known)}")
        options = cls(**{k[len("e2b_") :]: v for k, v in extra.items() if k in known})
        if not options.api_key_env or not isinstance(options.api_key_env, str):
            raise ValueError("SandboxConfig.extra['e2b_api_key_env'] must name an environment variable")
        if not options.request_timeout_s > 0:
            raise ValueError(
                f"SandboxConfig.extra['e2b_request_timeout_s'] must be > 0, got {options.request_timeout_s}"
            )
        if isinstance(options.create_retries, bool) or not isinstance(options.create_retries, int) or options.create_retries < 0:
            raise ValueError(
                f"SandboxConfig.extra['e2b_create_retries'] must be an int >= 0, got {options.create_retries!r}"
            )
        if not options.retry_backoff_s >= 0:
            raise ValueError(
                f"SandboxConfig.extra['e2b_retry_backoff_s'] must be >= 0, got {options.retry_backoff_s}"
            )
        return options


def read_api_key(options: E2BOptions) -> str:
    """The API key from the environment, or an error that says exactly what to set."""
    key = os.environ.get(options.api_key_env, "").strip()
    if not key:
        raise SandboxUnavailableError(
            f"the E2B backend needs an API key: set the environment variable {options.api_key_env} "
            "(get a key at https://e2b.dev/dashboard; the variable name is configurable with "
            "SandboxConfig.extra['e2b_api_key_env'])"
        )
    return key
