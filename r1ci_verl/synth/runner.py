"""SFT warm-start data from a teacher: sample, keep the correct trajectories, write trajectory JSONL.

    training questions x samples (prompt variants) -> offline rollout on the training rules
    (turn engine + sandbox) -> compute_score -> keep correct, renderable, distinct answers
    -> at most `max_per_task` per task -> trajectories.jsonl (what `r1ci data sft` reads)

The paper's SFT set: ~6.5k correct GPT-4o trajectories over the training tasks, at most 70 per
task, wrong ones dropped, prompts varied. A kept trajectory re-renders byte for byte through
r1ci_verl.data.sft_render, so SFT trains on exactly the transcript the teacher produced.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from r1ci_verl.potential.runner import Question, ScoreFn, default_score_fn, score_answer
from r1ci_verl.potential.strategies import STRATEGIES, build_messages
from r1ci_verl.rollout.clients import Client
from r1ci_verl.rollout.offline import ResultStore, RolloutResult, RolloutSettings, rollout, run_jobs
from reward_fns import protocol

PAPER_MAX_PER_TASK = 70  # paper: at most 70 kept trajectories per task
DEFAULT_VARIANTS = ("free", "guided", "code")  # prompt variants: the interpreter strategies' system prompts
SAMPLE_KEY = ("index", "sample")


@dataclass
class SynthConfig:
    samples_per_question: int = 4
    max_per_task: int = PAPER_MAX_PER_TASK
    variants: Sequence[str] = DEFAULT_VARIANTS
    concurrency: int = 32
    seed: int = 0
    teacher: str = "teacher"
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    max_consecutive_failures: int = 20

    def __post_init__(self) -> None:
        for name in self.variants:
            if name not in STRATEGIES or not STRATEGIES[name].runs_code:
                raise ValueError(f"unknown prompt variant {name!r}; known: {[s for s in STRATEGIES if STRATEGIES[s].runs_code]}")


def steps_of(result: RolloutResult) -> tuple[list[dict[str, str]], str] | None:
    """(steps, final) of a finished answer, or None when it cannot be rendered faithfully for SFT.

    Each inserted results block follows a model piece ending in a closed python block; a call-limit
    notice is not a code run and disqualifies the trajectory.
    """
    if result.pieces is None:
        return None
    steps, model_text = [], ""
    for text, inserted in result.pieces:
        if not inserted:
            model_text += text
            continue
        block = protocol.find_python_block(model_text)
        if block is None or model_text[block.end:] not in ("", "\n"):
            return None
        chunk = text.removeprefix("\n") if not model_text.endswith("\n") else text
        if not chunk.startswith(protocol.RESULTS_HEADER + "\n") or not chunk.endswith("\n"):
            return None
        body = chunk[len(protocol.RESULTS_HEADER) + 1 : -1]
        if body.startswith("Code was not run: the limit"):
            return None
        steps.append({"reasoning": model_text[: block.start], "code": block.code, "output": body})
        model_text = ""
    eos_chars = len(result.transcript) - len(result.response)  # the final EOS token is not part of the answer
    return steps, model_text[: len(model_text) - eos_chars]


def renders_back(prompt: list[dict[str, str]], steps: list[dict[str, str]], final: str, response: str) -> bool:
    from r1ci_verl.data.sft_render import Step, TrajectoryError, render_trajectory

    try:
        return render_trajectory([Step.from_dict(s) for s in steps], final) == response
    except TrajectoryError:
        return False


async def synthesize(
    questions: Sequence[Question],
    client: Client,
    store: ResultStore,
    config: SynthConfig,
    open_session: Callable[[], Any],
    score_fn: ScoreFn | None = None,
    progress: bool = True,
) -> int:
    """Sample and score every missing (question, sample); return how many failed (a rerun retries them)."""
    score_fn = score_fn or default_score_fn()
    jobs = [(q, s) for q in questions for s in range(config.samples_per_question)]

    async def work(job: tuple[Question, int]) -> dict[str, Any]:
        question, sample = job
        variant = config.variants[sample % len(config.variants)]
        seed = zlib.crc32(f"{config.seed}/synth/{question.index}/{sample}".encode()) & 0x7FFFFFFF
        messages = build_messages(STRATEGIES[variant], question.prompt)
        result = await rollout(client, messages, config.rollout, seed, open_session)
        scored = await score_answer(score_fn, question, result.response, result.scored_response)
        parsed = steps_of(result)
        renderable = parsed is not None and renders_back(question.prompt, *parsed, result.response)
        record = {
            "index": question.index, "sample": sample, "task": question.task, "variant": variant,
            "question_id": question.extra_info.get("question_id", question.index),
            "acc": float(scored["acc"]), "answer": protocol.extract_answer(result.scored_response),
            "renderable": renderable, **result.record(),
        }
        if renderable:
            record["steps"], record["final"] = parsed
        return record

    report = await run_jobs(jobs, lambda job: (job[0].index, job[1]), work, store, config.concurrency, "synth",
                            progress, config.max_consecutive_failures)
    return report.failed


def select(questions: Sequence[Question], records: Sequence[dict[str, Any]], config: SynthConfig
           ) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """Kept trajectories (correct, renderable, distinct, <= max_per_task per task) and the yield per task.

    Within a task, questions take turns (each question's first correct answer before any second
    one), so the cap spreads the data over as many questions as possible.
    """
    by_index = {q.index: q for q in questions}
    yields: dict[str, dict[str, int]] = defaultdict(lambda: {"asked": 0, "answered": 0, "correct": 0, "kept": 0})
    candidates: dict[str, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    seen: set[tuple[int, str]] = set()
    for record in sorted(records, key=lambda r: (int(r["index"]), int(r["sample"]))):
        question = by_index.get(int(record["index"]))
        if question is None:
            continue
        y = yields[question.task]
        y["asked"] += 1
        y["answered"] += record.get("answer") is not None
        correct = record["acc"] >= 1.0
        y["correct"] += correct
        if not (correct and record.get("renderable")):
            continue
        key = (question.index, " ".join(record["response"].split()))
        if key in seen:  # the same answer twice adds nothing to SFT
            continue
        seen.add(key)
        candidates[question.task][question.index].append(record)
    kept: list[dict[str, Any]] = []
    for task in sorted(candidates):
        per_question = list(candidates[task].values())
        round_no = 0
        chosen: list[dict[str, Any]] = []
        while len(chosen) < config.max_per_task and any(round_no < len(v) for v in per_question):
            for answers in per_question:
                if round_no < len(answers) and len(chosen) < config.max_per_task:
                    chosen.append(answers[round_no])
            round_no += 1
        yields[task]["kept"] = len(chosen)
        for record in chosen:
            question = by_index[int(record["index"])]
            kept.append({
                "question_id": record["question_id"], "task": task, "prompt": question.prompt,
                "steps": record["steps"], "final": record["final"], "answer": None,
                "teacher": config.teacher, "variant": record["variant"], "sample": record["sample"],
            })
    return kept, dict(sorted(yields.items()))


def yield_table(yields: dict[str, dict[str, int]]) -> str:
    lines = ["| task | asked | answered | correct | kept |", "|---|---:|---:|---:|---:|"]
    totals = {"asked": 0, "answered": 0, "correct": 0, "kept": 0}
    for task, y in yields.items():
        lines.append(f"| {task} | {y['asked']} | {y['answered']} | {y['correct']} | {y['kept']} |")
        for k in totals:
            totals[k] += y[k]
    lines.append(f"| **all** | {totals['asked']} | {totals['answered']} | {totals['correct']} | {totals['kept']} |")
    return "\n".join(lines) + "\n"
