"""The shared sandbox contract, run against the local backend at each isolation level."""

from __future__ import annotations

import pytest
from contract import SandboxContract

from tool_env import SandboxConfig, create_sandbox
from tool_env.local.isolation import namespace_problem

CONTRACT_CONFIG = dict(pool_size=2, max_output_chars=2000, timeout_s=20.0)


class TestLocalNamespaceContract(SandboxContract):
    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls):
        problem = namespace_problem()
        if problem is not None:
            pytest.skip(f"namespace isolation unavailable here: {problem}")
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
