"""Evaluate a model on test questions: sample n answers each on the training rules, score them.

    questions (RL parquet) x n samples -> offline rollout (turn engine + sandbox) -> compute_score
    -> samples.jsonl (resumable) -> report (r1ci_verl.evaluation.report)

The paper's settings are the defaults: temperature 0.6, at most 8 code calls, 60 s per run.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from r1ci_verl.potential.runner import Question, ScoreFn, default_score_fn, score_answer
from r1ci_verl.rollout.clients import Client, SamplingConfig
from r1ci_verl.rollout.offline import ResultStore, RolloutSettings, rollout, run_jobs
from reward_fns import protocol

PAPER_EVAL_TEMPERATURE = 0.6
SAMPLE_KEY = ("index", "sample")


@dataclass
class EvalConfig:
    n: int = 1  # samples per question: mean@n and pass@n
    concurrency: int = 32
    seed: int = 0
    rollout: RolloutSettings = field(
        default_factory=lambda: RolloutSettings(sampling=SamplingConfig(temperature=PAPER_EVAL_TEMPERATURE)))
    add_system_prompt: bool = True  # as the agent loop does for rows without a system message
    max_consecutive_failures: int = 20


def eval_messages(question: Question, add_system_prompt: bool = True) -> list[dict[str, str]]:
    messages = [dict(m) for m in question.prompt]
    if add_system_prompt and messages[0].get("role") != "system":
        messages.insert(0, {"role": "system", "content": protocol.SYSTEM_PROMPT})
    return messages


def open_store(path, settings: dict | None = None) -> ResultStore:
    return ResultStore(path, SAMPLE_KEY, settings)


async def evaluate(
    questions: Sequence[Question],
    client: Client,
    store: ResultStore,
    config: EvalConfig,
    open_session: Callable[[], Any] | None,
    score_fn: ScoreFn | None = None,
    progress: bool = True,
) -> int:
    """Answer and score every missing (question, sample); return how many failed (a rerun retries them)."""
    score_fn = score_fn or default_score_fn()
    jobs = [(q, s) for q in questions for s in range(config.n)]

    async def work(job: tuple[Question, int]) -> dict[str, Any]:
        question, sample = job
        seed = zlib.crc32(f"{config.seed}/eval/{question.index}/{sample}".encode()) & 0x7FFFFFFF
        result = await rollout(client, eval_messages(question, config.add_system_prompt), config.rollout, seed,
                               open_session)
        scored = await score_answer(score_fn, question, result.response, result.scored_response)
        return {
            "index": question.index, "sample": sample, "task": question.task, "data_source": question.data_source,
            "acc": float(scored["acc"]), "score": float(scored.get("score", scored["acc"])),
            "format_ok": scored.get("format_ok"), "answer": protocol.extract_answer(result.scored_response),
            **result.record(), "transcript": result.transcript,
        }

    report = await run_jobs(jobs, lambda job: (job[0].index, job[1]), work, store, config.concurrency, "eval",
                            progress, config.max_consecutive_failures)
    return report.failed
