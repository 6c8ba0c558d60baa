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
from typing import Any, Callable, Sequence

from r1ci_verl.potential.stats import partition, summarize
from r1ci_verl.potential.store import SampleStore
from r1ci_verl.potential.strategies import DEFAULT_STRATEGIES, Strategy, build_messages, get_strategy
from r1ci_verl.rollout.clients import Client, SamplingConfig
from r1ci_verl.rollout.offline import RolloutSettings, rollout, run_jobs, text_only_rules
from reward_fns import protocol

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
    # The training rules (r1ci_verl.rollout.engine): call limit, stop after the answer, token budget.
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
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
        if self.num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {self.num_stages}")

    def settings_for(self, strategy: Strategy) -> RolloutSettings:
        rules = self.rollout.rules if strategy.runs_code else text_only_rules(self.rollout.rules)
        return RolloutSettings(rules=rules, budget=self.rollout.budget, code_timeout_s=self.rollout.code_timeout_s,
                               sampling=self.sampling)


def load_questions(path: str | Path) -> list[Question]:
    """Read an RL parquet file; bad input is a ValueError naming the file, row (1-based) and field."""
    import pandas as pd
    import pyarrow

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file" if not path.exists() else f"{path}: is not a file")
    try:
        frame = pd.read_parquet(path)
    except (pyarrow.ArrowInvalid, OSError) as exc:
        hint = " (it looks like JSONL: build the RL parquet with `r1ci data build`)" if _looks_like_json(path) else ""
        raise ValueError(f"{path}: not a parquet file{hint}: {exc}") from None
    for column in ("prompt", "data_source", "reward_model", "extra_info"):
        if column not in frame.columns:
            raise ValueError(f"{path}: missing column {column!r} (have {list(frame.columns)}); "
                             "expected an RL parquet from `r1ci data build`")
    questions, seen = [], {}
    for row_no, row in enumerate(frame.to_dict("records"), start=1):
        where = f"{path}, row {row_no}"
        extra_info = _as_dict(row["extra_info"], f"{where}, field 'extra_info'")
        reward_model = _as_dict(row["reward_model"], f"{where}, field 'reward_model'")
        if extra_info.get("index") is None:
            raise ValueError(f"{where}, field 'extra_info.index': missing")
        try:
            index = int(extra_info["index"])
        except (TypeError, ValueError):
            raise ValueError(f"{where}, field 'extra_info.index': not an integer: {extra_info['index']!r}") from None
        if index in seen:
            raise ValueError(f"{where}, field 'extra_info.index': duplicate index {index} (first in row {seen[index]})")
        seen[index] = row_no
        if "ground_truth" not in reward_model:
            raise ValueError(f"{where}, field 'reward_model.ground_truth': missing")
        try:
            prompt = [dict(m) for m in row["prompt"]]
        except (TypeError, ValueError):
            prompt = []
        if not prompt or not all("role" in m and "content" in m for m in prompt):
            raise ValueError(f"{where}, field 'prompt': must be a non-empty list of chat messages")
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


def select_questions(questions: Sequence[Question], tasks: Sequence[str] | None = None,
                     limit_per_task: int | None = None) -> list[Question]:
    """Only `tasks` (each must have questions; ValueError otherwise), and the first `limit_per_task` of each."""
    if tasks:
        known = {q.task for q in questions}
        missing = [t for t in tasks if t not in known]
        if missing:
            raise ValueError(f"task {missing[0]} has no question here (it holds {len(known)} tasks)")
        questions = [q for q in questions if q.task in set(tasks)]
    seen: dict[str, int] = {}
    kept = []
    for q in questions:
        seen[q.task] = seen.get(q.task, 0) + 1
        if limit_per_task is None or seen[q.task] <= limit_per_task:
            kept.append(q)
    return kept


def _looks_like_json(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(1) in (b"{", b"[")


def _as_dict(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{where}: not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be a mapping, got {type(value).__name__}")
    return dict(value)


def sample_seed(base_seed: int, index: int, strategy: str, sample: int) -> int:
    """A stable per-answer seed: the same answer is asked for with the same seed on a rerun."""
    return zlib.crc32(f"{base_seed}/{index}/{strategy}/{sample}".encode()) & 0x7FFFFFFF


def default_score_fn() -> ScoreFn:
    from reward_fns.scoring import compute_score

    return compute_score


async def score_answer(
    score_fn: ScoreFn, question: Question, response: str, scored_response: str | None = None
) -> dict[str, Any]:
    """Score one response with a verl-style compute_score (sync or async), off the event loop.

    `scored_response` (RolloutResult.scored_response) reaches it as training's agent loop sends it:
    the response without program output, under protocol.SCORED_RESPONSE_KEY.
    """
    extra_info = dict(question.extra_info)
    if scored_response is not None:
        extra_info[protocol.SCORED_RESPONSE_KEY] = scored_response
    result = await asyncio.to_thread(score_fn, question.data_source, response, question.ground_truth, extra_info)
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, dict) or "acc" not in result:
        raise ValueError(f"compute_score for {question.data_source!r} must return a dict with 'acc', got {result!r}")
    return result


async def sample_potential(
    questions: Sequence[Question],
    client: Client,
    store: SampleStore,
    config: PotentialConfig,
    open_session: Callable[[], Any] | None = None,
    score_fn: ScoreFn | None = None,
    progress: bool = True,
) -> int:
    """Sample and score every missing (question, strategy, sample); return how many failed.

    Each answer is one offline rollout on the training rules (r1ci_verl.rollout.offline). A failed
    answer (client or scorer error) is logged and left unrecorded, so a rerun retries it.
    """
    score_fn = score_fn or default_score_fn()
    strategies = [get_strategy(name) for name in config.strategies]
    jobs = [(q, s, n) for q in questions for s in strategies for n in range(config.samples_per_strategy)]

    async def work(job: tuple[Question, Strategy, int]) -> dict[str, Any]:
        return await _answer_and_score(*job, client, config, open_session, score_fn)

    report = await run_jobs(jobs, _key, work, store, config.concurrency, "potential", progress,
                            config.max_consecutive_failures)
    return report.failed


def _key(job: tuple[Question, Strategy, int]) -> tuple[int, str, int]:
    question, strategy, sample = job
    return question.index, strategy.name, sample


async def _answer_and_score(
    question: Question,
    strategy: Strategy,
    sample: int,
    client: Client,
    config: PotentialConfig,
    open_session: Callable[[], Any] | None,
    score_fn: ScoreFn,
) -> dict[str, Any]:
    seed = sample_seed(config.seed, question.index, strategy.name, sample)
    result = await rollout(client, build_messages(strategy, question.prompt), config.settings_for(strategy), seed,
                           open_session if strategy.runs_code else None)
    scored = await score_answer(score_fn, question, result.response, result.scored_response)
    record = {
        "index": question.index,
        "strategy": strategy.name,
        "sample": sample,
        "acc": float(scored["acc"]),
        "score": float(scored.get("score", scored["acc"])),
        "num_code_calls": result.stats.num_code_calls,
        "stop_reason": result.stats.stop_reason,
        "response_tokens": result.response_tokens,
    }
    if config.save_responses:
        record["response"] = result.response
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
    tmp = path.with_name(f".{path.name}.tmp")  # written whole, then renamed: never half a file
    if path.suffix == ".parquet":
        import pandas as pd

        pd.DataFrame(list(rows)).to_parquet(tmp, index=False)
        tmp.replace(path)
    elif path.suffix == ".jsonl":
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
