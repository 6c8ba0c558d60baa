"""Offline rollouts on the training rules: one answer, a resumable result store, a job runner.

`r1ci potential`, `r1ci eval` and `r1ci sft synth` all go through `rollout` (the turn engine
driven by a client, code run in a tool_env sandbox) and `run_jobs` (bounded concurrency, a
progress bar with ETA, failures counted, nothing done twice thanks to `ResultStore`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Hashable, Iterable, Iterator, Optional, Sequence

from r1ci_verl.rollout.clients import Client, SamplingConfig
from r1ci_verl.rollout.engine import (
    EngineRules,
    Generation,
    SessionExecutor,
    Trajectory,
    TrajectoryStats,
    TurnEngine,
    decode,
)
from tool_env import AsyncSession

logger = logging.getLogger(__name__)

DEFAULT_RESPONSE_BUDGET = 4096  # response tokens per answer, generated and inserted (training's response_length)
PAPER_CODE_TIMEOUT_S = 60.0  # paper: 60 s per execution


@dataclass(frozen=True)
class RolloutSettings:
    """Rules of one offline answer: the engine's rules, the token budget and the code timeout."""

    rules: EngineRules = field(default_factory=EngineRules)
    budget: int = DEFAULT_RESPONSE_BUDGET
    code_timeout_s: float = PAPER_CODE_TIMEOUT_S
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


@dataclass
class RolloutResult:
    """One answer: its transcript, the text it is scored on, and the engine's counters."""

    transcript: str  # decoded response ids, special tokens included (what the agent loop's ids decode to)
    response: str  # the transcript without the final EOS token
    stats: TrajectoryStats
    num_turns: int
    response_tokens: int
    generated_tokens: int
    wall_s: float
    # The transcript as (text, inserted) runs: model text and results blocks in order; None when
    # runs decoded apart do not join into the transcript (a character split across a boundary).
    pieces: Optional[list[tuple[str, bool]]] = None
    scored_response: str = ""  # what a reward reads: the response without program output (TurnEngine.scored_text)

    def record(self) -> dict[str, Any]:
        """Flat fields for a result file."""
        return {
            "response": self.response, "stop_reason": self.stats.stop_reason, "num_turns": self.num_turns,
            "response_tokens": self.response_tokens, "generated_tokens": self.generated_tokens,
            "wall_s": round(self.wall_s, 3), **{k: v for k, v in asdict(self.stats).items() if k != "stop_reason"},
        }


class SandboxFailedError(RuntimeError):
    """The sandbox itself failed during an answer: the answer is dropped and retried on rerun."""


async def rollout(
    client: Client,
    messages: list[dict[str, str]],
    settings: RolloutSettings,
    seed: int,
    open_session: Optional[Callable[[], AsyncSession]] = None,
) -> RolloutResult:
    """One answer to `messages` under the training rules (see r1ci_verl.rollout.engine)."""
    started = time.perf_counter()
    if open_session is None and settings.rules.max_code_calls > 0:
        raise ValueError("a rollout that may run code needs a sandbox (open_session)")
    traj = Trajectory(prompt_ids=client.prompt_ids(messages), budget=settings.budget)
    executor = SessionExecutor(open_session or _no_sandbox, settings.code_timeout_s)

    async def generate(traj: Trajectory, max_tokens: int, stop: Sequence[str]) -> Generation:
        call_seed = seed + traj.stats.num_generate_calls
        return await client.generate(traj.prompt_ids + traj.response_ids, max_tokens, stop, settings.sampling, call_seed)

    engine = TurnEngine(client.tokenizer, settings.rules, generate, executor)
    try:
        await engine.roll(traj)
    finally:
        await executor.close()
    if traj.stats.sandbox_failures:  # the tool broke, not the model: not an answer to record or score
        raise SandboxFailedError(f"{traj.stats.sandbox_failures} code block(s) hit a sandbox failure")
    ids = traj.response_ids
    scored_ids = ids[:-1] if ids and ids[-1] in engine.eos_ids and traj.response_mask[-1] else ids
    return RolloutResult(
        transcript=decode(client.tokenizer, ids),
        response=decode(client.tokenizer, scored_ids),
        stats=traj.stats,
        num_turns=traj.num_turns,
        response_tokens=len(ids),
        generated_tokens=sum(traj.response_mask),
        wall_s=time.perf_counter() - started,
        pieces=_pieces(client.tokenizer, ids, traj.response_mask),
        scored_response=engine.scored_text(traj),
    )


def _pieces(tokenizer: Any, ids: list[int], mask: list[int]) -> Optional[list[tuple[str, bool]]]:
    runs: list[tuple[list[int], bool]] = []
    for token, m in zip(ids, mask):
        if runs and runs[-1][1] == (m == 0):
            runs[-1][0].append(token)
        else:
            runs.append(([token], m == 0))
    pieces = [(decode(tokenizer, run), inserted) for run, inserted in runs]
    return pieces if "".join(text for text, _ in pieces) == decode(tokenizer, ids) else None


def _no_sandbox() -> AsyncSession:
    raise RuntimeError("no sandbox configured for this rollout")


def text_only_rules(rules: EngineRules) -> EngineRules:
    """Rules for an all-text strategy: no code is run (a block gets the call-limit notice)."""
    return EngineRules(max_code_calls=0, max_generate_calls=rules.max_generate_calls,
                       stop_after_answer=rules.stop_after_answer, stop_strings=rules.stop_strings)


# ---------------------------------------------------------------------------- result store
SETTINGS_SUFFIX = ".settings.json"  # beside a store: the run settings its answers were sampled with


class StoreSettingsMismatch(ValueError):
    """A store is reopened with other run settings: a usage error (exit status 2 in the CLI)."""

    exit_code = 2


class ResultStore:
    """Append-only JSONL of finished records, keyed by `key_fields`, so a killed run resumes.

    A line is written and fsynced only after its record is complete, so every key on disk is
    done; a half-written last line (the process died mid-write) is cut off on open.
    """

    def __init__(self, path: str | Path, key_fields: Sequence[str], settings: Optional[dict[str, Any]] = None):
        self.path = Path(path)
        self.key_fields = tuple(key_fields)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if settings is not None:
            self._check_settings(settings)
        self.records: list[dict[str, Any]] = list(self._read_and_repair())
        self.done: set[tuple] = {self.key(r) for r in self.records}
        self._file = self.path.open("a", encoding="utf-8")

    def _check_settings(self, settings: dict[str, Any]) -> None:
        """A resumed run must sample as the earlier one did (model, sampling, rules, data), or its
        stored answers would be reported under settings that did not produce them."""
        sidecar = self.path.with_name(self.path.name + SETTINGS_SUFFIX)
        settings = json.loads(json.dumps(settings, default=str))
        if not sidecar.exists():
            write_json_atomic(sidecar, settings)
            return
        stored = json.loads(sidecar.read_text(encoding="utf-8"))
        changed = sorted(k for k in {*stored, *settings} if stored.get(k) != settings.get(k))
        if changed:
            what = ", ".join(f"{k} {stored.get(k)!r} -> {settings.get(k)!r}" for k in changed)
            raise StoreSettingsMismatch(
                f"{self.path} holds answers sampled with other settings ({what}): "
                "rerun with the same settings to continue it, or write to a new output")

    def key(self, record: dict[str, Any]) -> tuple:
        return tuple(_norm(record[f]) for f in self.key_fields)

    def _read_and_repair(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            logger.warning("%s: dropping a half-written last line (%d bytes) from an interrupted run",
                           self.path, len(data) - complete)
            with self.path.open("r+b") as f:
                f.truncate(complete)
        seen: set[tuple] = set()
        for line_no, line in enumerate(data[:complete].decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = self.key(record)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{self.path}:{line_no}: not a result record ({type(exc).__name__}: {exc})") from None
            if key in seen:
                raise ValueError(f"{self.path}:{line_no}: record {key} recorded twice")
            seen.add(key)
            yield record

    def append(self, record: dict[str, Any]) -> None:
        key = self.key(record)
        if key in self.done:
            raise ValueError(f"record {key} is already recorded in {self.path}")
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done.add(key)
        self.records.append(record)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _norm(value: Any) -> Hashable:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON through a temporary file and rename: a reader never sees half a report."""
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str))


def write_text_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- job runner
@dataclass
class JobReport:
    total: int
    skipped: int  # already in the store
    done: int
    failed: int
    wall_s: float


async def run_jobs(
    jobs: Iterable[Any],
    key: Callable[[Any], tuple],
    work: Callable[[Any], Awaitable[dict[str, Any]]],
    store: ResultStore,
    concurrency: int,
    desc: str,
    progress: bool = True,
    max_consecutive_failures: int = 20,
) -> JobReport:
    """Run `work(job)` for every job whose key is not in `store`; append each record as it finishes.

    A failed job is logged once and left unrecorded (a rerun retries it); `max_consecutive_failures`
    failures in a row stop the run (a dead server or a broken scorer), keeping what was saved.
    """
    from tqdm.auto import tqdm

    jobs = list(jobs)
    todo = [job for job in jobs if key(job) not in store.done]
    report = JobReport(total=len(jobs), skipped=len(jobs) - len(todo), done=0, failed=0, wall_s=0.0)
    consecutive = 0
    started = time.perf_counter()
    bar = tqdm(total=len(jobs), initial=report.skipped, desc=desc, unit="answer", disable=not progress,
               dynamic_ncols=True)
    queue = iter(todo)

    async def worker() -> None:
        nonlocal consecutive
        for job in queue:
            try:
                record = await work(job)
            except Exception as exc:  # keep going: one bad answer must not stop a long run
                report.failed += 1
                consecutive += 1
                logger.error("%s %s failed: %s: %s", desc, key(job), type(exc).__name__, exc)
                if consecutive >= max_consecutive_failures:
                    raise RuntimeError(
                        f"stopping: {consecutive} answers in a row failed (last: {type(exc).__name__}: {exc}); "
                        "finished answers are saved, rerun the same command to continue") from exc
            else:
                store.append(record)
                report.done += 1
                consecutive = 0
            bar.update(1)

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, min(concurrency, len(todo))))]
    try:
        await asyncio.gather(*workers)
    finally:  # one worker gave up: stop the others before the caller closes the client and store
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        bar.close()
        report.wall_s = time.perf_counter() - started
    return report
