"""Per-task readers of the published SymBench/BBH layout: files of one task folder -> records.

Each reader yields records in the schema of the bundled JSONL copy, in the bundled copy's
order (natural order; difficulty sub-folders visited round-robin). Derived fields
(``derived_*``) are computed exactly as the bundled copy computed them.
"""

from __future__ import annotations

import logging

import contextvars
import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Iterator

from r1ci_verl.data.tasks.base import TaskDataError
from r1ci_verl.data.tasks.records import json_lines

GAME24_TARGET = 24
_NATURAL = re.compile(r"(\d+)")
logger = logging.getLogger(__name__)


def natural_key(name: str) -> tuple:
    """``sample_2`` before ``sample_10``: digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in _NATURAL.split(name))


_last_read: contextvars.ContextVar[Path | None] = contextvars.ContextVar("last_read", default=None)


def last_read() -> Path | None:
    """The file a reader read last: where a record it could not make came from."""
    return _last_read.get()


def _read_json(path: Path) -> Any:
    _last_read.set(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskDataError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise TaskDataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def _read_text(path: Path) -> str:
    _last_read.set(path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskDataError(f"{path}: cannot read ({exc})") from None


def _record(task: str, sample_id: str, question: str | None, solution: Any, meta: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{task}/{sample_id}", "task": task, "question": question, "solution": solution, "meta": meta}


def _subdirs(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name))


def _round_robin(groups: list[list[Any]]) -> Iterator[Any]:
    """The first item of every group, then the second, ...: every difficulty level appears early."""
    for position in range(max((len(g) for g in groups), default=0)):
        for group in groups:
            if position < len(group):
                yield group[position]


# ---------------------------------------------------------------- sample_N/ folders


def _sample_dirs(folder: Path) -> list[Path]:
    return [p for p in _subdirs(folder) if p.name.startswith("sample_")]


def solution_records(folder: Path, task: str, answer_field: str) -> Iterator[dict[str, Any]]:
    """Tasks stored as ``sample_N/question.txt`` + ``solution.json`` whose answer is one field."""
    for sample in _sample_dirs(folder):
        yield _solution_record(task, answer_field, sample, folder)


def _solution_record(task: str, answer_field: str, sample: Path, folder: Path) -> dict[str, Any]:
    question = _read_text(sample / "question.txt")
    solution_file = sample / "solution.json"
    data = _read_json(solution_file)
    if not isinstance(data, dict) or answer_field not in data:
        raise TaskDataError(f"{solution_file}: expected an object with field {answer_field!r}")
    meta = {k: v for k, v in data.items() if k != answer_field}
    return _record(task, sample.relative_to(folder).as_posix(), question, data[answer_field], meta)


def pattern_recognition(folder: Path) -> Iterator[dict[str, Any]]:
    for sample in _sample_dirs(folder):
        data = _read_json(sample / "solution.json")
        if not isinstance(data, dict) or "row" not in data or "column" not in data:
            raise TaskDataError(f"{sample / 'solution.json'}: expected an object with fields 'row' and 'column'")
        yield _record("pattern_recognition", sample.name, _read_text(sample / "question.txt"),
                      [data["row"], data["column"]], data)  # fmt: skip


_LOGICAL_EQUATION_DIR = re.compile(r"sample_(\d+)_(\d+)_(\d+)$")


def logical_equation(folder: Path) -> Iterator[dict[str, Any]]:
    groups: dict[tuple[int, int], list[tuple[int, Path]]] = {}
    for sample in _subdirs(folder):
        match = _LOGICAL_EQUATION_DIR.match(sample.name)
        if match:
            letters, equations, index = map(int, match.groups())
            groups.setdefault((letters, equations), []).append((index, sample))
    ordered = [sorted(groups[key]) for key in sorted(groups)]
    for index, sample in _round_robin(ordered):
        letters, equations, _ = map(int, _LOGICAL_EQUATION_DIR.match(sample.name).groups())
        meta = {"derived_num_letters": letters, "derived_num_equations": equations, "derived_index": index}
        yield _record("logical_equation", sample.name, _read_text(sample / "question.txt"),
                      _read_json(sample / "solution.json"), meta)  # fmt: skip


# ---------------------------------------------------------------- task-specific files


def _parse_stacks(block: str) -> dict[str, list[str]]:
    stacks: dict[str, list[str]] = {}
    for line in block.splitlines():
        if ":" in line:
            name, _, blocks = line.partition(":")
            stacks[name.strip()] = blocks.split()
    return stacks


def blocksworld(folder: Path) -> Iterator[dict[str, Any]]:
    groups: dict[tuple[int, ...], list[tuple[int, Path]]] = {}
    for sample in _subdirs(folder):
        parts = sample.name.split("_")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            groups.setdefault(tuple(map(int, parts[:3])), []).append((int(parts[3]), sample))
    for index, sample in _round_robin([sorted(groups[key]) for key in sorted(groups)]):
        task_file = sample / "blocksworld_task.txt"
        text = _read_text(task_file)
        initial, sep, goal = text.partition("Goal State:")
        if not sep or "Initial State:" not in initial:
            raise TaskDataError(f"{task_file}: expected 'Initial State:' and 'Goal State:' sections")
        initial_state = _parse_stacks(initial.split("Initial State:", 1)[1])
        goal_state = _parse_stacks(goal)
        meta = {
            "task_text": text,
            "derived_initial_state": initial_state,
            "derived_goal_state": goal_state,
            "derived_num_blocks": sum(len(b) for b in initial_state.values()),
            "derived_num_initial_stacks": len(initial_state),
            "derived_num_goal_stacks": len(goal_state),
            "derived_index": index,
        }
        yield _record("blocksworld", sample.name, None, None, meta)


def boxlift_estimated_steps(boxes: list[int], lifters: list[int]) -> int:
    """The step bound the prompt states: first-fit greedy, heaviest box first, lifters in listed order."""
    remaining = sorted(boxes, reverse=True)
    steps = 0
    while remaining:
        steps += 1
        free = list(range(len(lifters)))
        lifted_any = False
        for box in list(remaining):
            team, capacity = [], 0
            for lifter in free:
                if capacity >= box:
                    break
                team.append(lifter)
                capacity += lifters[lifter]
            if capacity >= box:
                remaining.remove(box)
                free = [lifter for lifter in free if lifter not in team]
                lifted_any = True
        if not lifted_any:
            raise ValueError(f"box {remaining[0]} is heavier than all lifters together")
    return steps


_BOXLIFT_GROUP = re.compile(r"BoxLift_(\d+)_(\d+)$")
_BOXLIFT_SAMPLE = re.compile(r"BoxLift(\d+)$")


def boxlift(folder: Path) -> Iterator[dict[str, Any]]:
    groups = []
    for group in _subdirs(folder):
        if _BOXLIFT_GROUP.match(group.name):
            samples = [(int(m.group(1)), s) for s in _subdirs(group) if (m := _BOXLIFT_SAMPLE.match(s.name))]
            groups.append(sorted(samples))
    for index, sample in _round_robin(groups):
        path = sample / "BoxLift.json"
        data = _read_json(path)
        try:
            boxes, lifters = data["boxes"], data["lifters"]
            steps = boxlift_estimated_steps(boxes, lifters)
        except (KeyError, TypeError, ValueError) as exc:
            raise TaskDataError(f"{path}: expected 'boxes' and 'lifters' that can lift every box ({exc})") from None
        meta = {**data, "derived_estimated_steps": steps, "derived_num_boxes": len(boxes),
                "derived_num_lifters": len(lifters), "derived_index": index}  # fmt: skip
        yield _record("boxlift", sample.relative_to(folder).as_posix(), None, None, meta)


_BOXNET_GROUP = re.compile(r"env_pg_state_(\d+)_(\d+)$")
_BOXNET_SAMPLE = re.compile(r"pg_state(\d+)$")


def boxnet(folder: Path) -> Iterator[dict[str, Any]]:
    groups = []
    for group in _subdirs(folder):
        match = _BOXNET_GROUP.match(group.name)
        if match:
            rows, cols = map(int, match.groups())
            samples = [(int(m.group(1)), rows, cols, s) for s in _subdirs(group) if (m := _BOXNET_SAMPLE.match(s.name))]
            groups.append(sorted(samples, key=lambda item: item[0]))
    for index, rows, cols, sample in _round_robin(groups):
        path = sample / f"{sample.name}.json"
        state = _read_json(path)
        if not isinstance(state, dict):
            raise TaskDataError(f"{path}: expected an object mapping squares to items")
        items = [item for contents in state.values() for item in contents]
        meta = {
            "state": state,
            "derived_grid_rows": rows,
            "derived_grid_cols": cols,
            "derived_index": index,
            "derived_num_boxes": sum(item.startswith("box_") for item in items),
            "derived_num_targets": sum(item.startswith("target_") for item in items),
        }
        yield _record("boxnet", sample.relative_to(folder).as_posix(), None, None, meta)


_LETTERS_BUCKET = re.compile(r"Letters_dataset_min_length_(\d+)_max_length_(\d+)$")
_LETTERS_SAMPLE = re.compile(r"([a-z])_(\d+)_(\d+)$")


def letters(folder: Path) -> Iterator[dict[str, Any]]:
    buckets = []
    for bucket in _subdirs(folder):
        match = _LETTERS_BUCKET.match(bucket.name)
        if not match:
            continue
        low, high = map(int, match.groups())
        samples = []
        for sample in _subdirs(bucket):
            m = _LETTERS_SAMPLE.match(sample.name)
            if m:
                letter, freq, index = m.group(1), int(m.group(2)), int(m.group(3))
                samples.append(((index, letter, freq), low, high, sample))
        buckets.append(sorted(samples, key=lambda item: item[0]))
    for (index, letter, freq), low, high, sample in _round_robin(buckets):
        path = sample / "test_words.json"
        word = _read_json(path)
        if not isinstance(word, str):
            raise TaskDataError(f"{path}: expected a JSON string (the word)")
        positions = [i for i, char in enumerate(word, start=1) if char == letter]
        meta = {"word": word, "derived_letter": letter, "derived_letter_freq": freq, "derived_index": index,
                "derived_min_length": low, "derived_max_length": high, "derived_count": len(positions),
                "derived_positions": positions}  # fmt: skip
        yield _record("letters", sample.relative_to(folder).as_posix(), None, None, meta)


def game24(folder: Path) -> Iterator[dict[str, Any]]:
    path = folder / "24" / "24.csv"
    if not path.is_file():
        return
    rows = list(csv.DictReader(io.StringIO(_read_text(path))))
    for line, row in sorted(enumerate(rows, start=2), key=lambda item: int(item[1].get("Rank") or 0)):
        try:
            numbers = [int(n) for n in row["Puzzles"].split()]
            rank = int(row["Rank"])
        except (KeyError, ValueError, AttributeError):
            raise TaskDataError(f"{path}:{line}: expected integer 'Rank' and space-separated 'Puzzles'") from None
        meta = {**row, "derived_numbers": numbers, "derived_target": GAME24_TARGET}
        yield _record("game24", f"rank_{rank}", None, None, meta)


def number_multiply(folder: Path) -> Iterator[dict[str, Any]]:
    groups = []
    for group in _subdirs(folder):
        if group.name.startswith("digit_"):
            digits = [int(d) for d in group.name.split("_")[1:] if d.isdigit()]
            groups.append([(digits, s) for s in _sample_dirs(group)])
    for digits, sample in _round_robin(groups):
        raw = _read_text(sample / "target_answer.txt")
        try:
            solution = int(raw.strip())
        except ValueError:
            raise TaskDataError(f"{sample / 'target_answer.txt'}: expected an integer, got {raw.strip()!r}") from None
        meta = {"input_value_list": _read_json(sample / "input_value_list.txt"), "target_answer_raw": raw,
                "derived_digits": digits}  # fmt: skip
        yield _record("number_multiply", sample.relative_to(folder).as_posix(),
                      _read_text(sample / "input_prompt_1.txt"), solution, meta)  # fmt: skip


# ---------------------------------------------------------------- MATH, GSM-Hard, BBH


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in `text` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for position in range(begin - 1, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return text[begin:position]
    return None


def math(folder: Path, task: str) -> Iterator[dict[str, Any]]:
    unboxed = []
    for path in sorted(folder.glob("*.json"), key=lambda p: natural_key(p.name)):
        data = _read_json(path)
        if not isinstance(data, dict) or not all(k in data for k in ("problem", "solution")):
            raise TaskDataError(f"{path}: expected an object with 'problem' and 'solution'")
        answer = last_boxed(data["solution"])
        if answer is None:  # no boxed answer: nothing to verify against
            unboxed.append(path.name)
            continue
        meta = {"level": data.get("level"), "type": data.get("type"), "worked_solution": data["solution"]}
        yield _record(task, path.stem, data["problem"], answer, meta)
    if unboxed:
        logger.warning("%s: left out %d problem(s) whose solution has no \\boxed answer (e.g. %s)",
                       folder, len(unboxed), unboxed[0])


def gsm_hard(path: Path) -> Iterator[dict[str, Any]]:
    for line_no, data in json_lines(_read_text(path).splitlines(), str(path)):
        if not isinstance(data, dict) or "input" not in data or "target" not in data:
            raise TaskDataError(f"{path}:{line_no}: expected an object with 'input' and 'target'")
        yield _record("gsm_hard", str(line_no - 1), data["input"], data["target"], {"code": data.get("code")})


def bbh(path: Path, task: str) -> Iterator[dict[str, Any]]:
    data = _read_json(path)
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list):
        raise TaskDataError(f"{path}: expected an object with a list 'examples'")
    for index, example in enumerate(examples):
        if not isinstance(example, dict) or "input" not in example or "target" not in example:
            raise TaskDataError(f"{path}: example {index} needs 'input' and 'target'")
        yield {"id": f"{task}/{index}", "task": task, "question": example["input"], "answer": example["target"]}
