"""Check reward functions on a file of rows before training (the logic of `r1ci reward check`).

A row names its task in ``data_source`` (or ``task``; a bare name such as ``navigate`` is
resolved when exactly one family has it) and its ground truth in ``reward_model.ground_truth``
(verl parquet), ``ground_truth``, or ``answer``/``solution`` with optional ``meta``. Its
response is the row's ``response``, the matching line of an answers file, or (``gold``) the
stored answer written as ``<<<answer>>>``.

Every input problem raises `CheckInputError` naming the file, line (JSONL, 1-based), row
(1-based) and field, before anything is scored.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from reward_fns.registry import has_verifier, list_verifiers, load_user_module
from reward_fns.scoring import ScoringConfig, parse_ground_truth, score_response

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")
ANSWER_SUFFIXES = (".jsonl", ".json")
ANSWER_PREVIEW_CHARS = 60
GROUND_TRUTH_FIELDS = ("reward_model.ground_truth", "ground_truth", "answer", "solution")

ScoreFn = Callable[..., Any]


class CheckInputError(ValueError):
    """A data row, answers file or reward spec that cannot be used; the message says where."""


@dataclass(frozen=True)
class Location:
    """Where a row came from: file, 1-based line (JSONL only) and 1-based row."""

    path: Path
    row: int
    line: int | None = None

    def __str__(self) -> str:
        place = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{place}, row {self.row}"


@dataclass(frozen=True)
class Row:
    where: Location
    task: str
    ground_truth: Any
    response: str
    extra_info: dict[str, Any]


@dataclass(frozen=True)
class RowResult:
    row: Row
    score: float
    acc: float
    format_ok: float | None  # None: the reward function does not report it
    answered: float | None
    reason: str  # empty when correct
    seconds: float


@dataclass
class CheckRun:
    """What `check` did: results, rows skipped (and why), the timed scoring seconds."""

    results: list[RowResult]
    skipped: list[tuple[Row, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return sum(r.acc for r in self.results) / len(self.results) if self.results else 0.0


def read_records(path: Path) -> list[tuple[Location, Any]]:
    """(location, record) for each row of a JSONL or parquet file; blank JSONL lines are skipped."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CheckInputError(f"not a readable parquet file ({exc}), {path}") from None
        return [(Location(path, index + 1), record) for index, record in enumerate(table.to_pylist())]
    records = []
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                where = Location(path, len(records) + 1, number)
                try:
                    records.append((where, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise CheckInputError(f"not valid JSON ({exc.msg}), {where}") from None
    except UnicodeDecodeError as exc:
        raise CheckInputError(f"not UTF-8 text ({exc.reason}), {path}") from None
    return records


def resolve_task(name: str, where: Location) -> str:
    """A registered verifier name: `name` itself, or the one ``<family>/<name>`` that exists."""
    if "/" in name or has_verifier(name):
        return name
    matches = [v for v in list_verifiers() if v.split("/", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CheckInputError(f"task {name!r} is ambiguous ({', '.join(matches)}), {where}, "
                              "field 'data_source': give the family")
    return name  # unknown: `check_tasks_known` reports it unless unknown tasks are allowed


def ground_truth_of(record: Mapping[str, Any], where: Location) -> Any:
    """The row's ground truth; a missing or null one is an error naming the field."""
    reward_model = record.get("reward_model")
    if isinstance(reward_model, Mapping) and "ground_truth" in reward_model:
        field_name, value = "reward_model.ground_truth", reward_model["ground_truth"]
    elif "ground_truth" in record:
        field_name, value = "ground_truth", record["ground_truth"]
    else:
        field_name = next((name for name in ("answer", "solution") if name in record), None)
        if field_name is None:
            raise CheckInputError(f"no ground truth ({', '.join(GROUND_TRUTH_FIELDS)}), {where}")
        value = record[field_name]
        if value is not None or record.get("meta"):
            return {"answer": value, "meta": record.get("meta") or {}}
    if value is None:
        raise CheckInputError(f"ground truth is null, {where}, field {field_name!r}")
    return value


def _has_ground_truth_field(record: Mapping[str, Any]) -> bool:
    return "ground_truth" in record or isinstance(record.get("reward_model"), Mapping)


def symbench_ground_truth(task: str, record: Mapping[str, Any], where: Location) -> dict[str, Any]:
    """A bundled SymBench record's ground truth as the data builder stores it: the facts its check
    needs (``derived_*``) come from the question, so its raw ``solution`` and ``meta`` are not
    enough (every logic_puzzle, logical_equation or letters row would be a verifier error)."""
    from reward_fns.symbench import reference_from_record

    try:
        reference = reference_from_record({**record, "task": task.split("/", 1)[1]})
    except ValueError as exc:
        raise CheckInputError(f"{exc}, {where}") from None
    return {"task": reference.task, "answer": reference.answer, "meta": reference.meta}


def stored_answer(ground_truth: Any, task: str) -> Any:
    return parse_ground_truth(ground_truth, task).answer


def gold_response(answer: Any) -> str:
    """The stored answer written as a model would: prose, then <<<answer>>>."""
    return f"Reference answer.\n<<<{answer if isinstance(answer, str) else json.dumps(answer)}>>>"


def read_responses(path: Path) -> list[str]:
    """One response per JSONL line: a JSON string or an object with a string ``response``."""
    responses = []
    for where, record in read_records(path):
        if isinstance(record, str):
            responses.append(record)
        elif isinstance(record, Mapping) and isinstance(record.get("response"), str):
            responses.append(record["response"])
        else:
            raise CheckInputError(f"expected a JSON string or an object with a string 'response', {where}")
    return responses


def load_rows(data: Path, answers: Path | None = None, gold: bool = False) -> tuple[list[Row], list[tuple[Row, str]]]:
    """The rows to score, and (with ``gold``) those skipped because their task stores no answer."""
    records = read_records(data)
    if not records:
        raise CheckInputError(f"no rows, {data}")
    responses = read_responses(answers) if answers else None
    if responses is not None and len(responses) != len(records):
        raise CheckInputError(f"{len(responses)} responses for {len(records)} rows in {data}, {answers}")
    rows, skipped = [], []
    for index, (where, record) in enumerate(records):
        if not isinstance(record, Mapping):
            raise CheckInputError(f"expected a JSON object, got {type(record).__name__}, {where}")
        name = record.get("data_source") or record.get("task")
        if not isinstance(name, str) or not name:
            raise CheckInputError(f"task missing or not a string, {where}, field 'data_source' (or 'task')")
        task = resolve_task(name, where)
        ground_truth = ground_truth_of(record, where)
        if task.startswith("symbench/") and "solution" in record and not _has_ground_truth_field(record):
            ground_truth = symbench_ground_truth(task, record, where)
        extra_info = dict(record["extra_info"]) if isinstance(record.get("extra_info"), Mapping) else {}
        if gold:
            try:
                answer = stored_answer(ground_truth, task)
            except ValueError as exc:
                raise CheckInputError(f"{exc}, {where}, field 'ground_truth'") from None
            if answer is None:
                skipped.append((Row(where, task, ground_truth, "", extra_info), "the task stores no answer"))
                continue
            response = gold_response(answer)
        elif responses is not None:
            response = responses[index]
        elif isinstance(record.get("response"), str):
            response = record["response"]
        else:
            raise CheckInputError(f"response missing or not a string (or give answers / gold), {where}, field 'response'")
        rows.append(Row(where, task, ground_truth, response, extra_info))
    return rows, skipped


def check_tasks_known(rows: list[Row]) -> None:
    """Every row's task has a verifier: else an error naming the first such row and similar names."""
    for row in rows:
        if not has_verifier(row.task):
            base = row.task.rpartition("/")[2]
            similar = [v for v in list_verifiers() if base and base in v][:5]
            hint = f"; similar: {', '.join(similar)}" if similar else ""
            raise CheckInputError(f"no verifier registered for task {row.task!r}{hint}, {row.where}, field 'data_source'")


def load_reward_specs(specs: list[str]) -> ScoreFn | None:
    """Import every spec (module, .py path, or module:function); the last function replaces compute_score."""
    custom = None
    for spec in specs:
        try:
            loaded = load_user_module(spec)
        except (ImportError, AttributeError, FileNotFoundError, SyntaxError) as exc:
            raise CheckInputError(f"cannot load reward {spec!r}: {exc}") from None
        if ":" in spec:
            if not callable(loaded):
                raise CheckInputError(f"reward {spec!r} is not a function")
            custom = loaded
    return custom


def _score_one(row: Row, custom: ScoreFn | None, config: ScoringConfig) -> tuple[float, float, float | None, float | None, str]:
    if custom is None:
        scored = score_response(row.task, row.response, row.ground_truth, row.extra_info, config)
        return scored.score, float(scored.correct), float(scored.format_ok), float(scored.answer is not None), _reason(scored, row)
    raw = custom(data_source=row.task, solution_str=row.response, ground_truth=row.ground_truth,
                 extra_info=dict(row.extra_info))
    if inspect.isawaitable(raw):  # verl accepts async reward functions too
        raw = asyncio.run(raw)
    metrics = raw if isinstance(raw, Mapping) else {"score": raw}
    if "score" not in metrics:
        raise CheckInputError(f"the reward function returned a dict without 'score' (keys: {sorted(metrics)}), {row.where}")
    score = float(metrics["score"])
    acc = float(metrics.get("acc", score))
    format_ok = float(metrics["format_ok"]) if "format_ok" in metrics else None
    answered = float(metrics["answer_extracted"]) if "answer_extracted" in metrics else None
    reason = "" if acc == 1.0 else str(metrics.get("reward_error") or f"score {score:g}")
    return score, acc, format_ok, answered, reason


def score_rows(rows: list[Row], custom: ScoreFn | None = None, unknown_task: str = "error") -> tuple[list[RowResult], float]:
    """Score every row; returns the results and the total scoring seconds.

    The first row of each task is scored once untimed first, so one-off costs (importing
    reasoning-gym, building a dataset's scorer) are not charged to whichever task comes first.
    """
    config = ScoringConfig(unknown_task=unknown_task)
    warmed: set[str] = set()
    for row in rows:
        if row.task not in warmed:
            warmed.add(row.task)
            _score_one(row, custom, config)
    results = []
    start = time.perf_counter()
    for row in rows:
        row_start = time.perf_counter()
        outcome = _score_one(row, custom, config)
        results.append(RowResult(row, *outcome[:4], reason=outcome[4], seconds=time.perf_counter() - row_start))
    return results, time.perf_counter() - start


def check(data: Path, answers: Path | None = None, gold: bool = False, reward_specs: list[str] | None = None,
          unknown_task: str = "error") -> CheckRun:
    """Load, validate and score a file of rows: the whole `r1ci reward check`, minus printing."""
    custom = load_reward_specs(list(reward_specs or ()))
    rows, skipped = load_rows(data, answers, gold)
    if not rows:
        tasks = sorted({row.task for row, _ in skipped})
        raise CheckInputError(f"nothing to check: no row has a stored answer (tasks {', '.join(tasks)}), {data}")
    if custom is None and unknown_task == "error":
        check_tasks_known(rows)
    results, seconds = score_rows(rows, custom, unknown_task)
    return CheckRun(results, skipped, seconds)


def _reason(scored: Any, row: Row) -> str:
    if scored.correct:
        return ""
    if scored.answer is None:
        return "no <<<answer>>> outside code blocks"
    if scored.error:
        return f"verifier error: {scored.error}"
    expected = stored_answer(row.ground_truth, row.task)
    if expected is None:
        return f"wrong answer: {preview(scored.answer)} (the task checks answers without a stored one)"
    return f"wrong answer: {preview(scored.answer)} (expected {preview(expected)})"


def preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= ANSWER_PREVIEW_CHARS else text[: ANSWER_PREVIEW_CHARS - 1] + "…")


def per_task(results: list[RowResult]) -> Iterator[tuple[str, list[RowResult]]]:
    groups: dict[str, list[RowResult]] = {}
    for result in results:
        groups.setdefault(result.row.task, []).append(result)
    yield from sorted(groups.items())


@dataclass(frozen=True)
class TaskStats:
    """Per-task (or overall) figures; None where the reward function does not report a metric."""

    rows: int
    accuracy: float
    mean_score: float
    format_ok: float | None
    answered: float | None
    ms_per_answer: float


def stats(group: list[RowResult]) -> TaskStats:
    n = len(group)

    def mean_or_none(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else sum(values) / n  # type: ignore[arg-type]

    return TaskStats(
        rows=n,
        accuracy=sum(r.acc for r in group) / n,
        mean_score=sum(r.score for r in group) / n,
        format_ok=mean_or_none([r.format_ok for r in group]),
        answered=mean_or_none([r.answered for r in group]),
        ms_per_answer=1000 * sum(r.seconds for r in group) / n,
    )


def result_record(result: RowResult) -> dict[str, Any]:
    """One line of the per-row results file."""
    where = result.row.where
    return {"row": where.row, "line": where.line, "task": result.row.task, "score": result.score, "acc": result.acc,
            "format_ok": result.format_ok, "answered": result.answered, "reason": result.reason}
