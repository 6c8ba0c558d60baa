"""`RaySandbox`: the caller's handle on a pool of sandbox actors (routing, replacement, metrics)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError

from tool_env.base import Sandbox, SandboxClosedError, SandboxUnavailableError, check_timeout, validate_code
from tool_env.config import SandboxConfig
from tool_env.metrics import SandboxMetrics
from tool_env.ray.actor import SandboxActor
from tool_env.ray.options import RayPoolOptions
from tool_env.ray.sessions import AsyncRaySession, RaySession
from tool_env.result import CRASHED, ExecutionError, ExecutionResult

logger = logging.getLogger(__name__)

METRICS_TIMEOUT_S = 10.0  # metrics() skips actors that do not answer within this

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
    restarted: bool = False  # a crash was reported: the next result says the state was lost


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
            route.restarted = True  # type: ignore[union-attr]  # lost_state implies a route
        elif isinstance(outcome, ExecutionResult):
            result = _with_pool_info(outcome, call)
            if route is not None and route.restarted:  # first run in a fresh interpreter, as local says it
                route.restarted = False
                result.extra["session_restarted"] = True
        elif isinstance(outcome, (RayActorError, GetTimeoutError, asyncio.TimeoutError)):
            what = "died" if isinstance(outcome, RayActorError) else "stopped answering"
            self._replace(call.slot, call.generation, f"{what} ({type(outcome).__name__})")
            if route is not None:
                route.generation = None  # this session saw the crash; its next run starts fresh
                route.restarted = True
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
            raise SandboxUnavailableError(
                f"the Ray sandbox pool did not start within {self.options.start_timeout_s:g} s: does a node "
                f"satisfy ray_actor_options={self.options.actor_options} for {self.options.num_actors} actors?"
            ) from exc
        except BaseException:
            self.close()
            raise
        logger.info("Ray sandbox pool up: %d actors on nodes %s", len(nodes), sorted(set(nodes)))


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

