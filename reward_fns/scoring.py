"""compute_score: one response → shaped reward and metrics, routed by task name.

This is the function verl's ``reward.custom_reward_function`` calls (through r1ci_verl.reward):
``compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs)``.

* ``data_source`` is the registry name (``bbh/navigate``, ``reasoning_gym/gcd``, ``symbench/game24``).
* ``ground_truth`` is the JSON ``{"task", "answer", "meta"}`` our data builder writes; a plain
  string (or number, list) is taken as the answer itself, for users' own data.
* A verifier that raises scores 0 and the error is reported in the result, so one odd answer never
  kills a batch; verifiers registered with a time budget run in worker processes that are killed
  when they exceed it (reward_fns.verifier_pool), reported as ``verifier_timeout``.
  Configuration errors (unknown task, malformed ground truth) do raise: they affect every sample.
"""

from __future__ import annotations

import json
import numbers
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from reward_fns.parsing import text_equal
from reward_fns.protocol import SCORED_RESPONSE_KEY, extract_answer, find_python_blocks, format_ok
from reward_fns.registry import (
    Reference,
    Verifier,
    get_time_budget,
    get_verifier,
    has_verifier,
    load_user_module,
)
from reward_fns.shaping import ShapingConfig, shaped_score
from reward_fns.verifier_pool import shared_pool

REWARD_MODULES_ENV = "R1CI_REWARD_MODULES"  # comma-separated module specs, loaded in every process
UNKNOWN_TASK_POLICIES = ("error", "exact_match")
MAX_ERROR_CHARS = 300  # error text kept in a result


@dataclass(frozen=True)
class ScoringConfig:
    """How responses are scored; built from verl's ``reward_kwargs`` by `from_kwargs`."""

    shaping: ShapingConfig = field(default_factory=ShapingConfig)
    unknown_task: str = "error"  # "exact_match": unregistered tasks compare answers as text
    reward_modules: tuple[str, ...] = ()  # user modules that register verifiers

    def __post_init__(self) -> None:
        if self.unknown_task not in UNKNOWN_TASK_POLICIES:
            raise ValueError(f"unknown_task must be one of {UNKNOWN_TASK_POLICIES}, got {self.unknown_task!r}")

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "ScoringConfig":
        """Read our keys (shaping, unknown_task, reward_modules) and ignore verl's own kwargs."""
        modules = kwargs.get("reward_modules") or ()
        if isinstance(modules, str):
            modules = [m for m in modules.split(",") if m.strip()]
        shaping = kwargs.get("shaping")
        return cls(
            shaping=shaping if isinstance(shaping, ShapingConfig) else ShapingConfig.from_mapping(shaping),
            unknown_task=kwargs.get("unknown_task", "error"),
            reward_modules=tuple(str(m).strip() for m in modules),
        )


@dataclass(frozen=True)
class ScoreResult:
    """Everything scoring learned about one response."""

    score: float
    correct: bool
    format_ok: bool
    num_code_calls: int
    task: str
    answer: str | None
    error: str = ""  # why the verifier could not decide (it raised or ran out of time)
    timed_out: bool = False  # the verifier overran its time budget and was killed

    def as_metrics(self) -> dict[str, Any]:
        """The dict returned to verl: always the same keys (verl stacks them across a batch).

        verl puts these keys next to the agent loop's extra fields in one batch namespace, where
        the extra fields win; names here avoid the agent loop's own (its ``answered`` counts
        the model's words, this one any ``<<<…>>>`` in the scored text, see `scored_text`).
        """
        return {
            "score": self.score,
            "acc": 1.0 if self.correct else 0.0,
            "format_ok": 1.0 if self.format_ok else 0.0,
            "answer_extracted": 0.0 if self.answer is None else 1.0,
            "num_code_calls": self.num_code_calls,
            "verifier_error": 1.0 if self.error else 0.0,
            "verifier_timeout": 1.0 if self.timed_out else 0.0,
            "task": self.task,
            "reward_error": self.error,
        }


def parse_ground_truth(ground_truth: Any, data_source: str) -> Reference:
    """The Reference stored in a row: our JSON object, a dict, or a plain answer."""
    if isinstance(ground_truth, Reference):
        return ground_truth
    record: Any = ground_truth
    if isinstance(ground_truth, str):
        if not ground_truth.lstrip().startswith("{"):
            return Reference(task=data_source, answer=ground_truth)
        try:
            record = json.loads(ground_truth)
        except json.JSONDecodeError:
            return Reference(task=data_source, answer=ground_truth)  # an answer that starts with "{"
    if not isinstance(record, Mapping) or "answer" not in record:
        return Reference(task=data_source, answer=ground_truth)
    task = record.get("task") or data_source
    if task != data_source:
        raise ValueError(f"ground truth is for task {task!r} but the row's data_source is {data_source!r}")
    meta = record.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise ValueError(f"{data_source}: ground truth 'meta' must be an object, got {type(meta).__name__}")
    return Reference(task=task, answer=record["answer"], meta=dict(meta))


_DEFAULT_CONFIG = ScoringConfig()
_CONFIG_KEYS = frozenset({"shaping", "unknown_task", "reward_modules"})
_loaded_modules: set[str] = set()
_load_lock = threading.Lock()


def load_reward_modules(specs: Iterable[str] = ()) -> None:
    """Import user reward modules once per process: those given and those in $R1CI_REWARD_MODULES."""
    env_specs = [s.strip() for s in os.environ.get(REWARD_MODULES_ENV, "").split(",") if s.strip()]
    for spec in [*specs, *env_specs]:
        if spec in _loaded_modules:
            continue
        with _load_lock:
            if spec not in _loaded_modules:
                load_user_module(spec)
                _loaded_modules.add(spec)


def verifier_for(task: str, config: ScoringConfig) -> Verifier:
    """The task's verifier; text equality for unknown tasks under ``unknown_task="exact_match"``.

    Raises KeyError naming the task (and similar names) otherwise, answer or not: a wrong
    data_source affects every sample and must not pass silently as zero rewards.
    """
    if has_verifier(task) or config.unknown_task == "error":
        return get_verifier(task)
    return lambda answer, reference: text_equal(answer, str(reference.answer))


@dataclass(frozen=True)
class Verdict:
    """What one verifier call decided: correct or not, and why it could not decide."""

    correct: bool
    error: str = ""
    timed_out: bool = False


def verify_answer(task: str, verifier: Verifier, answer: str, reference: Reference) -> Verdict:
    """Run the verifier; exceptions and overruns become a wrong answer with a reason.

    Verifiers with a time budget run in a killable worker process (reward_fns.verifier_pool);
    the others run inline.
    """
    budget = get_time_budget(task)
    if budget is not None:
        outcome = shared_pool().run(task, answer, reference, budget)
        if outcome.error:
            return Verdict(False, f"{task}: {outcome.error}"[:MAX_ERROR_CHARS], outcome.timed_out)
        result = outcome.result
    else:
        try:
            result = verifier(answer, reference)
        except Exception as exc:  # noqa: BLE001 - one bad answer must not kill the batch
            return Verdict(False, f"{task}: {type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    if isinstance(result, numbers.Real):
        return Verdict(result == 1.0)
    return Verdict(False, f"{task}: verifier returned {type(result).__name__}, expected float or bool")


def _code_calls(text: str, extra_info: Mapping[str, Any] | None) -> int:
    """The agent loop's count when it reported one, else the python blocks in the text."""
    if extra_info:
        reported = extra_info.get("num_code_calls")
        if reported is not None:
            return int(reported)
    return len(find_python_blocks(text))


def scored_text(solution_str: str, extra_info: Mapping[str, Any] | None) -> str:
    """What is scored: the rollout's text without program output when it sent one
    (protocol.SCORED_RESPONSE_KEY), else the response itself."""
    scored = (extra_info or {}).get(SCORED_RESPONSE_KEY)
    return scored if isinstance(scored, str) else solution_str


def score_response(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    config: ScoringConfig | None = None,
) -> ScoreResult:
    """Score one response; see the module docstring for the inputs."""
    config = config or ScoringConfig()
    load_reward_modules(config.reward_modules)
    verifier = verifier_for(data_source, config)
    reference = parse_ground_truth(ground_truth, data_source)
    text = scored_text(solution_str, extra_info)
    answer = extract_answer(text)
    verdict = Verdict(False) if answer is None else verify_answer(data_source, verifier, answer, reference)
    well_formed = format_ok(text)
    calls = _code_calls(text, extra_info)
    return ScoreResult(
        score=shaped_score(verdict.correct, well_formed, calls, config.shaping),
        correct=verdict.correct,
        format_ok=well_formed,
        num_code_calls=calls,
        task=data_source,
        answer=answer,
        error=verdict.error,
        timed_out=verdict.timed_out,
    )


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """verl's custom reward signature: returns ``{"score", "acc", ...}`` (see ScoreResult.as_metrics).

    Keyword arguments from ``reward.custom_reward_function.reward_kwargs``: ``shaping`` (mapping
    of ShapingConfig fields), ``unknown_task`` ("error" | "exact_match"), ``reward_modules``.
    """
    config = _DEFAULT_CONFIG if not kwargs.keys() & _CONFIG_KEYS else ScoringConfig.from_kwargs(kwargs)
    return score_response(data_source, solution_str, ground_truth, extra_info, config).as_metrics()
