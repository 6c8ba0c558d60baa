"""Build verl-ready parquet from the task registry: RL rows (train/test) and SFT rows.

Every row's ``data_source`` is its task's verifier name and ``reward_model.ground_truth`` is
a JSON string ``{"task", "answer", "meta"}``, so columns keep one arrow schema across tasks.
Files are written to a temporary name and moved into place, so a crash never leaves a
half-written parquet; ``manifest.json`` records counts, seeds, hashes and the split.

Reproducible in any process: some Reasoning-Gym generators draw from the iteration order of
sets of strings (``rng.choice(list(letters))`` in isomorphic_strings and ransom_note, word sets
in word_ladder, frozensets in knight_swap, sympy's ``free_symbols`` in polynomial_multiplication),
and that order follows Python's per-process string-hash seed. So generated tasks are always
built in worker processes started with ``PYTHONHASHSEED=0`` (`r1ci_verl.data.pinned_workers`;
in this process when it already runs with that seed), whatever the caller's seed and
``--workers``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from reward_fns.protocol import SYSTEM_PROMPT
from r1ci_verl.data.pinned_workers import PinnedHashPool, hash_seed_pinned
from r1ci_verl.data.sft_render import Step, TrajectoryError, render_sft_row
from r1ci_verl.data.splits import BBH_HELDOUT_PRESET, EXCLUDED, SPLITS, SplitError, TaskSplit, load_split
from r1ci_verl.data.tasks import FAMILIES, Task, TaskDataError, TaskQuestion, get_task, list_tasks
from r1ci_verl.data.tasks.records import parse_records, sha256_file

AGENT_NAME = "r1ci_code_interpreter"
REWARD_STYLE = "rule"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "r1ci-data/2"
BUILD_OUTPUTS = ("train.parquet", "test.parquet", "sft.parquet")  # files a build owns in --out

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
RL_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", _MESSAGES),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("agent_name", pa.string()),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("task", pa.string()),
                    ("family", pa.string()),
                    ("category", pa.string()),
                    ("split", pa.string()),
                    ("question_id", pa.string()),
                    ("source", pa.string()),
                ]
            ),
        ),
    ]
)
SFT_SCHEMA = pa.schema(
    [
        ("messages", _MESSAGES),
        ("data_source", pa.string()),
        (
            "extra_info",
            pa.struct([("index", pa.int64()), ("task", pa.string()), ("question_id", pa.string())]),
        ),
        # character spans of the results blocks, masked out of the SFT loss (r1ci_verl.training.sft_dataset)
        ("results_spans", pa.list_(pa.struct([("message", pa.int64()), ("start", pa.int64()), ("end", pa.int64())]))),
    ]
)


class BuildError(ValueError):
    """Bad build input: the message names the task, file, row or field."""


@dataclass
class BuildConfig:
    """What `r1ci data build` builds; each field has a matching command-line option."""

    out: str = "data/r1ci"
    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    tasks: list[str] | None = None  # exact task names; default: every registered task of `families`
    splits: list[str] = field(default_factory=lambda: list(SPLITS))
    max_per_task: int = 200  # paper: >= 200 questions per task where the source has them
    seed: int = 0  # drives generated tasks; fixed-data tasks take the first `max_per_task`
    split: str | None = None  # a packaged split preset; default: splits.DEFAULT_PRESET
    split_file: str | None = None  # a user's split file instead of a preset
    source: str | None = None  # SymBench/BBH in the published layout: a directory or hf:OWNER/NAME[@REV]
    workers: int = 1  # processes building tasks in parallel; does not change the output

    def validate(self) -> None:
        if self.workers < 1:
            raise BuildError(f"--workers must be >= 1, got {self.workers}")
        if self.max_per_task < 1:
            raise BuildError(f"--max-per-task must be >= 1, got {self.max_per_task}")
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise BuildError(f"unknown families {unknown}; known: {list(FAMILIES)}")
        bad_splits = sorted(set(self.splits) - set(SPLITS))
        if bad_splits or not self.splits:
            raise BuildError(f"splits must be a non-empty subset of {list(SPLITS)}, got {self.splits}")
        if self.split and self.split_file:
            raise BuildError("give --split or --split-file, not both")


def question_index(question_id: str) -> int:
    """A stable non-negative int for `question_id` (extra_info.index), the same in every build.

    53 bits so it survives any float round trip; collisions are checked at build time.
    """
    return int.from_bytes(hashlib.sha256(question_id.encode("utf-8")).digest()[:8], "big") >> 11


@dataclass
class TaskSelection:
    """The tasks to build (name order) and what the user should hear about the choice."""

    tasks: list[Task]
    notices: list[str]
    source_report: dict[str, Any] | None = None


def select_tasks(config: BuildConfig, split: TaskSplit) -> TaskSelection:
    """The tasks to build, read from the source the config names; unknown names are errors."""
    registered = list_tasks(config.families)
    notices: list[str] = []
    if config.tasks:
        unknown = sorted(set(config.tasks) - set(list_tasks()))
        if unknown:
            raise BuildError(f"--tasks: unknown task(s) {unknown}; see `r1ci data list`")
        names = sorted(n for n in set(config.tasks) if n in registered)
        if not names:
            raise BuildError(f"--tasks: none of {config.tasks} is in families {config.families}")
        left_out = sorted(n for n in names if split.split_of(n) == EXCLUDED)
        if left_out:
            raise BuildError(f"--tasks: {left_out} are excluded by split {split.name} ({split.where()})")
    else:
        names = [n for n in registered if split.split_of(n) != EXCLUDED]
    tasks = [get_task(name) for name in names]
    report = None
    if config.source:
        tasks, report = _from_source(tasks, config.source, notices)
    return TaskSelection(tasks=tasks, notices=notices, source_report=report)


def _from_source(tasks: list[Task], source: str, notices: list[str]) -> tuple[list[Task], dict[str, Any]]:
    from r1ci_verl.data.published_layout import cached_layout, resolve_source

    local, not_downloaded = resolve_source(source)
    root = str(local)
    layout = cached_layout(root)
    available = set(layout.tasks())
    if not available:
        raise BuildError(f"--source {source}: no task folder of the published layout found in {root}")
    chosen = [t.from_layout(root) if t.name in available and hasattr(t, "from_layout") else t for t in tasks]
    bundled = sorted(t.name for t in tasks if t.family in ("symbench", "bbh") and t.name not in available)
    unrecognised = sorted({*layout.unrecognised, *not_downloaded})
    if unrecognised:
        notices.append(f"--source {source}: not recognised, not read: {', '.join(unrecognised)}")
    if bundled:
        shown = ", ".join(bundled[:6]) + (f" and {len(bundled) - 6} more" if len(bundled) > 6 else "")
        notices.append(f"--source {source}: has no {shown}; {len(bundled)} task(s) read from the bundled copy")
    report = {"source": source, "read": sorted(t.name for t in chosen if getattr(t, "layout_root", None)),
              "bundled": bundled, "unrecognised": unrecognised}  # fmt: skip
    return chosen, report


def ground_truth_json(question: TaskQuestion, task: Task) -> str:
    try:
        return json.dumps(question.ground_truth(), ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BuildError(
            f"task {task.name!r}, question {question.question_id!r}: ground truth is not JSON ({exc})"
        ) from None


def rl_row(task: Task, question: TaskQuestion, split: str) -> dict[str, Any]:
    """One verl RL row: chat prompt, reward routing, ground truth and bookkeeping."""
    return {
        "data_source": task.name,
        "prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question.prompt}],
        "ability": task.category,
        "reward_model": {"style": REWARD_STYLE, "ground_truth": ground_truth_json(question, task)},
        "agent_name": AGENT_NAME,
        "extra_info": {
            "index": question_index(question.question_id),
            "task": task.name,
            "family": task.family,
            "category": task.category,
            "split": split,
            "question_id": question.question_id,
            "source": question.source,
        },
    }


def write_parquet_atomic(rows: Sequence[dict[str, Any]], schema: pa.Schema, path: Path) -> str:
    """Write `rows` to `path` via a temporary file and `os.replace`; return the file's sha256."""
    table = pa.Table.from_pylist(list(rows), schema=schema)
    return _write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def _write_atomic(path: Path, write: Callable[[Path], None]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return sha256_file(path)


def write_json_atomic(data: Any, path: Path) -> str:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return _write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


@dataclass
class TaskSummary:
    task: str
    family: str
    category: str
    split: str
    rows: int
    source: dict[str, Any]


@dataclass
class BuildResult:
    rows: dict[str, list[dict[str, Any]]]
    summaries: list[TaskSummary]
    split: TaskSplit


def task_rows(task: Task, side: str, max_per_task: int, seed: int) -> tuple[list[dict[str, Any]], TaskSummary]:
    """One task's rows and summary (a top-level function so worker processes can run it)."""
    task_rows_ = [rl_row(task, question, side) for question in task.questions(max_per_task, seed)]
    if not task_rows_:
        raise BuildError(f"task {task.name!r} produced no questions")
    summary = TaskSummary(
        task.name, task.family, task.category, side, len(task_rows_), task.source_fingerprint(max_per_task, seed)
    )
    return task_rows_, summary


@dataclass
class BuildPlan:
    """Everything checked before any question is generated."""

    config: BuildConfig
    split: TaskSplit
    jobs: list[tuple[Task, str]]
    notices: list[str]
    source_report: dict[str, Any] | None


def plan_build(config: BuildConfig) -> BuildPlan:
    """Check the config, the split and the task names; decide which task goes to which side."""
    config.validate()
    split = load_split(preset=config.split, path=config.split_file)
    split.check_names(list_tasks())
    selection = select_tasks(config, split)
    jobs = [(task, split.split_of(task.name)) for task in selection.tasks]  # uncovered task: error
    jobs = [(task, side) for task, side in jobs if side in config.splits]
    if not jobs:
        raise BuildError(f"nothing to build: no selected task is on the {config.splits} side of split {split.name}")
    notices = list(selection.notices)
    canary = sorted(t.name for t, side in jobs if side == "train" and t.family == "bbh")
    if canary:
        notices.append(
            f"note: {len(canary)} BBH task(s) are on the train side of split {split.name} (BBH files ask to be "
            f"kept out of training corpora); --split {BBH_HELDOUT_PRESET} keeps every BBH task on the test side"
        )
    return BuildPlan(config, split, jobs, notices, selection.source_report)


def build_rl_rows(config: BuildConfig | BuildPlan, progress: bool = False) -> BuildResult:
    """All RL rows per split, in task-name then source order; refuses duplicate question ids.

    Generated tasks run in worker processes with a pinned string-hash seed unless this process
    has it already (module docstring); ``config.workers`` sets how many. The output is the same.
    """
    plan = config if isinstance(config, BuildPlan) else plan_build(config)
    config = plan.config
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in config.splits}
    summaries: list[TaskSummary] = []
    owner_of_index: dict[int, str] = {}
    args = [(task, side, config.max_per_task, config.seed) for task, side in plan.jobs]
    pin = not hash_seed_pinned()
    remote = [config.workers > 1 or (pin and task.hash_order_sensitive) for task, _ in plan.jobs]
    with contextlib.ExitStack() as stack:
        futures: dict[int, Any] = {}
        if any(remote):
            pool = stack.enter_context(PinnedHashPool(min(config.workers, sum(remote))))
            futures = {i: pool.submit(task_rows, *job) for i, job in enumerate(args) if remote[i]}
        results: Iterable[tuple[list[dict[str, Any]], TaskSummary]] = (
            futures[i].result() if i in futures else task_rows(*job) for i, job in enumerate(args)
        )
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(args), desc="building tasks", unit="task")
        for task_rows_, summary in results:
            for row in task_rows_:
                info = row["extra_info"]
                if info["index"] in owner_of_index:
                    raise BuildError(
                        f"task {summary.task!r}: duplicate question id {info['question_id']!r} "
                        f"(index {info['index']} already used by {owner_of_index[info['index']]!r})"
                    )
                owner_of_index[info["index"]] = info["question_id"]
            rows[summary.split].extend(task_rows_)
            summaries.append(summary)
    return BuildResult(rows=rows, summaries=summaries, split=plan.split)


def build(config: BuildConfig | BuildPlan, progress: bool = False) -> dict[str, Any]:
    """Write ``<out>/{train,test}.parquet`` and ``manifest.json``; return the manifest.

    Files of an earlier build in ``out`` that this build does not write (a ``test.parquet``
    when only train is built, an ``sft.parquet`` rendered for other prompts) are removed, so
    the directory holds exactly what the new manifest lists.
    """
    plan = config if isinstance(config, BuildPlan) else plan_build(config)
    config = plan.config
    result = build_rl_rows(plan, progress=progress)
    out = Path(config.out)
    files: dict[str, Any] = {}
    for side, side_rows in result.rows.items():
        if not side_rows:
            continue  # no selected task on this side: no empty parquet to trip verl
        path = out / f"{side}.parquet"
        digest = write_parquet_atomic(side_rows, RL_SCHEMA, path)
        files[path.name] = {"rows": len(side_rows), "sha256": digest}
    for stale in BUILD_OUTPUTS:
        if stale not in files:
            (out / stale).unlink(missing_ok=True)
    split_file = result.split.path
    manifest = {
        "format": MANIFEST_FORMAT,
        "r1ci_verl_version": _package_version(),
        "config": {k: v for k, v in asdict(config).items() if k not in ("out", "workers")},
        "split": {
            "name": result.split.name,
            "kind": result.split.kind,
            "version": result.split.version,
            "file": split_file.name if split_file else None,
            "sha256": sha256_file(split_file) if split_file else None,
        },
        "source": plan.source_report,
        "files": files,
        "tasks": {s.task: {k: v for k, v in asdict(s).items() if k != "task"} for s in result.summaries},
        "counts": {
            "tasks": dict(Counter(s.split for s in result.summaries)),
            "rows": {side: len(r) for side, r in result.rows.items()},
            "rows_by_family": _rows_by_family(result.summaries),
        },
    }
    write_json_atomic(manifest, out / MANIFEST_NAME)
    return manifest


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("r1ci-verl")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _rows_by_family(summaries: Sequence[TaskSummary]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for summary in summaries:
        counts[f"{summary.split}/{summary.family}"] += summary.rows
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------- SFT


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def check_trajectory(origin: str, record: dict[str, Any]) -> None:
    """Field types of one trajectory record; the error names the line and the field."""

    def fail(field_name: str, expected: str, value: Any) -> BuildError:
        return BuildError(f"{origin}, field {field_name!r}: expected {expected}, got {_type_name(value)} {value!r:.60}")

    for name in ("question_id", "task"):
        if not isinstance(record[name], str) or not record[name]:
            raise fail(name, "a non-empty string", record[name])
    if not isinstance(record["final"], str):
        raise fail("final", "a string", record["final"])
    answer = record.get("answer")
    if answer is not None and not isinstance(answer, str):
        raise fail("answer", "a string or null", answer)
    prompt = record["prompt"]
    if not isinstance(prompt, list) or not prompt:
        raise fail("prompt", "a non-empty list of chat messages", prompt)
    for number, message in enumerate(prompt):
        if not isinstance(message, dict) or not all(isinstance(message.get(k), str) for k in ("role", "content")):
            raise fail(f"prompt[{number}]", "a message {role: str, content: str}", message)
    if prompt[-1]["role"] != "user":
        raise BuildError(
            f"{origin}, field 'prompt': the last message must be the user turn, got {prompt[-1]['role']!r}"
        )
    steps = record["steps"]
    if not isinstance(steps, list):
        raise fail("steps", "a list of steps", steps)
    for number, step in enumerate(steps):
        if not isinstance(step, dict):
            raise fail(f"steps[{number}]", "an object {reasoning, code, output}", step)
        for key in ("reasoning", "code", "output"):
            if key not in step:
                raise BuildError(f"{origin}, field 'steps[{number}]': missing {key!r}")
            if not isinstance(step[key], str):
                raise fail(f"steps[{number}].{key}", "a string", step[key])


def sft_rows_from_trajectories(
    records: Iterable[tuple[str, dict[str, Any]]], split: TaskSplit, timeout_s: float | None = None
) -> list[dict[str, Any]]:
    """SFT rows from teacher trajectories ``(origin, record)``; test-side tasks are refused.

    A record is ``{"question_id", "task", "prompt": [messages], "steps": [{"reasoning", "code",
    "output"}], "final": str, "answer": str | null}``; `prompt` is the RL row's prompt the
    teacher answered, so SFT and RL see the same question text.
    """
    rows: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    registered = set(list_tasks())
    for origin, record in records:
        check_trajectory(origin, record)
        task = record["task"]
        if task not in registered:
            raise BuildError(f"{origin}, field 'task': unknown task {task!r}; see `r1ci data list`")
        try:
            side = split.split_of(task)
        except SplitError as exc:
            raise BuildError(f"{origin}: {exc}") from None
        if side != "train":
            raise BuildError(
                f"{origin}, field 'task': {task!r} is on the {side} side of split {split.name}; "
                "SFT data must come from training tasks"
            )
        qid = record["question_id"]
        if qid in seen:
            raise BuildError(f"{origin}, field 'question_id': duplicate {qid!r} (first at {seen[qid]})")
        seen[qid] = origin
        try:
            steps = [Step.from_dict(s) for s in record["steps"]]
            rendered = render_sft_row(
                record["prompt"], steps, record["final"], record.get("answer"), timeout_s=timeout_s
            )
        except TrajectoryError as exc:
            raise BuildError(f"{origin}: {exc}") from None
        rows.append(
            {
                "messages": rendered["messages"],
                "data_source": task,
                "extra_info": {"index": question_index(qid), "task": task, "question_id": qid},
                "results_spans": rendered["results_spans"],
            }
        )
    return rows


TRAJECTORY_FIELDS = ("question_id", "task", "prompt", "steps", "final")


def build_sft(trajectories: Path, out: Path, split: TaskSplit, timeout_s: float | None = None) -> dict[str, Any]:
    """Render a JSONL file of teacher trajectories into ``<out>/sft.parquet``."""
    if not trajectories.is_file():
        raise BuildError(f"trajectory file not found: {trajectories}")
    try:
        with trajectories.open(encoding="utf-8") as handle:
            records = [
                (f"{trajectories}:{line}", record)
                for line, record in parse_records(handle, str(trajectories), TRAJECTORY_FIELDS)
            ]
    except TaskDataError as exc:
        raise BuildError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise BuildError(f"{trajectories}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows = sft_rows_from_trajectories(records, split, timeout_s=timeout_s)
    if not rows:
        raise BuildError(f"{trajectories}: no trajectories")
    digest = write_parquet_atomic(rows, SFT_SCHEMA, out / "sft.parquet")
    return {
        "file": "sft.parquet",
        "rows": len(rows),
        "sha256": digest,
        "trajectories_sha256": sha256_file(trajectories),
    }
