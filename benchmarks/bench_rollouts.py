"""Offline rollout throughput (r1ci eval / sft synth / potential) and the turn engine's own cost.

    python benchmarks/bench_rollouts.py [--quick] [--code-calls 2] [--concurrency 1 16 64]

1. Throughput: answers/s and code calls/s of offline rollouts through the OpenAI client against
   the scripted OpenAI-compatible server on loopback (instant replies, no model), code run in
   the real local sandbox, at each concurrency. Baseline, same run: the same code blocks sent
   straight to the sandbox at the same concurrency. The breakdown says where time goes: HTTP
   requests (client + server), the sandbox, and the rest (engine, tokenizer, event loop).
2. Engine overhead per turn: one code turn through TurnEngine with an in-memory generator and
   executor (cut at the fence, encode the results block, bookkeeping). Baseline, same run: one
   decode + encode of the same turn, the least any token-level engine must do.

The tokenizer is the tiny test tokenizer (vocabulary ~650): pessimistic token counts.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from r1ci_verl.rollout.clients import OpenAIClient, SamplingConfig
from r1ci_verl.rollout.engine import EngineRules, Generation, Trajectory, TurnEngine
from r1ci_verl.rollout.offline import RolloutSettings, rollout
from r1ci_verl.smoke.scripted_server import ScriptedOpenAIServer
from r1ci_verl.smoke.tiny_model import build_tiny_tokenizer
from reward_fns import protocol
from tool_env import SandboxConfig, create_sandbox

REASONING = "We need the product of the two numbers, then check divisibility by each prime below 20. "


def code_block(i: int) -> str:
    return f"```python\nimport math\nprint(math.factorial({10 + i % 50}) % 1000003)\n```\n"


def make_policy(code_calls: int):
    def policy(prompt: str) -> tuple[str, bool]:
        answer_part = prompt.rsplit("<|im_start|>assistant\n", 1)[-1]
        done = protocol.count_results_blocks(answer_part)
        if done >= code_calls:
            return "So the answer is <<<done>>>", True
        return REASONING * 4 + "\n" + code_block(done), True

    return policy


async def throughput(tokenizer, sandbox, concurrency: int, answers: int, code_calls: int) -> None:
    settings = RolloutSettings(rules=EngineRules(max_code_calls=code_calls + 1), budget=8192, code_timeout_s=30,
                               sampling=SamplingConfig(temperature=0.0))
    with ScriptedOpenAIServer(make_policy(code_calls), tokenizer) as server:
        client = OpenAIClient(server.base_url, "scripted", tokenizer)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int):
            async with semaphore:
                messages = [{"role": "user", "content": f"Question {i}: compute it with code."}]
                return await rollout(client, messages, settings, seed=i, open_session=sandbox.async_session)

        start = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(answers)))
        wall = time.perf_counter() - start
        request_s = client.usage.request_time_s
        await client.aclose()
    assert all(r.stats.num_code_calls == code_calls and r.stats.stop_reason == "eos" for r in results), \
        {r.stats.stop_reason for r in results}
    tool_s = sum(r.stats.code_exec_time_s for r in results)

    blocks = [protocol.find_python_block(code_block(c)).code for _ in range(answers) for c in range(code_calls)]
    semaphore = asyncio.Semaphore(concurrency)

    async def sandbox_only(codes):
        async with semaphore:
            for code in codes:  # one answer's blocks run one after another, as in a rollout
                async with sandbox.async_session() as session:
                    await session.run(code)

    start = time.perf_counter()
    await asyncio.gather(*(sandbox_only(blocks[i * code_calls:(i + 1) * code_calls]) for i in range(answers)))
    base = time.perf_counter() - start
    calls = answers * code_calls
    print(f"concurrency {concurrency:3d}: {answers} answers x {code_calls} code calls in {wall:.2f} s  "
          f"{answers / wall:6.1f} answers/s  {calls / wall:6.1f} code calls/s  | sandbox alone {base:.2f} s  "
          f"ratio {wall / base:.2f}x")
    print(f"    summed over answers: HTTP requests {request_s:.2f} s, sandbox {tool_s:.2f} s; "
          f"engine + tokenizer + event loop = the rest of {wall:.2f} s wall x {concurrency} in flight")


def engine_overhead(tokenizer, repeats: int) -> None:
    turn = REASONING * 12 + "\n" + code_block(0) + "and text the engine must cut off"
    turn_ids = tokenizer.encode(turn, add_special_tokens=False)
    body = "362880\n" * 4
    replies = [Generation(turn_ids), Generation(tokenizer.encode("<<<1>>>", add_special_tokens=False))]

    async def roll_once() -> float:
        calls = iter(replies)

        async def generate(traj, max_tokens, stop):
            return next(calls)

        async def execute(traj, code):
            return body

        engine = TurnEngine(tokenizer, EngineRules(), generate, execute)
        traj = Trajectory(prompt_ids=[1] * 200, budget=8192)
        start = time.perf_counter()
        await engine.roll(traj)
        return time.perf_counter() - start

    async def all_rolls() -> list[float]:
        return [await roll_once() for _ in range(repeats)]

    times = sorted(asyncio.run(all_rolls()))
    base = []
    for _ in range(repeats):
        start = time.perf_counter()
        tokenizer.encode(tokenizer.decode(turn_ids) + body, add_special_tokens=False)
        base.append(time.perf_counter() - start)
    base.sort()
    p50, b50 = times[len(times) // 2], base[len(base) // 2]
    print(f"engine per code turn ({len(turn_ids)} generated tokens, {repeats} runs; one code turn + the answer turn): "
          f"p50 {p50 * 1e3:.3f} ms, p90 {times[int(0.9 * len(times))] * 1e3:.3f} ms  | baseline decode+encode "
          f"p50 {b50 * 1e3:.3f} ms  ratio {p50 / b50:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--code-calls", type=int, default=2)
    parser.add_argument("--answers-per-slot", type=int, default=2, help="answers = max(8, this x concurrency)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--pool-size", type=int, default=0, help="sandbox workers; 0 = number of cores")
    parser.add_argument("--quick", action="store_true", help="fewer answers and repeats (CI-sized)")
    args = parser.parse_args()
    if args.quick:
        args.answers_per_slot, args.repeats = 1, 50

    tokenizer = build_tiny_tokenizer(tempfile.mkdtemp(prefix="bench_tok_"))
    engine_overhead(tokenizer, args.repeats)
    with create_sandbox(SandboxConfig(timeout_s=30.0, pool_size=args.pool_size)) as sandbox:
        sandbox.run("print(1)")  # warm the pool outside the timings
        for concurrency in args.concurrency:
            answers = max(8, args.answers_per_slot * concurrency)
            asyncio.run(throughput(tokenizer, sandbox, concurrency, answers, args.code_calls))


if __name__ == "__main__":
    main()
