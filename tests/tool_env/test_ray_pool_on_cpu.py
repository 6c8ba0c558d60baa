"""RaySandbox on a real local Ray cluster (2 CPUs) with 2 actors running the local backend.

Ray starts once per module (it is slow on small machines); every test shares one pool.
Tests that kill actors leave the pool healthy again, because recovery is what they check.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest
import ray
from contract import SandboxContract

from tool_env import SandboxClosedError, SandboxConfig, create_sandbox
from tool_env.ray import sessions as ray_sessions
from tool_env.ray import RayPoolOptions, RaySandbox

NODE_RESOURCE = "sandbox_cpu"  # a custom resource marks "CPU nodes for sandboxes"
TIMEOUT_S = 5.0


def actor_options() -> dict[str, object]:
    """Place actors on "sandbox nodes" when this cluster has them (ours does)."""
    if ray.cluster_resources().get(NODE_RESOURCE):
        return {"num_cpus": 0, "resources": {NODE_RESOURCE: 1}}
    return {"num_cpus": 0}  # a cluster started by someone else in this test session


def pool_config(**extra: object) -> SandboxConfig:
    return SandboxConfig(
        backend="ray",
        timeout_s=TIMEOUT_S,
        pool_size=1,
        extra={"ray_num_actors": 2, "ray_actor_options": actor_options(), **extra},
    )


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=2, include_dashboard=False, resources={NODE_RESOURCE: 4}, log_to_driver=False)
    yield
    if started_here:
        ray.shutdown()


@pytest.fixture(scope="module")
def pool(ray_cluster: None) -> Iterator[RaySandbox]:
    sandbox = create_sandbox(pool_config(ray_call_slack_s=5.0))
    assert isinstance(sandbox, RaySandbox)
    yield sandbox
    sandbox.close()


class TestRayPoolContract(SandboxContract):
    """The promises every backend keeps, kept through the pool too."""

    @pytest.fixture(scope="class")
    @classmethod
    def sandbox(cls, pool: RaySandbox) -> RaySandbox:
        return pool


def slot_of(result) -> int:  # type: ignore[no-untyped-def]
    return result.extra["ray_slot"]


# ---------------------------------------------------------------------------------------
# Running code through the pool
# ---------------------------------------------------------------------------------------


def test_runs_code_on_an_actor_and_returns_its_result(pool: RaySandbox) -> None:
    result = pool.run("print(6 * 7)")
    assert result.ok and result.stdout == "42\n"
    assert slot_of(result) in (0, 1) and result.extra["ray_overhead_s"] >= 0
    failed = pool.run("1 / 0")
    assert failed.error is not None and failed.error.name == "ZeroDivisionError"


def test_timeout_is_enforced_by_the_inner_backend(pool: RaySandbox) -> None:
    started = time.monotonic()
    result = pool.run("while True:\n    pass", timeout_s=1.0)
    assert result.timed_out and not result.ok
    assert time.monotonic() - started < 1.0 + 5.0


async def test_stateless_runs_spread_over_both_actors(pool: RaySandbox) -> None:
    results = await asyncio.gather(*(pool.arun(f"print({i})") for i in range(8)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]
    assert {slot_of(r) for r in results} == {0, 1}


def test_stateful_session_sticks_to_one_actor_and_keeps_state(pool: RaySandbox) -> None:
    with pool.session(stateful=True) as first, pool.session(stateful=True) as second:
        runs = [first.run("x = 41"), first.run("x += 1"), first.run("print(x)")]
        assert runs[-1].stdout == "42\n"
        assert len({slot_of(r) for r in runs}) == 1
        other = second.run("print('x' in globals())")
        assert other.stdout == "False\n"  # state never crosses sessions
        assert slot_of(other) != slot_of(runs[0])  # sessions are balanced over actors
    assert pool.run("print('x' in globals())").stdout == "False\n"


async def test_async_face_does_not_block_the_event_loop(pool: RaySandbox) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    async with pool.async_session(stateful=True) as session:
        result = await session.run("import time\ntime.sleep(1.0)\nprint('slept')")
    task.cancel()
    assert result.stdout == "slept\n"
    assert ticks >= 10  # the loop kept running while the actor worked


# ---------------------------------------------------------------------------------------
# Failures: dead and hung actors
# ---------------------------------------------------------------------------------------


def test_dead_actor_reports_worker_crashed_then_the_pool_recovers(pool: RaySandbox) -> None:
    restarts = pool.metrics()["ray/actor_restarts"]
    holder = pool.session(stateful=True)
    holder.run("secret = 1")
    slot = holder._route.slot  # type: ignore[attr-defined, union-attr]
    others = [pool.session(stateful=True) for _ in range(2)]  # sessions balance: one lands on `slot`
    bystander = next(s for s in others if s._route.slot == slot)  # type: ignore[attr-defined, union-attr]
    bystander.run("mine = 2")

    ray.kill(pool.actor_handles()[slot], no_restart=True)

    crashed = holder.run("print(secret)")
    assert crashed.error is not None and crashed.error.name == "WorkerCrashed"
    fresh = holder.run("print('secret' in globals())")
    assert fresh.ok and fresh.stdout == "False\n"  # state died with the actor; the session goes on
    lost = bystander.run("print(mine)")  # its state died too: told once, not silently reset
    assert lost.error is not None and lost.error.name == "WorkerCrashed"
    assert bystander.run("print(1)").stdout == "1\n"
    holder.close()
    for other in others:
        other.close()
    assert pool.metrics()["ray/actor_restarts"] == restarts + 1
    assert {slot_of(pool.run("print(0)")) for _ in range(4)} == {0, 1}


async def test_actor_killed_mid_run_answers_promptly(pool: RaySandbox) -> None:
    async with pool.async_session(stateful=True) as session:
        await session.run("pass")
        slot = session._route.slot  # type: ignore[attr-defined, union-attr]
        running = asyncio.create_task(session.run("import time\ntime.sleep(30)"))
        await asyncio.sleep(1.0)
        started = time.monotonic()
        ray.kill(pool.actor_handles()[slot], no_restart=True)
        result = await asyncio.wait_for(running, timeout=20)
    assert result.error is not None and result.error.name == "WorkerCrashed"
    assert time.monotonic() - started < 20
    assert (await pool.arun("print(3)")).stdout == "3\n"


def test_hung_actor_is_declared_crashed_and_replaced(pool: RaySandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_sessions, "PING_TIMEOUT_S", 1.0)
    session = pool.session(stateful=True)
    session.run("pass")
    slot = session._route.slot  # type: ignore[attr-defined, union-attr]
    pid = ray.get(pool.actor_handles()[slot].process_id.remote())
    os.kill(pid, signal.SIGSTOP)  # alive but unresponsive: the worst case for a caller
    try:
        started = time.monotonic()
        result = session.run("print(1)", timeout_s=1.0)
        waited = time.monotonic() - started
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert result.error is not None and result.error.name == "WorkerCrashed"
    assert "stopped answering" in result.error.message
    assert waited < 1.0 + 5.0 + 1.0 + 5.0  # timeout + slack + ping + scheduling margin
    assert session.run("print(2)").stdout == "2\n"
    session.close()


# ---------------------------------------------------------------------------------------
# Metrics, placement, Ray initialisation, configuration
# ---------------------------------------------------------------------------------------


def test_metrics_aggregate_over_actors(pool: RaySandbox) -> None:
    before = pool.metrics()
    for i in range(4):
        pool.run(f"print({i})")
    after = pool.metrics()
    assert after["sandbox/runs"] == before["sandbox/runs"] + 4
    assert after["ray/actors"] == 2 and after["ray/in_flight"] == 0
    inner_runs = [k for k in after if k.startswith("ray/inner/") and k.endswith("runs")]
    assert inner_runs, sorted(after)
    assert all(isinstance(v, float) for v in after.values())


def test_actors_are_placed_by_the_configured_resource(pool: RaySandbox) -> None:
    if "resources" not in pool.options.actor_options:
        pytest.skip("this Ray cluster was started without the sandbox-node resource")
    nodes = ray.get([actor.ready.remote() for actor in pool.actor_handles()])
    assert len(nodes) == 2
    available = ray.available_resources().get(NODE_RESOURCE, 0)
    assert available <= 4 - 2  # each actor holds one unit of the sandbox-node resource


def test_unsatisfiable_placement_fails_at_construction(ray_cluster: None) -> None:
    config = SandboxConfig(
        backend="ray",
        extra={"ray_num_actors": 1, "ray_actor_options": {"resources": {"no_such_node": 1}}, "ray_start_timeout_s": 2},
    )
    with pytest.raises(RuntimeError, match="ray_actor_options"):
        RaySandbox(config)


def test_joins_an_initialised_ray_instead_of_starting_one(ray_cluster: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_init(**kwargs: object) -> None:
        raise AssertionError("ray.init must not be called when Ray is already initialised")

    monkeypatch.setattr(ray, "init", no_init)
    sandbox = RaySandbox(pool_config(ray_num_actors=1))
    try:
        assert sandbox.run("print('joined')").stdout == "joined\n"
    finally:
        sandbox.close()


def test_initialises_ray_when_needed(ray_cluster: None, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, object]] = []
    answers = iter([False])  # not initialised when RaySandbox asks; initialised afterwards
    monkeypatch.setattr(ray, "is_initialized", lambda: next(answers, True))
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    sandbox = RaySandbox(pool_config(ray_num_actors=1, ray_init_kwargs={"num_cpus": 2}))
    sandbox.close()
    assert calls == [{"num_cpus": 2}]


def test_closed_pool_refuses_work(ray_cluster: None) -> None:
    sandbox = RaySandbox(pool_config(ray_num_actors=1))
    session = sandbox.session(stateful=True)
    sandbox.close()
    with pytest.raises(SandboxClosedError):
        session.run("print(1)")
    with pytest.raises(SandboxClosedError):
        sandbox.session()
    session.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ray_num_actor": 2}, "ray_num_actor"),
        ({"ray_num_actors": 0}, "ray_num_actors"),
        ({"inner_backend": "ray"}, "inner_backend"),
        ({"ray_call_slack_s": 0}, "ray_call_slack_s"),
    ],
)
def test_bad_options_are_rejected_by_name(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RayPoolOptions.from_extra(extra)


def test_first_run_after_a_lost_actor_says_the_session_restarted(pool: RaySandbox) -> None:
    with pool.session(stateful=True) as session:
        assert "session_restarted" not in session.run("x = 1").extra
        ray.kill(pool.actor_handles()[session._route.slot], no_restart=True)  # type: ignore[attr-defined, union-attr]
        assert session.run("print(x)").error.name == "WorkerCrashed"
        fresh = session.run("print('x' in globals())")
        assert fresh.stdout == "False\n" and fresh.extra.get("session_restarted") is True  # like the local backend
        assert "session_restarted" not in session.run("print(1)").extra


def test_actor_starts_no_more_workers_than_the_cpus_it_reserved(ray_cluster: None) -> None:
    config = SandboxConfig(
        backend="ray", pool_size=4, timeout_s=TIMEOUT_S, extra={"ray_num_actors": 1, "ray_actor_options": {"num_cpus": 1}}
    )
    with create_sandbox(config) as sandbox:
        (actor,) = sandbox.actor_handles()
        assert ray.get(actor.pool_size.remote()) == 1
        assert sandbox.run("print(2)").stdout == "2\n"
