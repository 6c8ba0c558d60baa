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

Modules: `options` (the keys above), `actor` (what runs on the CPU node), `router` (the
pool: slots, routing, replacement, metrics) and `sessions` (sync and asyncio faces that wait
on the actors without hanging on a dead one).
"""

from tool_env.ray.actor import SandboxActor
from tool_env.ray.options import RayPoolOptions
from tool_env.ray.router import RaySandbox
from tool_env.ray.sessions import AsyncRaySession, RaySession

__all__ = ["AsyncRaySession", "RayPoolOptions", "RaySandbox", "RaySession", "SandboxActor"]
