"""Benchmark of the R1-CI agent loop without an LLM: per-turn overhead and rollout throughput.

    python benchmarks/bench_agent_loop.py [--trajectories 64] [--code-calls 3] [--turn-chars 1200]

1. Per-turn overhead: what the loop itself does for one code turn (find and cut at the fence,
   tokenize the results block, append ids/mask/logprobs), on a realistic turn of generated
   ids. Baseline, same run: one plain decode + encode of that turn with the same tokenizer,
   the least any token-level loop must do. Target: p50 <= 1 ms.
2. Rollout throughput: N concurrent trajectories through the real loop, the scripted fake LLM
   server (instant replies) and the real local sandbox. Baseline, same run: the same code
   blocks sent straight to the sandbox with the same concurrency. The ratio shows what the
   loop adds on top of execution; the breakdown says where the time goes.

The tokenizer is the tiny test tokenizer (vocabulary 650): it splits text into several times
more tokens than Qwen's, so the overheads here are pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from tool_env.shared import shared_sandbox
from r1ci_verl.smoke.tiny_model import build_tiny_tokenizer
from reward_fns import protocol
from tool_env import SandboxConfig


def _load_fakes():
    """tests/fakes.py by path: putting tests/ on sys.path would shadow the real packages."""
    spec = importlib.util.spec_from_file_location("fakes", Path(__file__).resolve().parents[1] / "tests" / "fakes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fakes"] = module
    spec.loader.exec_module(module)
    return module


FakeScriptedLLMServer = _load_fakes().FakeScriptedLLMServer

PER_TURN_TARGET_MS = 1.0
REASONING = "We need the product of the two numbers, then check divisibility by each prime below 20. "
QUESTION = [{"role": "user", "content": "Compute it with code. Return <<<answer>>>."}]


def make_loop(tokenizer, server, sandbox: dict, response_length: int = 8192):
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    from r1ci_verl.rollout.agent_loop import CodeInterpreterAgentLoop

    config = OmegaConf.create(
        {
            "actor_rollout_ref": {
                "rollout": {"name": "vllm", "prompt_length": 1024, "response_length": response_length}
            },
            "data": {},
        }
    )
    return CodeInterpreterAgentLoop(
        trainer_config=DictConfigWrap(config),
        server_manager=server,
        tokenizer=tokenizer,
        processor=None,
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(config.data),
        hf_model_type="qwen2",
        sandbox=sandbox,
    )


def code_turn(i: int, turn_chars: int) -> str:
    prose = (REASONING * (turn_chars // len(REASONING) + 1))[:turn_chars]
    return f"{prose}\n```python\nimport math\nprint(math.factorial({10 + i}) % 1000003)\n```\n"


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def bench_per_turn(tokenizer, turn_chars: int, repeats: int) -> None:
    from r1ci_verl.rollout.agent_loop import _Trajectory

    loop = make_loop(tokenizer, server=None, sandbox={})
    turn_ids = tokenizer.encode(code_turn(0, turn_chars), add_special_tokens=False)
    body = "362880\n" * 4
    overhead, baseline, parts = [], [], {"cut": [], "insert": [], "append": []}
    for _ in range(repeats):
        traj = _Trajectory(prompt_ids=[1] * 200, budget=8192)
        t0 = time.perf_counter()
        keep, text, block = loop._cut_after_block(traj.segment_ids, turn_ids)
        t1 = time.perf_counter()
        traj.add_generated(turn_ids[:keep], [0.0] * keep)
        t2 = time.perf_counter()
        loop._insert(traj, protocol.format_results_block(body, text))
        t3 = time.perf_counter()
        assert block is not None
        overhead.append(t3 - t0)
        parts["cut"].append(t1 - t0)
        parts["append"].append(t2 - t1)
        parts["insert"].append(t3 - t2)

        t0 = time.perf_counter()
        tokenizer.encode(tokenizer.decode(turn_ids) + body, add_special_tokens=False)
        baseline.append(time.perf_counter() - t0)

    p50, p90, base = (percentile(overhead, 0.5), percentile(overhead, 0.9), percentile(baseline, 0.5))
    print(f"per-turn overhead ({len(turn_ids)} generated tokens, {repeats} turns)")
    print(f"  loop p50 {p50 * 1e3:.3f} ms  p90 {p90 * 1e3:.3f} ms  (target p50 <= {PER_TURN_TARGET_MS} ms)")
    print(f"  baseline decode+encode p50 {base * 1e3:.3f} ms  ratio loop/baseline {p50 / base:.2f}x")
    for name, values in parts.items():
        print(f"    {name:7s} p50 {percentile(values, 0.5) * 1e3:.3f} ms")
    print(f"  {'PASS' if p50 * 1e3 <= PER_TURN_TARGET_MS else 'MISS'}: p50 per-turn overhead")


async def bench_throughput(tokenizer, trajectories: int, code_calls: int, turn_chars: int, sandbox: dict) -> None:
    scripts = [[code_turn(t * code_calls + i, turn_chars) for i in range(code_calls)] + ["<<<done>>>"]
               for t in range(trajectories)]
    shared_sandbox(SandboxConfig.from_mapping(sandbox))  # warm the pool outside the timings

    async def one(script):
        server = FakeScriptedLLMServer(tokenizer, script)
        loop = make_loop(tokenizer, server, sandbox)
        return await loop.run({"logprobs": True}, raw_prompt=QUESTION)

    start, cpu_start = time.perf_counter(), time.thread_time()
    outputs = await asyncio.gather(*(one(s) for s in scripts))
    wall, loop_cpu = time.perf_counter() - start, time.thread_time() - cpu_start
    assert all(o.extra_fields["num_code_calls"] == code_calls for o in outputs)

    blocks = [protocol.find_python_block(turn).code for script in scripts for turn in script[:-1]]
    sandbox_obj = shared_sandbox(SandboxConfig.from_mapping(sandbox))

    async def sandbox_only(codes):
        for code in codes:  # one trajectory's blocks run one after another, as in the loop
            await sandbox_obj.arun(code)

    start, cpu_start = time.perf_counter(), time.thread_time()
    await asyncio.gather(*(sandbox_only(blocks[t * code_calls : (t + 1) * code_calls]) for t in range(trajectories)))
    base_wall, base_cpu = time.perf_counter() - start, time.thread_time() - cpu_start

    gen = sum(o.metrics.generate_sequences for o in outputs)
    tool = sum(o.metrics.tool_calls for o in outputs)
    calls = trajectories * code_calls
    print(f"rollout: {trajectories} concurrent trajectories x {code_calls} code calls, pool_size={sandbox['pool_size']}")
    print(f"  loop      {wall:.2f} s  {trajectories / wall:.1f} traj/s  {calls / wall:.1f} code calls/s")
    print(f"  baseline  {base_wall:.2f} s  sandbox alone, same blocks and concurrency")
    print(f"  ratio loop/sandbox-only wall {wall / base_wall:.2f}x")
    print(f"  event-loop thread CPU: loop {loop_cpu:.2f} s (agent loop + tokenizer + fake server + prompts), "
          f"sandbox-only {base_cpu:.2f} s")
    print("  where time goes (summed over trajectories; concurrent, so sums exceed wall):")
    print(f"    scripted LLM server {gen:.2f} s   sandbox calls incl. queueing {tool:.2f} s")
    print(f"    mean per code call in sandbox (incl. queue) {tool / calls * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trajectories", type=int, default=64)
    parser.add_argument("--code-calls", type=int, default=3)
    parser.add_argument("--turn-chars", type=int, default=1200, help="reasoning text before each block")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--pool-size", type=int, default=0, help="sandbox workers; 0 = this process's share of the node's cores")
    args = parser.parse_args()

    tokenizer = build_tiny_tokenizer(tempfile.mkdtemp(prefix="bench_tok_"))
    bench_per_turn(tokenizer, args.turn_chars, args.repeats)
    sandbox = {"timeout_s": 30.0, "pool_size": args.pool_size}
    asyncio.run(bench_throughput(tokenizer, args.trajectories, args.code_calls, args.turn_chars, sandbox))


if __name__ == "__main__":
    main()
