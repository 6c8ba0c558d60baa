"""E2B cloud backend: every session owns one E2B sandbox, never shared between trajectories.

A stateful session runs all its code in the sandbox's default Jupyter kernel, so variables
persist. A stateless session runs each snippet in a fresh kernel context that is removed
afterwards, so no variable leaks from one run to the next (the session's disk is shared by
its runs, never by other sessions). The cloud sandbox is created on the
first run (opening and closing an unused session costs nothing) and killed when the session
closes, when it breaks, and when the E2BSandbox closes; its E2B lifetime is the session TTL,
so a leaked session dies on its own.

Options in `SandboxConfig.extra` (all optional):
    e2b_api_key_env        environment variable holding the API key (default E2B_API_KEY)
    e2b_template           sandbox template (default: the SDK's code-interpreter template)
    e2b_request_timeout_s  connect / control-plane timeout per request (default 30)
    e2b_allow_internet     let sandboxed code reach the internet (default False)
    e2b_create_retries     retries of a create refused with 429/503 (default 4)
    e2b_retry_backoff_s    first backoff between those retries, doubled each time (default 1)
    e2b_api_url / e2b_sandbox_url   a self-hosted E2B API (default: the SDK's; E2B_API_URL works too)

Modules: `options` (the keys above), `results` (the SDK's types and exceptions mapped onto
ExecutionResult), `cloud` (the network boundary), `session` (one core, sync and async faces),
`sandbox` (the backend object).
"""

from tool_env.e2b.cloud import E2BCloud
from tool_env.e2b.options import E2BOptions, read_api_key
from tool_env.e2b.results import result_from_execution, result_from_failure
from tool_env.e2b.sandbox import E2BSandbox
from tool_env.e2b.session import AsyncE2BSession, E2BSession

__all__ = [
    "AsyncE2BSession",
    "E2BCloud",
    "E2BOptions",
    "E2BSandbox",
    "E2BSession",
    "read_api_key",
    "result_from_execution",
    "result_from_failure",
]
