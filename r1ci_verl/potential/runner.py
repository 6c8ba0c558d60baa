"""Estimate p and Π for every training question: sample, score, aggregate, write.

    questions (RL parquet) × strategies × samples → rollout → compute_score → SampleStore
    SampleStore → summarize → potential file (index, p, potential, stage, p_<strategy>…)

Resumable: samples already in the store are skipped, so rerunning the same command after a
kill finishes the job without scoring anything twice.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from r1ci_verl.potential.backends import CompletionBackend, SamplingConfig
from r1ci_verl.potential.rollout import CodeRunner, RolloutLimits, rollout
from r1ci_verl.potential.stats import partition, summarize
from r1ci_verl.potential.store import SampleStore
from r1ci_verl.potential.strategies import DEFAULT_STRATEGIES, Strategy, build_messages, get_strategy

logger = logging.getLogger(__name__)

ScoreFn = Callable[..., Any]  # compute_score(data_source, solution_str, ground_truth, extra_info)


@dataclass(frozen=True)
class Question:
    index: int
    task: str
    data_source: str
    prompt: list[dict[str, str]]
    ground_truth: Any
    extra_info: dict[str, Any]


@dataclass
class PotentialConfig:
    strategies: Sequence[str] = DEFAULT_STRATEGIES
    samples_per_strategy: int = 5  # paper: 4 strategies × 5 samples = 20 answers
    num_stages: int = 4
    partition_mode: str = "potential"
    concurrency: int = 32  # answers in flight at once
    seed: int = 0
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    limits: RolloutLimits = field(default_factory=RolloutLimits)
    save_responses: bool = False  # keep each transcript in the samples file
    max_consecutive_failures: int = 20  # a dead server or broken scorer stops the run instead of logging forever

    def __post_init__(self) -> None:
        self.strategies = tuple(self.strategies)
        for name in self.strategies:
            get_strategy(name)
        if self.samples_per_strategy < 1:
            raise ValueError(f"samples_per_strategy must be >= 1, got {self.samples_per_strategy}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency}")


def load_questions(path: str | Path) -> list[Question]:
    """Read an RL parquet file; a malformed row is an error that names the row and field."""
    import pandas as pd

    frame = pd.read_parquet(path)
    for column in ("prompt", "data_source", "reward_model", "extra_info"):
        if column not in frame.columns:
            raise ValueError(f"{path}: missing column {column!r} (have {list(frame.columns)})")
    questions, seen = [], {}
    for row_no, row in enumerate(frame.to_dict("records")):
        where = f"{path} row {row_no}"
        extra_info = _as_dict(row["extra_info"], f"{where}: extra_info")
        reward_model = _as_dict(row["reward_model"], f"{where}: reward_model")
        if "index" not in extra_info:
            raise ValueError(f"{where}: extra_info.index is missing")
        index = int(extra_info["index"])
        if index in seen:
            raise ValueError(f"{where}: extra_info.index={index} repeats row {seen[index]}")
        seen[index] = row_no
        if "ground_truth" not in reward_model:
            raise ValueError(f"{where}: reward_model.ground_truth is missing")
        prompt = [dict(m) for m in row["prompt"]]
        if not prompt or not all("role" in m and "content" in m for m in prompt):
            raise ValueError(f"{where}: prompt must be a non-empty list of chat messages")
        questions.append(
            Question(
                index=index,
                task=str(extra_info.get("task", row["data_source"])),
                data_source=str(row["data_source"]),
                prompt=prompt,
                ground_truth=reward_model["ground_truth"],
                extra_info=extra_info,
            )
        )
    return questions


def _as_dict(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping, got {type(value).__name__}")
    return dict(value)


def sample_seed(base_seed: int, index: int, strategy: str, sample: int) -> int:
    """A stable per-answer seed: the same answer is asked for with the same seed on a rerun."""
    return zlib.crc32(f"{base_seed}/{index}/{strategy}/{sample}".encode()) & 0x7FFFFFFF


def default_score_fn() -> ScoreFn:
    from reward_fns.scoring import compute_score

    return compute_score


async def _score(score_fn: ScoreFn, question: Question, response: str) -> dict[str, Any]:
    result = await asyncio.to_thread(
        score_fn, question.data_source, response, question.ground_truth, dict(question.extra_info)
    )
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, dict) or "acc" not in result:
        raise ValueError(f"compute_score for {question.data_source!r} must return a dict with 'acc', got {result!r}")
    return result


async def sample_potential(
    questions: Sequence[Question],
    backend: CompletionBackend,
    store: SampleStore,
    config: PotentialConfig,
    sandbox: CodeRunner | None = None,
    score_fn: ScoreFn | None = None,
    progress: bool = True,
) -> int:
    """Sample and score every missing (question, strategy, sample); return how many failed.

    A failed answer (backend or scorer error) is logged and left unrecorded, so a rerun
    retries it.
    """
    from tqdm.auto import tqdm

    score_fn = score_fn or default_score_fn()
    strategies = [get_strategy(name) for name in config.strategies]
    total = len(questions) * len(strategies) * config.samples_per_strategy
    jobs = [job for job in _jobs(questions, strategies, config.samples_per_strategy) if _key(job) not in store.done]
    failures = consecutive = 0
    bar = tqdm(total=total, initial=total - len(jobs), desc="potential", unit="answer", disable=not progress)
    queue: Iterator = iter(jobs)

    async def worker() -> None:
        nonlocal failures, consecutive
        for question, strategy, sample in queue:
            try:
                store.append(await _answer_and_score(question, strategy, sample, backend, config, sandbox, score_fn))
                consecutive = 0
            except Exception as exc:  # keep going: one bad answer must not stop a day-long run
                failures += 1
                consecutive += 1
                logger.error("question %d strategy %s sample %d failed: %s: %s",
                             question.index, strategy.name, sample, type(exc).__name__, exc)
                if consecutive >= config.max_consecutive_failures:
                    raise RuntimeError(
                        f"stopping: {consecutive} answers in a row failed (last: {type(exc).__name__}: {exc}); "
                        "scored answers are saved, rerun to continue"
                    ) from exc
            bar.update(1)

    try:
        await asyncio.gather(*(worker() for _ in range(min(config.concurrency, max(1, len(jobs))))))
    finally:
        bar.close()
    return failures


def _jobs(questions, strategies, samples_per_strategy) -> Iterator[tuple[Question, Strategy, int]]:
    for question in questions:
        for strategy in strategies:
            for sample in range(samples_per_strategy):
                yield question, strategy, sample


def _key(job: tuple[Question, Strategy, int]) -> tuple[int, str, int]:
    question, strategy, sample = job
    return question.index, strategy.name, sample


async def _answer_and_score(
    question: Question,
    strategy: Strategy,
    sample: int,
    backend: CompletionBackend,
    config: PotentialConfig,
    sandbox: CodeRunner | None,
    score_fn: ScoreFn,
) -> dict[str, Any]:
    prompt = backend.render(build_messages(strategy, question.prompt))
    seed = sample_seed(config.seed, question.index, strategy.name, sample)
    transcript = await rollout(backend, prompt, strategy.runs_code, config.sampling, seed, sandbox, config.limits)
    scored = await _score(score_fn, question, transcript.response)
    record = {
        "index": question.index,
        "strategy": strategy.name,
        "sample": sample,
        "acc": float(scored["acc"]),
        "score": float(scored.get("score", scored["acc"])),
        "num_code_calls": transcript.num_code_calls,
        "finish_reason": transcript.finish_reason,
        "response_chars": len(transcript.response),
    }
    if config.save_responses:
        record["response"] = transcript.response
    return record


def potential_table(questions: Sequence[Question], records: Sequence[dict], config: PotentialConfig) -> list[dict]:
    """One row per question: p, Π, the stage it falls in, and p per strategy."""
    wanted = {q.index for q in questions}
    records = [r for r in records if int(r["index"]) in wanted and r["strategy"] in config.strategies]
    overall = summarize(records)
    missing = sorted(wanted - set(overall))
    if missing:
        raise ValueError(f"{len(missing)} questions have no scored sample yet (e.g. index {missing[:5]}); rerun to finish")
    per_strategy = {name: summarize(r for r in records if r["strategy"] == name) for name in config.strategies}
    groups = partition({i: s.p for i, s in overall.items()}, config.num_stages, config.partition_mode)
    stage_of = {index: stage for stage, group in enumerate(groups) for index in group}
    rows = []
    for question in questions:
        stats = overall[question.index]
        row = {
            "index": question.index,
            "task": question.task,
            "data_source": question.data_source,
            "num_samples": stats.num_samples,
            "num_correct": stats.num_correct,
            "p": stats.p,
            "potential": stats.potential,
            "stage": stage_of[question.index],
        }
        for name, table in per_strategy.items():
            row[f"p_{name}"] = table[question.index].p if question.index in table else None
        rows.append(row)
    return rows


def write_table(rows: Sequence[dict], path: str | Path) -> None:
    """Write `rows` as .parquet or .jsonl (chosen by the file suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame(list(rows)).to_parquet(path, index=False)
    elif path.suffix == ".jsonl":
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(path)
    else:
        raise ValueError(f"{path}: potential file must end in .parquet or .jsonl")


def read_table(path: str | Path) -> list[dict]:
    """Read a potential file written by `write_table` (also used by the curriculum sampler)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"potential file not found: {path}")
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    if path.suffix == ".jsonl":
        rows = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{line_no}: invalid JSON ({exc})") from None
        return rows
    raise ValueError(f"{path}: potential file must end in .parquet or .jsonl")
