"""Where a stateless sandbox run's CPU goes: a reproducible profile without perf.

Starts one real worker (the default isolation level and preloads, or the ones named) whose
zygote is booted with timing hooks: every phase of a run, in the zygote and in the forked
child, is wrapped in a span that adds its thread CPU time (``time.thread_time_ns``) and minor
page faults (``RUSAGE_THREAD``) to a counter. Children add theirs to a shared anonymous
mapping the zygote created before forking them. What no span covers is computed from
rusage: the child's exit (tearing down its address space) is its total CPU, as reaped by
the zygote, minus its spans. The host drives the worker with back-to-back runs, so the
figures are CPU per run at saturation of one worker, independent of the machine's load
(which mostly stretches wall time, not CPU).

Also measured in the same worker, as floors: a run in a warm stateful session (no fork: the
pipe round trip and bookkeeping only), and the bare fork + immediate exit of the warm heap.

    python benchmarks/profile_sandbox.py                      # default preloads, 400 runs
    python benchmarks/profile_sandbox.py --preload math       # a small heap, for comparison
"""

from __future__ import annotations

import argparse
import json
import os
import time

from tool_env.config import SandboxConfig
from tool_env.local import isolation
from tool_env.local.worker import Worker

SNIPPET = "print(1 + 1)"
RUN_TIMEOUT_S = 30.0
SPAN_SLOTS = 64
SPAN_BYTES = 24  # cpu ns, faults, count: three int64 per span

# Runs inside the sandbox before the zygote's own entry point. Wrapping module attributes
# means the zygote and its children call the wrappers (children are forks of the zygote).
HOOKS = r'''
import mmap, os, resource, struct, sys, time
sys.path.insert(0, {root!r})
from tool_env.local import capture, childproc, children, reaping, scratch, zygote

SLOTS, SIZE = {slots}, {size}
shm = mmap.mmap(-1, SLOTS * SIZE)  # MAP_SHARED | MAP_ANONYMOUS: children write their spans here
names, mine, zpid = [], {{}}, [os.getpid()]


def faults():
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def add(name, cpu, flt):
    if os.getpid() == zpid[0]:
        acc = mine.setdefault(name, [0, 0, 0])
        acc[0] += cpu; acc[1] += flt; acc[2] += 1
        return
    if name not in names:
        return
    off = names.index(name) * SIZE
    c, f, n = struct.unpack_from("qqq", shm, off)
    struct.pack_into("qqq", shm, off, c + cpu, f + flt, n + 1)


def wrap(owner, attr, name):  # what this version of the code lacks is left out
    fn = getattr(owner, attr, None)
    if fn is None:
        return
    names.append(name)

    def span(*args, **kwargs):
        cpu, flt = time.thread_time_ns(), faults()
        try:
            return fn(*args, **kwargs)
        finally:
            add(name, time.thread_time_ns() - cpu, faults() - flt)

    setattr(owner, attr, span)


# zygote side
wrap(zygote, "read_frame", "zygote: read request")
wrap(zygote.Zygote, "handle", "zygote: handle request")
wrap(zygote, "execute", "zygote:   send code, stream output")
wrap(zygote, "outcome", "zygote:   judge the run")
wrap(zygote, "write_frame", "zygote: write reply")
wrap(zygote.Zygote, "after_reply", "zygote: after the reply")
wrap(zygote.Zygote, "recycle_fast", "zygote:   leftover check")
wrap(scratch.Scratch, "used", "zygote:     scratch check")
wrap(zygote.Zygote, "fork_child", "zygote:   fork next child")
wrap(zygote.Zygote, "reap_exited", "zygote: reap exited children")
# child side
wrap(childproc, "lock_down", "child: lock-down")
wrap(getattr(childproc, "Prepared", None), "reseed", "child:   reseed random")
wrap(childproc, "enter_fresh_namespaces", "child:   fresh namespaces, scratch")
wrap(childproc, "install_run_filter", "child:   seccomp filter")
wrap(childproc, "run_snippet", "child: run the snippet")
wrap(childproc, "_finish_like_python", "child: atexit, threads")
names.append("child: return from fork")
names.append("child: all spans")
real_child_main, real_write_frame = childproc.child_main, childproc.write_frame


def child_main(*args, **kwargs):
    add("child: return from fork", time.thread_time_ns(), faults())  # a new thread's clocks start at 0
    return real_child_main(*args, **kwargs)


def write_frame(fd, obj):  # the child's last step is its status frame
    add("child: all spans", time.thread_time_ns(), faults())
    return real_write_frame(fd, obj)


children.childproc.child_main = child_main
childproc.write_frame = write_frame
real_handle = zygote.Zygote.handle


def handle(self, request, *args):
    if request.get("op") != "profile":
        return real_handle(self, request, *args)
    deadline = time.monotonic() + 2.0
    while self.exiting and time.monotonic() < deadline:
        time.sleep(0.01)
        self.reap_exited()
    spans = {{name: list(struct.unpack_from("qqq", shm, i * SIZE)) for i, name in enumerate(names)}}
    spans.update(mine)
    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    if request.get("reset"):
        mine.clear()
        shm[:] = bytes(len(shm))
    return {{"spans": spans, "self": [own.ru_utime + own.ru_stime, own.ru_minflt],
            "children": [reaped.ru_utime + reaped.ru_stime, reaped.ru_minflt]}}


zygote.Zygote.handle = handle

zygote.main()
'''

FORK_FLOOR = r'''
import json, os, resource
n = {runs}
own0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
own1, kids1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([(own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime) / n,
                  (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime) / n]))
'''


def start_worker(config: SandboxConfig) -> Worker:
    plan = isolation.build_plan(isolation.resolve_isolation(config.isolation), config)
    inside = getattr(isolation, "SANDBOX_PACKAGE_ROOT", None)  # where the package is bound in a namespace
    root = inside if plan.level == "namespace" and inside else isolation.PACKAGE_ROOT
    plan.argv[-1] = HOOKS.format(root=root, slots=SPAN_SLOTS, size=SPAN_BYTES)
    return Worker(plan)


def run(worker: Worker, code: str, keep: bool = False) -> dict:
    reply = worker.call({"op": "run", "code": code, "timeout_s": RUN_TIMEOUT_S, "keep": keep}, RUN_TIMEOUT_S)
    if reply.get("error"):
        raise RuntimeError(f"profiling run failed: {reply['error']}")
    return reply


def profile(config: SandboxConfig, runs: int) -> str:
    worker = start_worker(config)
    try:
        for _ in range(20):  # warm the code paths
            run(worker, SNIPPET)
        worker.call({"op": "profile", "reset": True}, RUN_TIMEOUT_S)
        before = worker.call({"op": "profile"}, RUN_TIMEOUT_S)
        host_cpu = time.thread_time()
        started = time.perf_counter()
        for _ in range(runs):
            run(worker, SNIPPET)
        wall = time.perf_counter() - started
        host_cpu = time.thread_time() - host_cpu
        after = worker.call({"op": "profile"}, RUN_TIMEOUT_S)
        session_cpu = _session_cost(worker, runs)
        fork_zygote, fork_child = json.loads(run(worker, FORK_FLOOR.format(runs=runs), keep=True)["stdout"])
    finally:
        worker.stop()
    return _table(config, worker.level, runs, wall, host_cpu, before, after, session_cpu, fork_zygote, fork_child)


def _session_cost(worker: Worker, runs: int) -> float:
    """CPU per run in a warm stateful session: zygote + child + host, no fork."""
    run(worker, SNIPPET, keep=True)
    before = worker.call({"op": "profile"}, RUN_TIMEOUT_S)
    host = time.thread_time()
    for _ in range(runs):
        run(worker, SNIPPET, keep=True)
    host = time.thread_time() - host
    after = worker.call({"op": "profile"}, RUN_TIMEOUT_S)
    zygote = after["self"][0] - before["self"][0]
    child = sum(after["spans"].get(k, [0])[0] - before["spans"].get(k, [0])[0]
                for k in ("child: run the snippet", "child: atexit, threads")) / 1e9
    return (zygote + child + host) / runs


def _table(config, level, runs, wall, host_cpu, before, after, session_cpu, fork_zygote, fork_child) -> str:
    spans = after["spans"]
    zygote_cpu = after["self"][0] - before["self"][0]
    zygote_faults = after["self"][1] - before["self"][1]
    child_cpu = after["children"][0] - before["children"][0]
    child_faults = after["children"][1] - before["children"][1]
    ms = lambda ns: ns / 1e6 / runs  # noqa: E731
    lines = [f"{runs} stateless runs of {SNIPPET!r} back to back on one worker "
             f"(isolation={level}, preload={','.join(config.preload_modules)});",
             f"{runs / wall:.0f} runs/s on one worker, load average {_load()}",
             "", f"{'where (CPU per run)':<40}{'ms':>8}{'faults':>9}"]
    lines.append(f"{'host: encode, write, poll, decode':<40}{host_cpu / runs * 1e3:>8.3f}{'':>9}")
    covered = 0
    for name, (cpu, faults, _) in spans.items():
        if name.startswith("zygote"):
            lines.append(f"{name:<40}{ms(cpu):>8.3f}{faults / runs:>9.0f}")
            if not name.startswith("zygote: ") or name.startswith("zygote:  "):
                continue
            covered += cpu
    lines.append(f"{'zygote: rest (loop, select, fork syscall)':<40}{zygote_cpu * 1e3 / runs - ms(covered):>8.3f}"
                 f"{zygote_faults / runs - sum(f for n, (_, f, _) in spans.items() if n.startswith('zygote: ') and not n.startswith('zygote:  ')) / runs:>9.0f}")
    lines.append(f"{'zygote: total':<40}{zygote_cpu * 1e3 / runs:>8.3f}{zygote_faults / runs:>9.0f}")
    child_spans = [(n, v) for n, v in spans.items() if n.startswith("child") and n != "child: all spans"]
    for name, (cpu, faults, _) in child_spans:
        lines.append(f"{name:<40}{ms(cpu):>8.3f}{faults / runs:>9.0f}")
    in_python, python_faults, _ = spans.get("child: all spans", [0, 0, 0])
    lines.append(f"{'child: exit (address-space teardown)':<40}{child_cpu * 1e3 / runs - ms(in_python):>8.3f}"
                 f"{(child_faults - python_faults) / runs:>9.0f}")
    lines.append(f"{'child: total (reaped by the zygote)':<40}{child_cpu * 1e3 / runs:>8.3f}{child_faults / runs:>9.0f}")
    total = host_cpu / runs * 1e3 + (zygote_cpu + child_cpu) * 1e3 / runs
    lines += [f"{'total':<40}{total:>8.3f}", "",
              "Floors measured in the same worker:",
              f"  a run in a warm stateful session (no fork): {session_cpu * 1e3:.3f} ms",
              f"  fork + immediate exit of the warm heap: {fork_zygote * 1e3:.3f} ms forking "
              f"+ {fork_child * 1e3:.3f} ms in the child = {(fork_zygote + fork_child) * 1e3:.3f} ms",
              "(spans nest: indented rows are part of the row above; the child's own rows are CPU inside Python,",
              " 'return from fork' is the child's CPU before its first line of Python)"]
    return "\n".join(lines)


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--isolation", choices=("auto", "namespace", "rlimit"), default="auto")
    parser.add_argument("--preload", default=None, help="comma-separated preload modules (default: the config's)")
    args = parser.parse_args(argv)
    overrides = {"isolation": args.isolation}
    if args.preload is not None:
        overrides["preload_modules"] = tuple(name for name in args.preload.split(",") if name)
    print(profile(SandboxConfig(**overrides), args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
