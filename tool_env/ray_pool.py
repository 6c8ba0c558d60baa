"""Ray pool backend: run sandboxed code in Ray actors on CPU nodes, away from the GPU workers.

R1-CI's systems finding: executing code on separate CPU nodes, overlapped with GPU work,
cut RL time from about 4500 to 1845 GPU-hours. Each `SandboxActor` owns an inner backend
(local by default) on whatever node Ray places it; `RaySandbox` is the caller's handle.

Routing: a stateful session is bound to one actor for its lifetime (that actor holds its
interpreter state); stateless runs go to the least-loaded actor. A call never hangs on a
dead actor: past the run's timeout plus `ray_call_slack_s` the caller pings the actor and
keeps waiting only while it answers (its inner backend enforces the code timeout; the extra
time is queueing). An actor that dies or stops answering is replaced; the run reports
`WorkerCrashed`, and so does the next run of every stateful session whose state died with it.

Options in `SandboxConfig.extra` (all optional):
    ray_num_actors      actors in the pool (default 2)
    ray_actor_options   passed to `.options()` of each actor: num_cpus, resources,
                        scheduling_strategy, runtime_env, ... (default {"num_cpus": 1})
    inner_backend       backend each actor runs: "local" (default) or "e2b"
    ray_call_slack_s    seconds a call may take beyond its code timeout (default 60)
    ray_start_timeout_s seconds to wait for the pool to come up at construction (default 300)
    ray_init_kwargs     passed to `ray.init()` when Ray is not initialised yet (default {})
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from tool_env.base import AsyncSession, Sandbox, SandboxClosedError, Session, check_timeout, validate_code
from tool_env.config import BACKENDS, SandboxConfig
from tool_env.metrics import SandboxMetrics
from tool_env.result import ExecutionError, ExecutionResult

logger = logging.getLogger(__name__)

CRASHED = "WorkerCrashed"
METRICS_TIMEOUT_S = 10.0  # metrics() skips actors that do not answer within this
CLOSE_TIMEOUT_S = 10.0  # closing a remote session waits at most this
PING_TIMEOUT_S = 10.0  # an actor past its call deadline must answer a ping within this to be waited for


@dataclass(frozen=True)
class RayPoolOptions:
    """The Ray keys of SandboxConfig.extra, validated."""

    num_actors: int = 2
    actor_options: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 1})
    inner_backend: str = "local"
    call_slack_s: float = 60.0
    start_timeout_s: float = 300.0
    init_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> RayPoolOptions:
        keys = {f"ray_{name}": name for name in cls.__dataclass_fields__ if name != "inner_backend"}
        keys["inner_backend"] = "inner_backend"
        unknown = sorted(k for k in extra if k.startswith("ray_") and k not in keys)
        if unknown:
            raise ValueError(f"unknown Ray pool options {unknown} in SandboxConfig.extra; known: {sorted(keys)}")
        values = {name: extra[key] for key, name in keys.items() if key in extra}
        for name in ("actor_options", "init_kwargs"):
            if name in values:
                values[name] = dict(values[name])  # OmegaConf nodes -> plain dicts Ray accepts
        options = cls(**values)
        if not isinstance(options.num_actors, int) or isinstance(options.num_actors, bool) or options.num_actors < 1:
            raise ValueError(f"SandboxConfig.extra['ray_num_actors'] must be an int >= 1, got {options.num_actors!r}")
        if options.inner_backend not in BACKENDS or options.inner_backend == "ray":
            raise ValueError(
                f"SandboxConfig.extra['inner_backend']={options.inner_backend!r}: expected one of "
                f"{[b for b in BACKENDS if b != 'ray']}"
            )
        for name in ("call_slack_s", "start_timeout_s"):
            if not getattr(options, name) > 0:
                raise ValueError(f"SandboxConfig.extra['ray_{name}'] must be > 0, got {getattr(options, name)}")
        return options


class SandboxActor:
    """Runs on a (CPU) node: one inner backend plus the stateful sessions routed here.

    All methods are coroutines, so Ray runs this as an asyncio actor: many runs overlap,
    limited only by the inner backend's own pool.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        from tool_env import create_sandbox

        self._config = SandboxConfig.from_mapping(config)
        self._sandbox = create_sandbox(self._config)
        self._sessions: dict[str, AsyncSession] = {}
        self._last_used: dict[str, float] = {}
        self._last_sweep = time.monotonic()

    async def ready(self) -> str:
        """The node this actor landed on (lets callers check placement)."""
        return ray.get_runtime_context().get_node_id()

    async def process_id(self) -> int:
        return os.getpid()

    async def run(self, session_id: str | None, code: str, timeout_s: float | None) -> ExecutionResult:
        await self._close_idle_sessions()
        if session_id is None:
            return await self._sandbox.arun(code, timeout_s)
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = self._sandbox.async_session(stateful=True)
        self._last_used[session_id] = math.inf  # never idle while running
        try:
            return await session.run(code, timeout_s)
        finally:
            self._last_used[session_id] = time.monotonic()

    async def close_session(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        self._last_used.pop(session_id, None)
        if session is not None:
            await session.close()

    async def metrics(self) -> dict[str, float]:
        metrics = self._sandbox.metrics()
        metrics["actor/open_sessions"] = float(len(self._sessions))
        return metrics

    async def _close_idle_sessions(self) -> None:
        """Sessions whose caller vanished without closing them are reaped after the TTL."""
        now = time.monotonic()
        ttl = self._config.session_ttl_s
        if now - self._last_sweep < min(ttl / 10, 60.0):
            return
        self._last_sweep = now
        for session_id in [s for s, used in self._last_used.items() if now - used > ttl]:
            logger.info("closing idle session %s after %.0f s", session_id, ttl)
            await self.close_session(session_id)


@dataclass
class _Slot:
    """One position in the pool; `generation` grows each time its actor is replaced."""

    actor: Any
    generation: int = 0
    in_flight: int = 0
    sessions: int = 0


@dataclass
class _Route:
    """Where a stateful session's state lives: a slot, and the actor generation holding it."""

    slot: int
    session_id: str
    generation: int | None = None  # None: bind to the slot's current actor on the next run


@dataclass
class _Call:
    """One submitted run; `ref` is None when the answer is known without asking an actor."""

    ref: Any
    slot: int
    generation: int
    deadline_s: float
    started: float
    lost_state: bool = False


class RaySandbox(Sandbox):
    """Sandbox backend spreading work over a pool of Ray actors. See the module docstring."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig(backend="ray")
        self.options = RayPoolOptions.from_extra(self.config.extra)
        if not ray.is_initialized():
            logger.info("Ray is not initialised: calling ray.init(**%s)", self.options.init_kwargs)
            ray.init(**self.options.init_kwargs)
        self._actor_config = {**self.config.to_dict(), "backend": self.options.inner_backend}
        self._actor_class = ray.remote(SandboxActor)
        self._lock = threading.Lock()
        self._closed = False
        self._restarts = 0
        self._round_robin = itertools.count()
        self.stats = SandboxMetrics()
        self._slots = [_Slot(self._spawn()) for _ in range(self.options.num_actors)]
        self._wait_until_ready()

    # -- Sandbox API ----------------------------------------------------------------------
    def session(self, stateful: bool | None = None) -> RaySession:
        return RaySession(self, self._open_route(stateful))

    def async_session(self, stateful: bool | None = None) -> AsyncRaySession:
        return AsyncRaySession(self, self._open_route(stateful))

    def metrics(self) -> dict[str, float]:
        """Runs as the caller saw them (exact across actors), pool health, and actor totals."""
        metrics = self.stats.snapshot()
        with self._lock:
            actors = [slot.actor for slot in self._slots]
            metrics["ray/actors"] = float(len(self._slots))
            metrics["ray/actor_restarts"] = float(self._restarts)
            metrics["ray/in_flight"] = float(sum(slot.in_flight for slot in self._slots))
            metrics["ray/open_sessions"] = float(sum(slot.sessions for slot in self._slots))
            closed = self._closed
        if not closed:
            metrics.update(_merge_actor_metrics(_collect_actor_metrics(actors)))
        return metrics

    def close(self) -> None:
        """Kill every actor (their inner backends and sessions go with them). Ray stays up."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            actors = [slot.actor for slot in self._slots]
        for actor in actors:
            _kill_quietly(actor)

    def actor_handles(self) -> list[Any]:
        """The current actors, slot by slot (for placement checks and fault injection)."""
        with self._lock:
            return [slot.actor for slot in self._slots]

    # -- used by the sessions -------------------------------------------------------------
    def submit(self, route: _Route | None, code: str, timeout_s: float | None) -> _Call:
        """Send one run to its actor: a stateful session's own, else the least loaded one."""
        validate_code(code)
        timeout = check_timeout(timeout_s, self.config.timeout_s)
        with self._lock:
            if self._closed:
                raise SandboxClosedError("RaySandbox is closed")
            index = route.slot if route is not None else self._least_loaded()
            slot = self._slots[index]
            deadline = timeout + self.options.call_slack_s
            if route is not None:
                lost_state = route.generation not in (None, slot.generation)
                route.generation = slot.generation
                if lost_state:  # report the loss once, then carry on with a fresh interpreter
                    return _Call(None, index, slot.generation, deadline, time.monotonic(), lost_state=True)
            slot.in_flight += 1
            ref = slot.actor.run.remote(route.session_id if route else None, code, timeout)
            return _Call(ref, index, slot.generation, deadline, time.monotonic())

    def settle(self, call: _Call, outcome: Any, route: _Route | None) -> ExecutionResult:
        """Turn what the actor returned, or how it failed, into the caller's result."""
        self.release(call)
        if call.lost_state:
            result = _crashed_result(f"the Ray actor holding this session's state died (slot {call.slot})", call)
        elif isinstance(outcome, ExecutionResult):
            result = _with_pool_info(outcome, call)
        elif isinstance(outcome, (RayActorError, GetTimeoutError, asyncio.TimeoutError)):
            what = "died" if isinstance(outcome, RayActorError) else "stopped answering"
            self._replace(call.slot, call.generation, f"{what} ({type(outcome).__name__})")
            if route is not None:
                route.generation = None  # this session saw the crash; its next run starts fresh
            result = _crashed_result(f"the Ray actor running this code {what} ({type(outcome).__name__})", call)
        else:
            raise TypeError(f"unexpected outcome from a Ray sandbox actor: {outcome!r}")
        self.stats.record(result, time.monotonic() - call.started)
        return result

    def release(self, call: _Call) -> None:
        """The call no longer occupies its actor (idempotent per call)."""
        if call.ref is None:
            return
        with self._lock:
            slot = self._slots[call.slot]
            if slot.generation == call.generation and slot.in_flight > 0:
                slot.in_flight -= 1
        call.ref = None

    def ping_ref(self, call: _Call) -> Any | None:
        """A liveness probe of the call's actor; None if that actor was already replaced."""
        with self._lock:
            slot = self._slots[call.slot]
            return slot.actor.ready.remote() if slot.generation == call.generation else None

    def close_route(self, route: _Route) -> Any | None:
        """Forget a session; returns the ObjectRef of the remote close, if one was sent."""
        with self._lock:
            slot = self._slots[route.slot]
            slot.sessions -= 1
            if self._closed or route.generation != slot.generation:
                return None  # never ran, or its actor is gone and its state with it
            return slot.actor.close_session.remote(route.session_id)

    # -- internals ------------------------------------------------------------------------
    def _open_route(self, stateful: bool | None) -> _Route | None:
        with self._lock:
            if self._closed:
                raise SandboxClosedError("RaySandbox is closed")
            if not (self.config.stateful if stateful is None else stateful):
                return None
            index = min(range(len(self._slots)), key=lambda i: (self._slots[i].sessions, self._slots[i].in_flight))
            self._slots[index].sessions += 1
        return _Route(slot=index, session_id=uuid.uuid4().hex)

    def _least_loaded(self) -> int:
        """Fewest runs in flight; ties broken round-robin so an idle pool still spreads."""
        start = next(self._round_robin)
        order = [(start + i) % len(self._slots) for i in range(len(self._slots))]
        return min(order, key=lambda i: self._slots[i].in_flight)

    def _spawn(self) -> Any:
        return self._actor_class.options(**self.options.actor_options).remote(self._actor_config)

    def _replace(self, index: int, generation: int, reason: str) -> None:
        with self._lock:
            slot = self._slots[index]
            if self._closed or slot.generation != generation:
                return  # already replaced after a concurrent failure
            old = slot.actor
            slot.actor = self._spawn()
            slot.generation += 1
            slot.in_flight = 0
            self._restarts += 1
        logger.warning("Ray sandbox actor in slot %d %s; started a replacement", index, reason)
        _kill_quietly(old)

    def _wait_until_ready(self) -> None:
        """Fail at construction (e.g. no node satisfies the placement), not mid-rollout."""
        refs = [slot.actor.ready.remote() for slot in self._slots]
        try:
            nodes = ray.get(refs, timeout=self.options.start_timeout_s)
        except GetTimeoutError as exc:
            self.close()
            raise RuntimeError(
                f"the Ray sandbox pool did not start within {self.options.start_timeout_s:g} s: does a node "
                f"satisfy ray_actor_options={self.options.actor_options} for {self.options.num_actors} actors?"
            ) from exc
        except BaseException:
            self.close()
            raise
        logger.info("Ray sandbox pool up: %d actors on nodes %s", len(nodes), sorted(set(nodes)))


class RaySession(Session):
    """Sync session; a stateful one keeps its interpreter on one actor."""

    def __init__(self, owner: RaySandbox, route: _Route | None) -> None:
        self._owner = owner
        self._route = route
        self.stateful = route is not None
        self._closed = False

    def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        if self._closed:
            raise SandboxClosedError("Ray session is closed")
        call = self._owner.submit(self._route, code, timeout_s)
        outcome = None if call.ref is None else self._wait(call)
        return self._owner.settle(call, outcome, self._route)

    def _wait(self, call: _Call) -> Any:
        """The actor's answer; past the deadline, keep waiting only while the actor answers pings."""
        wait = call.deadline_s
        try:
            while True:
                try:
                    return ray.get(call.ref, timeout=wait)
                except RayActorError as exc:
                    return exc
                except GetTimeoutError as exc:
                    if not _answers_sync(self._owner.ping_ref(call)):
                        return exc
                    wait = self._owner.options.call_slack_s
        except BaseException:
            self._owner.release(call)
            raise

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._route is not None and (ref := self._owner.close_route(self._route)) is not None:
            try:
                ray.get(ref, timeout=CLOSE_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - the actor's TTL sweep reaps what we could not
                logger.debug("remote session close failed: %s", exc)


class AsyncRaySession(AsyncSession):
    """asyncio session: awaits the actor's ObjectRef without blocking the event loop."""

    def __init__(self, owner: RaySandbox, route: _Route | None) -> None:
        self._owner = owner
        self._route = route
        self.stateful = route is not None
        self._closed = False

    async def run(self, code: str, timeout_s: float | None = None) -> ExecutionResult:
        if self._closed:
            raise SandboxClosedError("Ray session is closed")
        call = self._owner.submit(self._route, code, timeout_s)
        outcome = None if call.ref is None else await self._wait(call)
        return self._owner.settle(call, outcome, self._route)

    async def _wait(self, call: _Call) -> Any:
        ref = call.ref
        answer = asyncio.wrap_future(ref.future())
        wait = call.deadline_s
        try:
            while True:
                done, _ = await asyncio.wait({answer}, timeout=wait)
                if done:
                    try:
                        return answer.result()
                    except RayActorError as exc:
                        return exc
                if not await _answers_async(self._owner.ping_ref(call)):
                    return asyncio.TimeoutError()
                wait = self._owner.options.call_slack_s
        except BaseException:  # cancelled (or worse): stop the remote run, free its slot
            answer.cancel()
            _cancel_quietly(ref)
            self._owner.release(call)
            raise

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._route is not None and (ref := self._owner.close_route(self._route)) is not None:
            try:
                await asyncio.wait_for(asyncio.wrap_future(ref.future()), CLOSE_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - the actor's TTL sweep reaps what we could not
                logger.debug("remote session close failed: %s", exc)


def _answers_sync(ping: Any | None) -> bool:
    if ping is None:
        return False
    try:
        ray.get(ping, timeout=PING_TIMEOUT_S)
        return True
    except Exception:  # noqa: BLE001 - any failure to answer means not alive
        return False


async def _answers_async(ping: Any | None) -> bool:
    if ping is None:
        return False
    try:
        await asyncio.wait_for(asyncio.wrap_future(ping.future()), PING_TIMEOUT_S)
        return True
    except Exception:  # noqa: BLE001
        return False


def _with_pool_info(result: ExecutionResult, call: _Call) -> ExecutionResult:
    """Add where it ran and what the round trip cost beyond the run itself."""
    overhead = max(0.0, time.monotonic() - call.started - result.duration_s - result.queue_wait_s)
    return dataclasses.replace(result, extra={**result.extra, "ray_slot": call.slot, "ray_overhead_s": overhead})


def _crashed_result(message: str, call: _Call) -> ExecutionResult:
    return ExecutionResult(
        error=ExecutionError(CRASHED, message),
        exit_code=None,
        duration_s=time.monotonic() - call.started,
        extra={"ray_slot": call.slot},
    )


def _collect_actor_metrics(actors: list[Any]) -> list[dict[str, float]]:
    refs = [actor.metrics.remote() for actor in actors]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=METRICS_TIMEOUT_S)
    collected = []
    for ref in ready:
        try:
            collected.append(ray.get(ref))
        except Exception as exc:  # noqa: BLE001 - a dead actor has no metrics to give
            logger.debug("skipping metrics of a failed actor: %s", exc)
    return collected


def _merge_actor_metrics(per_actor: list[dict[str, float]]) -> dict[str, float]:
    """Pool-wide view of the inner backends: counters add up, durations take the worst actor."""
    merged: dict[str, float] = {}
    for metrics in per_actor:
        for key, value in metrics.items():
            name = f"ray/inner/{key.split('/', 1)[-1]}"
            if key.endswith("_s"):
                merged[name] = max(merged.get(name, 0.0), value)
            else:
                merged[name] = merged.get(name, 0.0) + value
    return merged


def _kill_quietly(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception as exc:  # noqa: BLE001 - already dead is fine
        logger.debug("ray.kill failed: %s", exc)


def _cancel_quietly(ref: Any) -> None:
    try:
        ray.cancel(ref)
    except Exception as exc:  # noqa: BLE001 - finished or gone is fine
        logger.debug("ray.cancel failed: %s", exc)


__all__ = ["AsyncRaySession", "RayPoolOptions", "RaySandbox", "RaySession", "SandboxActor"]
