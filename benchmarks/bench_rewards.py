"""Reward throughput: answers/s of compute_score per task family, on one core.

Each response is a realistic transcript (reasoning, one python block with its results, the
final <<<answer>>>), half correct and half wrong. The baseline, measured in the same run on the
same responses, is the least any scorer must do: extract the answer and compare it as a string.
compute_score gets the ``extra_info`` verl passes in training (the agent loop's code-call count).
Target: exact-match families (BBH, most Reasoning-Gym tasks) score >= 5,000 answers/s.

    python benchmarks/bench_rewards.py [--seconds 1.0] [--no-pin]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Callable

import r1ci_verl
from reward_fns.protocol import RESULTS_HEADER, extract_answer
from reward_fns.registry import list_verifiers
from reward_fns.scoring import compute_score

TARGET_EXACT_MATCH_PER_S = 5_000
# Reasoning-Gym datasets by scorer kind: plain string/number comparisons vs. simulation / sympy.
RG_EXACT = ("gcd", "basic_arithmetic", "letter_counting", "word_sorting", "spell_backward", "caesar_cipher")
RG_HEAVY = ("sudoku", "maze", "countdown", "polynomial_multiplication", "simple_integration")

Sample = tuple[str, str, str]  # data_source, response, ground_truth (JSON)


def transcript(answer: str) -> str:
    reasoning = "Let me reason about the problem carefully, step by step. " * 12
    code = "```python\nvalues = [3, 1, 2]\nprint(sorted(values))\n```\n"
    return f"{reasoning}\n{code}{RESULTS_HEADER}\n[1, 2, 3]\n\nSo the final answer is <<<{answer}>>>"


def ground_truth(task: str, answer: object, meta: dict) -> str:
    return json.dumps({"task": task, "answer": answer, "meta": meta})


def bbh_samples(limit: int = 2_000) -> list[Sample]:
    samples = []
    for path in sorted((Path(r1ci_verl.__file__).parent / "assets" / "bbh").glob("*.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()[:80]):
            row = json.loads(line)
            task = f"bbh/{row['task']}"
            answer = row["answer"] if i % 2 == 0 else "(Z)"
            samples.append((task, transcript(answer), ground_truth(task, row["answer"], {})))
    return samples[:limit]


def rg_samples(names: tuple[str, ...], per_dataset: int = 20) -> list[Sample]:
    import reasoning_gym

    from reward_fns.reasoning_gym_tasks import reference_from_entry

    samples = []
    for name in names:
        dataset = reasoning_gym.create_dataset(name, size=per_dataset, seed=7)
        for i in range(per_dataset):
            reference = reference_from_entry(name, dataset[i])
            answer = reference.answer if i % 2 == 0 else "wrong answer"
            samples.append((reference.task, transcript(answer), ground_truth(reference.task, reference.answer, reference.meta)))
    return samples


def symbench_samples(limit: int = 1_000) -> list[Sample]:
    """SymBench rows whose stored solution is the answer text (exact-match tasks)."""
    samples = []
    registered = set(list_verifiers())
    for path in sorted((Path(r1ci_verl.__file__).parent / "assets" / "symbench").glob("*.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()[:40]):
            row = json.loads(line)
            task = f"symbench/{row['task']}"
            if task not in registered or row["solution"] is None:
                break
            solution = row["solution"] if isinstance(row["solution"], str) else json.dumps(row["solution"])
            answer = solution if i % 2 == 0 else "wrong"
            samples.append((task, transcript(answer), ground_truth(task, row["solution"], row["meta"])))
    return samples[:limit]


def rate(samples: list[Sample], score: Callable[[Sample], object], seconds: float) -> float:
    """Answers per second, cycling through the samples for at least `seconds`."""
    for sample in samples[:50]:  # warm caches (scorer construction, regexes)
        score(sample)
    done, start = 0, time.perf_counter()
    while True:
        for sample in samples:
            score(sample)
        done += len(samples)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def baseline(sample: Sample) -> bool:
    answer = extract_answer(sample[1])
    return answer is not None and answer == json.loads(sample[2])["answer"]


AGENT_LOOP_EXTRA_INFO = {"num_code_calls": 1, "num_turns": 3}  # what verl passes in training


def ours(sample: Sample) -> dict:
    return compute_score(sample[0], sample[1], sample[2], extra_info=AGENT_LOOP_EXTRA_INFO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per family")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    args = parser.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    families = {
        "bbh (exact match)": (bbh_samples(), True),
        "reasoning_gym exact": (rg_samples(RG_EXACT), True),
        "reasoning_gym heavy": (rg_samples(RG_HEAVY, per_dataset=6), False),
        "symbench": (symbench_samples(), False),
    }
    print(f"{'family':<22}{'samples':>8}{'baseline/s':>13}{'ours/s':>11}{'ours/baseline':>15}  target")
    for family, (samples, exact_match) in families.items():
        if not samples:
            print(f"{family:<22}{0:>8}  (no registered tasks)")
            continue
        base, mine = rate(samples, baseline, args.seconds), rate(samples, ours, args.seconds)
        verdict = ""
        if exact_match:
            ok = mine >= TARGET_EXACT_MATCH_PER_S
            verdict = f">= {TARGET_EXACT_MATCH_PER_S:,}/s {'OK' if ok else 'MISSED'}"
        print(f"{family:<22}{len(samples):>8}{base:>13,.0f}{mine:>11,.0f}{mine / base:>15.3f}  {verdict}")


if __name__ == "__main__":
    main()
