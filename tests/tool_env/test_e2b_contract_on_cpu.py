"""The shared contract suite against the E2B backend, through the SDK's real client code.

E2B's cloud cannot be reached from CI, so the SDK talks HTTP to FakeE2BHttpServer, a FAKE of
E2B's REST API and code-interpreter server on loopback (tests/e2b_fakes.py): everything from
`E2BSandbox` down to the SDK's HTTP transport and its response parsing is the real code.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from contract import SandboxContract

from e2b_fakes import FakeE2BHttpServer
from tool_env import Sandbox, SandboxConfig, SandboxUnavailableError, create_sandbox
from tool_env.e2b import E2BSandbox

SDK_RETRIES = 3  # e2b.connection_config.DEFAULT_RETRIES


@pytest.fixture(scope="module")
def fake_e2b() -> Iterator[FakeE2BHttpServer]:
    server = FakeE2BHttpServer()
    patch = pytest.MonkeyPatch()
    patch.setenv("E2B_API_KEY", "e2b_test_key_not_real")
    patch.setenv("E2B_HTTP_VERSION", "1.1")  # the fake speaks HTTP/1.1 only
    yield server
    patch.undo()
    server.close()


def e2b_config(server: FakeE2BHttpServer, **extra: object) -> SandboxConfig:
    return SandboxConfig(
        backend="e2b",
        timeout_s=20.0,
        max_output_chars=2000,
        extra={"e2b_api_url": server.url, "e2b_sandbox_url": server.url, "e2b_retry_backoff_s": 0.0, **extra},
    )


class TestE2BContract(SandboxContract):
    """The promises every backend keeps, kept by the E2B adapter on the SDK's own client."""

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls, fake_e2b: FakeE2BHttpServer) -> Iterator[Sandbox]:
        with create_sandbox(e2b_config(fake_e2b)) as sandbox:
            assert isinstance(sandbox, E2BSandbox)
            yield sandbox


def test_every_session_gets_its_own_cloud_sandbox_and_kills_it(fake_e2b: FakeE2BHttpServer) -> None:
    with create_sandbox(e2b_config(fake_e2b)) as sandbox:
        before = fake_e2b.created
        with sandbox.session(stateful=False) as session:
            for n in range(3):
                assert session.run(f"print({n})").stdout == f"{n}\n"
        assert fake_e2b.created == before + 1  # one sandbox for the session's three runs
        assert fake_e2b.killed[-1] == f"fake{before + 1}"


def test_refusals_over_http_are_retried_then_mapped(fake_e2b: FakeE2BHttpServer) -> None:
    with create_sandbox(e2b_config(fake_e2b, e2b_create_retries=2)) as sandbox:
        # The SDK retries a 429/503 itself (1 + SDK_RETRIES tries); past that, ours back off longer.
        fake_e2b.refuse_next[:] = [429] * (1 + SDK_RETRIES) + [503] * (1 + SDK_RETRIES)
        assert sandbox.run("print('after retries')").stdout == "after retries\n"
        fake_e2b.refuse_next[:] = [401]
        refused = sandbox.run("print(1)")
        assert refused.error is not None and refused.error.name == "SandboxUnavailable"
        metrics = sandbox.metrics()
        assert metrics["e2b/create_retries"] == 2 and metrics["e2b/auth_failures"] == 1


def test_unreachable_e2b_fails_the_start_up_check(fake_e2b: FakeE2BHttpServer) -> None:
    closed_port = "http://127.0.0.1:9"  # discard port: nothing listens
    config = SandboxConfig(
        backend="e2b", extra={"e2b_api_url": closed_port, "e2b_sandbox_url": closed_port, "e2b_request_timeout_s": 2.0}
    )
    with create_sandbox(config) as sandbox, pytest.raises(SandboxUnavailableError, match="start-up check"):
        sandbox.check()
