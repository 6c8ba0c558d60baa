"""Reward throughput: answers/s of compute_score per task family, on one core.

Each response is a realistic transcript (reasoning, one python block with its results, the
final <<<answer>>>), half correct and half wrong. The baseline, measured in the same run on the
same responses, is the least any scorer must do: extract the answer and compare it as a string.
compute_score gets the ``extra_info`` verl passes in training (the agent loop's code-call count).
Target: exact-match families (BBH, most Reasoning-Gym tasks) score >= 5,000 answers/s.

The four SymBench tasks without a puzzle layout get their own rows: gsm_hard (numbers), MATH
(math-verify, run as a budgeted verifier in a worker process, so each answer also pays a pipe
round trip; the "verifier only" row calls the verifier inline to show that share) and
path_plan (exact simulation of a waypoint path from start through the named boxes' centres to
the end; it has no stored answer, so its baseline compares with that path's text).

    python benchmarks/bench_rewards.py [--seconds 1.0] [--no-pin] [--only math]
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
from reward_fns.registry import get_verifier, list_verifiers
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


SYMBENCH_DIR = Path(r1ci_verl.__file__).parent / "assets" / "symbench"
MATH_TASKS = ("math_geometry", "math_counting_and_probability")
UNLAYOUTED = ("gsm_hard", *MATH_TASKS, "path_plan")  # measured in their own rows


def records(task: str, limit: int) -> list[dict]:
    with open(SYMBENCH_DIR / f"{task}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(limit))]


def gsm_hard_samples(limit: int = 400) -> list[Sample]:
    samples = []
    for i, row in enumerate(records("gsm_hard", limit)):
        value = row["solution"]
        answer = f"{value:,.2f}" if i % 2 == 0 else f"{value + 7:.2f}"  # decorated right / wrong
        samples.append(("symbench/gsm_hard", transcript(answer), ground_truth("symbench/gsm_hard", value, row["meta"])))
    return samples


def math_samples(per_task: int = 500) -> list[Sample]:
    samples = []
    for task in MATH_TASKS:
        for i, row in enumerate(records(task, per_task)):
            answer = row["solution"] if i % 2 == 0 else f"{row['solution']} + 1"
            samples.append((f"symbench/{task}", transcript(answer), ground_truth(f"symbench/{task}", row["solution"], {})))
    return samples


def path_plan_samples() -> list[Sample]:
    """A path through the centres of the boxes to visit; the baseline compares with its text."""
    from reward_fns.symbench import reference_from_record

    samples = []
    for row in records("path_plan", 140):
        meta = reference_from_record(row).meta
        boxes = meta["boxes"]
        centres = [((boxes[b][0] + boxes[b][1]) / 2, (boxes[b][2] + boxes[b][3]) / 2) for b in meta["derived_order"] + meta["derived_visit"]]
        path = "[" + ", ".join(f"({x:g}, {y:g})" for x, y in [tuple(meta["start"]), *centres, tuple(meta["end"])]) + "]"
        samples.append(("symbench/path_plan", transcript(path), ground_truth("symbench/path_plan", path, meta)))
    return samples


def symbench_samples(limit: int = 1_000) -> list[Sample]:
    """SymBench rows whose stored solution is the answer text (exact-match tasks)."""
    samples = []
    registered = set(list_verifiers())
    for path in sorted((Path(r1ci_verl.__file__).parent / "assets" / "symbench").glob("*.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()[:40]):
            row = json.loads(line)
            task = f"symbench/{row['task']}"
            if task not in registered or row["solution"] is None or row["task"] in UNLAYOUTED:
                break
            solution = row["solution"] if isinstance(row["solution"], str) else json.dumps(row["solution"])
            answer = solution if i % 2 == 0 else "wrong"
            samples.append((task, transcript(answer), ground_truth(task, row["solution"], row["meta"])))
    return samples[:limit]


def rate(samples: list[Sample], score: Callable[[Sample], object], seconds: float) -> float:
    """Answers per second, cycling through the samples for at least `seconds`.

    The warm-up uses the last samples and the clock stops at the first sample past `seconds`,
    so a family with more samples than that (MATH) is measured on answers never seen before:
    math-verify caches parses, and training answers are new.
    """
    for sample in samples[-50:]:  # warm caches (scorer construction, regexes)
        score(sample)
    done, start = 0, time.perf_counter()
    while True:
        for sample in samples:
            score(sample)
            done += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return done / elapsed


def baseline(sample: Sample) -> bool:
    answer = extract_answer(sample[1])
    return answer is not None and answer == json.loads(sample[2])["answer"]


AGENT_LOOP_EXTRA_INFO = {"num_code_calls": 1, "num_turns": 3}  # what verl passes in training


def ours(sample: Sample) -> dict:
    return compute_score(sample[0], sample[1], sample[2], extra_info=AGENT_LOOP_EXTRA_INFO)


def verifier_only(sample: Sample) -> object:
    """The verifier called inline: no extraction, shaping or worker process."""
    truth = json.loads(sample[2])
    from reward_fns.registry import Reference

    reference = Reference(task=truth["task"], answer=truth["answer"], meta=truth["meta"])
    return get_verifier(sample[0])(extract_answer(sample[1]) or "", reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per family")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    parser.add_argument("--only", default="", help="measure only the families whose name contains this")
    args = parser.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    families = {
        "bbh (exact match)": (bbh_samples, True, ours),
        "reasoning_gym exact": (lambda: rg_samples(RG_EXACT), True, ours),
        "reasoning_gym heavy": (lambda: rg_samples(RG_HEAVY, per_dataset=6), False, ours),
        "symbench": (symbench_samples, False, ours),
        "symbench gsm_hard": (gsm_hard_samples, False, ours),
        "symbench math": (math_samples, False, ours),
        "symbench math, inline": (math_samples, False, verifier_only),
        "symbench path_plan": (path_plan_samples, False, ours),
    }
    print(f"{'family':<22}{'samples':>8}{'baseline/s':>13}{'ours/s':>11}{'ours/baseline':>15}  target")
    for family, (make_samples, exact_match, scorer) in families.items():
        if args.only not in family:
            continue
        samples = make_samples()
        if not samples:
            print(f"{family:<22}{0:>8}  (no registered tasks)")
            continue
        base, mine = rate(samples, baseline, args.seconds), rate(samples, scorer, args.seconds)
        verdict = ""
        if exact_match:
            ok = mine >= TARGET_EXACT_MATCH_PER_S
            verdict = f">= {TARGET_EXACT_MATCH_PER_S:,}/s {'OK' if ok else 'MISSED'}"
        print(f"{family:<22}{len(samples):>8}{base:>13,.0f}{mine:>11,.0f}{mine / base:>15.3f}  {verdict}")


if __name__ == "__main__":
    main()
