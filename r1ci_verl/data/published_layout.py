"""Read SymBench and BIG-Bench-Hard from the layout in which they are published.

The layout is CodeSteer's ``dataset_gather/``, which is also the layout of the
R1-Code-Interpreter data repository on the Hugging Face hub: one folder per task holding
``sample_N/question.txt`` + ``solution.json`` (or task-specific files), plus
``MATH/train/<subject>/<n>.json``, ``gsmhardv2.jsonl`` and ``BIG-Bench-Hard/bbh/<task>.json``.

Each task's samples become records in the schema of the bundled JSONL copy
(``{"id", "task", "question", "solution", "meta"}`` for SymBench, ``{"id", "task",
"question", "answer"}`` for BBH), so a task reads the published data exactly as it reads
its bundled copy. Every sample the source has is read, in the order the bundled copy uses
(natural order; difficulty sub-folders visited round-robin), so the bundled records are a
prefix of the full ones. Folders that map to no task are reported by name, never skipped
silently.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from r1ci_verl.data.tasks.base import TaskDataError

HF_PREFIX = "hf:"

# task folder -> (task name, field of solution.json holding the answer; None: task-specific reader)
SAMPLE_FOLDERS: dict[str, tuple[str, str | None]] = {
    "2048_dataset": ("2048", "solution"),
    "combinatorial_calculation": ("combinatorial_calculation", "solution"),
    "constrained_linear_arrangement": ("constrained_linear_arrangement", "solution"),
    "cryptanalysis": ("cryptanalysis", "answer"),
    "eight_queens_dataset": ("eight_queens", "solution"),
    "letter_logic_diagram": ("letter_logic_diagram", "solution"),
    "light_puzzles_dataset": ("light_puzzles", "solution"),
    "logic_puzzle_dataset": ("logic_puzzle", "solution"),
    "mahjong_pattern_dataset": ("mahjong_pattern", "solution"),
    "matrix_transformation_dataset": ("matrix_transformation", "solution"),
    "new_operator_dataset": ("new_operator", "solution"),
    "permutations_and_combinations": ("permutations_and_combinations", "correct_solution"),
    "pooling_dataset": ("pooling", "solution"),
    "reversi_dataset": ("reversi", "solution"),
    "statistical_counting_dataset": ("statistical_counting", "solution"),
    "string_deletion_and_modification": ("string_deletion_and_modification", "final_string"),
    "string_insertion": ("string_insertion", "modified_string"),
    "string_splitting": ("string_splitting", "expected_answer"),
    "string_synthesis": ("string_synthesis", "final_counts"),
    "standard_sudoku": ("sudoku", "solution"),
    "synthesis_decomposition_dataset": ("synthesis_decomposition", "solution"),
    "pattern_recognition": ("pattern_recognition", None),
    "logical_equation": ("logical_equation", None),
}
SPECIAL_FOLDERS: dict[str, str] = {
    "Blocksworld_dataset": "blocksworld",
    "BoxLift_dataset": "boxlift",
    "BoxNet1_dataset": "boxnet",
    "Letters": "letters",
    "game24_dataset": "game24",
    "number_multiply": "number_multiply",
}
MATH_SUBJECTS = {"geometry": "math_geometry", "counting_and_probability": "math_counting_and_probability"}
GSM_HARD_FILE = "gsmhardv2.jsonl"
BBH_FOLDER = "BIG-Bench-Hard"
GAME24_TARGET = 24

# Entries that are known and deliberately not read (variants and logs of the tasks above).
IGNORED_PATTERNS = (
    re.compile(r".*_SFT$"),
    re.compile(r".*_varied_complexity$"),
    re.compile(r"eight_queens_dataset_(2|hard)$"),
    re.compile(r"(README|LICENSE).*", re.IGNORECASE),
    re.compile(r"\..*"),  # .git, .gitattributes, .cache
)

_NATURAL = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple:
    """``sample_2`` before ``sample_10``: digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in _NATURAL.split(name))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskDataError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise TaskDataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def _read_text(path: Path) -> str:
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


def _solution_record(task: str, answer_field: str, sample: Path, folder: Path) -> dict[str, Any]:
    question = _read_text(sample / "question.txt")
    solution_file = sample / "solution.json"
    data = _read_json(solution_file)
    if not isinstance(data, dict) or answer_field not in data:
        raise TaskDataError(f"{solution_file}: expected an object with field {answer_field!r}")
    meta = {k: v for k, v in data.items() if k != answer_field}
    return _record(task, sample.relative_to(folder).as_posix(), question, data[answer_field], meta)


def _pattern_recognition(folder: Path) -> Iterator[dict[str, Any]]:
    for sample in _sample_dirs(folder):
        data = _read_json(sample / "solution.json")
        if not isinstance(data, dict) or "row" not in data or "column" not in data:
            raise TaskDataError(f"{sample / 'solution.json'}: expected an object with fields 'row' and 'column'")
        yield _record("pattern_recognition", sample.name, _read_text(sample / "question.txt"),
                      [data["row"], data["column"]], data)  # fmt: skip


_LOGICAL_EQUATION_DIR = re.compile(r"sample_(\d+)_(\d+)_(\d+)$")


def _logical_equation(folder: Path) -> Iterator[dict[str, Any]]:
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


def _blocksworld(folder: Path) -> Iterator[dict[str, Any]]:
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


def _boxlift(folder: Path) -> Iterator[dict[str, Any]]:
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


def _boxnet(folder: Path) -> Iterator[dict[str, Any]]:
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


def _letters(folder: Path) -> Iterator[dict[str, Any]]:
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


def _game24(folder: Path) -> Iterator[dict[str, Any]]:
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


def _number_multiply(folder: Path) -> Iterator[dict[str, Any]]:
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


def _math(folder: Path, task: str) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob("*.json"), key=lambda p: natural_key(p.name)):
        data = _read_json(path)
        if not isinstance(data, dict) or not all(k in data for k in ("problem", "solution")):
            raise TaskDataError(f"{path}: expected an object with 'problem' and 'solution'")
        answer = last_boxed(data["solution"])
        if answer is None:
            continue  # no boxed answer: nothing to verify against
        meta = {"level": data.get("level"), "type": data.get("type"), "worked_solution": data["solution"]}
        yield _record(task, path.stem, data["problem"], answer, meta)


def _gsm_hard(path: Path) -> Iterator[dict[str, Any]]:
    for line_no, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskDataError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from None
        if not isinstance(data, dict) or "input" not in data or "target" not in data:
            raise TaskDataError(f"{path}:{line_no}: expected an object with 'input' and 'target'")
        yield _record("gsm_hard", str(line_no - 1), data["input"], data["target"], {"code": data.get("code")})


def _bbh(path: Path, task: str) -> Iterator[dict[str, Any]]:
    data = _read_json(path)
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list):
        raise TaskDataError(f"{path}: expected an object with a list 'examples'")
    for index, example in enumerate(examples):
        if not isinstance(example, dict) or "input" not in example or "target" not in example:
            raise TaskDataError(f"{path}: example {index} needs 'input' and 'target'")
        yield {"id": f"{task}/{index}", "task": task, "question": example["input"], "answer": example["target"]}


# ---------------------------------------------------------------- the source as a whole


@dataclass(frozen=True)
class PublishedLayout:
    """A directory in the published layout; `readers` maps ``family/task`` to its record reader."""

    root: Path
    readers: dict[str, Callable[[], Iterator[dict[str, Any]]]]
    files: dict[str, list[Path]]  # task -> the files or folders its records come from
    unrecognised: tuple[str, ...]

    def tasks(self) -> list[str]:
        return sorted(self.readers)

    def records(self, task: str) -> Iterator[dict[str, Any]]:
        """Every sample of `task`, in source order; a task folder with no sample is an error."""
        count = 0
        for record in self.readers[task]():
            count += 1
            yield record
        if count == 0:
            where = ", ".join(str(p) for p in self.files[task][:1]) or str(self.root)
            raise TaskDataError(f"{where}: no samples of {task} found (empty task folder or file)")

    def fingerprint(self, task: str) -> str:
        """sha256 over the relative paths and bytes of every file the task's records come from."""
        digest = hashlib.sha256()
        for top in self.files[task]:
            paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
            for path in paths:
                digest.update(path.relative_to(self.root).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def _ignored(name: str) -> bool:
    return any(pattern.fullmatch(name) for pattern in IGNORED_PATTERNS)


def open_layout(root: str | Path) -> PublishedLayout:
    """Map the folders of `root` to task names; folders that map to none are listed as unrecognised."""
    root = Path(root)
    if not root.is_dir():
        raise TaskDataError(f"source {root}: not a directory")
    readers: dict[str, Callable[[], Iterator[dict[str, Any]]]] = {}
    files: dict[str, list[Path]] = {}
    unrecognised: list[str] = []

    def add(task: str, reader: Callable[[], Iterator[dict[str, Any]]], *sources: Path) -> None:
        readers[task], files[task] = reader, list(sources)

    for entry in sorted(root.iterdir(), key=lambda p: natural_key(p.name)):
        name = entry.name
        if entry.is_dir() and name in SAMPLE_FOLDERS:
            task, field = SAMPLE_FOLDERS[name]
            if field is None:
                reader = {"pattern_recognition": _pattern_recognition, "logical_equation": _logical_equation}[task]
                add(f"symbench/{task}", lambda e=entry, r=reader: r(e), entry)
            else:
                add(f"symbench/{task}",
                    lambda e=entry, t=task, f=field: (_solution_record(t, f, s, e) for s in _sample_dirs(e)), entry)
        elif entry.is_dir() and name in SPECIAL_FOLDERS:
            task = SPECIAL_FOLDERS[name]
            reader = {"blocksworld": _blocksworld, "boxlift": _boxlift, "boxnet": _boxnet, "letters": _letters,
                      "game24": _game24, "number_multiply": _number_multiply}[task]  # fmt: skip
            sources = [entry / "24" / "24.csv"] if task == "game24" else [entry]
            add(f"symbench/{task}", lambda e=entry, r=reader: r(e), *sources)
        elif entry.is_dir() and name == "MATH":
            for subject, task in MATH_SUBJECTS.items():
                folder = entry / "train" / subject
                if folder.is_dir():
                    add(f"symbench/{task}", lambda f=folder, t=task: _math(f, t), folder)
        elif entry.is_file() and name == GSM_HARD_FILE:
            add("symbench/gsm_hard", lambda p=entry: _gsm_hard(p), entry)
        elif entry.is_dir() and name == BBH_FOLDER:
            for path in sorted((entry / "bbh").glob("*.json")):
                add(f"bbh/{path.stem}", lambda p=path: _bbh(p, p.stem), path)
        elif not _ignored(name):
            unrecognised.append(name)
    return PublishedLayout(root=root, readers=readers, files=files, unrecognised=tuple(unrecognised))


def resolve_source(source: str) -> Path:
    """A local directory, or ``hf:OWNER/NAME[@REV]`` downloaded as a hub dataset snapshot."""
    if not source.startswith(HF_PREFIX):
        return Path(source)
    repo, _, revision = source[len(HF_PREFIX) :].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise TaskDataError(f"source {source!r}: expected hf:OWNER/NAME or hf:OWNER/NAME@REVISION")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=repo, repo_type="dataset", revision=revision or None))


@functools.lru_cache(maxsize=4)
def cached_layout(root: str) -> PublishedLayout:
    """`open_layout` once per process: every task of a build reads from the same source."""
    return open_layout(root)
