"""The shared sandbox contract, run against the local backend at each isolation level."""

from __future__ import annotations

import pytest
from contract import SandboxContract
from host_health import skip_without_namespace

from tool_env import SandboxConfig, create_sandbox

CONTRACT_CONFIG = dict(pool_size=2, max_output_chars=2000, timeout_s=20.0)


class TestLocalNamespaceContract(SandboxContract):
    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls):
        skip_without_namespace()
        with create_sandbox(SandboxConfig(isolation="namespace", **CONTRACT_CONFIG)) as sandbox:
            assert sandbox.isolation == "namespace"
            yield sandbox


class TestLocalRlimitContract(SandboxContract):
    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls):
        with create_sandbox(SandboxConfig(isolation="rlimit", **CONTRACT_CONFIG)) as sandbox:
            assert sandbox.isolation == "rlimit"
            yield sandbox
