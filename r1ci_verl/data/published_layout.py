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

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from r1ci_verl.data import layout_readers as read
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

# Entries that are known and deliberately not read (variants and logs of the tasks above).
IGNORED_PATTERNS = (
    re.compile(r".*_SFT$"),
    re.compile(r".*_varied_complexity$"),
    re.compile(r"eight_queens_dataset_(2|hard)$"),
    re.compile(r"(README|LICENSE).*", re.IGNORECASE),
    re.compile(r"\..*"),  # .git, .gitattributes, .cache
)

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
        try:
            for record in self.readers[task]():
                count += 1
                yield record
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            if isinstance(exc, TaskDataError):
                raise
            # A file of the right name with the wrong shape (an object where a list belongs, ...).
            where = read.last_read() or self.root
            raise TaskDataError(f"{where}: unexpected content for {task} ({type(exc).__name__}: {exc})") from None
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

    for entry in sorted(root.iterdir(), key=lambda p: read.natural_key(p.name)):
        name = entry.name
        if entry.is_dir() and name in SAMPLE_FOLDERS:
            task, field = SAMPLE_FOLDERS[name]
            if field is None:
                reader = {"pattern_recognition": read.pattern_recognition, "logical_equation": read.logical_equation}[task]
                add(f"symbench/{task}", lambda e=entry, r=reader: r(e), entry)
            else:
                add(f"symbench/{task}",
                    lambda e=entry, t=task, f=field: read.solution_records(e, t, f), entry)
        elif entry.is_dir() and name in SPECIAL_FOLDERS:
            task = SPECIAL_FOLDERS[name]
            reader = {"blocksworld": read.blocksworld, "boxlift": read.boxlift, "boxnet": read.boxnet,
                      "letters": read.letters, "game24": read.game24, "number_multiply": read.number_multiply}[task]
            sources = [entry / "24" / "24.csv"] if task == "game24" else [entry]
            add(f"symbench/{task}", lambda e=entry, r=reader: r(e), *sources)
        elif entry.is_dir() and name == "MATH":
            for subject, task in MATH_SUBJECTS.items():
                folder = entry / "train" / subject
                if folder.is_dir():
                    add(f"symbench/{task}", lambda f=folder, t=task: read.math(f, t), folder)
        elif entry.is_file() and name == GSM_HARD_FILE:
            add("symbench/gsm_hard", lambda p=entry: read.gsm_hard(p), entry)
        elif entry.is_dir() and name == BBH_FOLDER:
            for path in sorted((entry / "bbh").glob("*.json")):
                add(f"bbh/{path.stem}", lambda p=path: read.bbh(p, p.stem), path)
        elif not _ignored(name):
            unrecognised.append(name)
    return PublishedLayout(root=root, readers=readers, files=files, unrecognised=tuple(unrecognised))


def hub_patterns() -> list[str]:
    """The files of a hub snapshot this module reads: nothing else is downloaded (the hub repo
    also holds image folders)."""
    folders = [*SAMPLE_FOLDERS, *SPECIAL_FOLDERS, *(f"MATH/train/{subject}" for subject in MATH_SUBJECTS)]
    return [f"{folder}/**" for folder in folders] + [GSM_HARD_FILE, f"{BBH_FOLDER}/bbh/*.json"]


def known_top_level(name: str) -> bool:
    return name in SAMPLE_FOLDERS or name in SPECIAL_FOLDERS or name in ("MATH", GSM_HARD_FILE, BBH_FOLDER)


def resolve_source(source: str) -> tuple[Path, tuple[str, ...]]:
    """``(local directory, top-level names not downloaded because no task reads them)``.

    `source` is a local directory, or ``hf:OWNER/NAME[@REV]``: a hub dataset repository in the
    published layout, of which only the files `hub_patterns` names are downloaded.
    """
    if not source.startswith(HF_PREFIX):
        return Path(source), ()
    repo, _, revision = source[len(HF_PREFIX) :].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise TaskDataError(f"source {source!r}: expected hf:OWNER/NAME or hf:OWNER/NAME@REVISION")
    from huggingface_hub import HfApi, snapshot_download

    files = HfApi().list_repo_files(repo, repo_type="dataset", revision=revision or None)
    top_level = {f.split("/", 1)[0] for f in files}
    skipped = sorted(n for n in top_level if not (known_top_level(n) or _ignored(n)))
    root = snapshot_download(repo_id=repo, repo_type="dataset", revision=revision or None,
                             allow_patterns=hub_patterns())  # fmt: skip
    return Path(root), tuple(skipped)


@functools.lru_cache(maxsize=4)
def cached_layout(root: str) -> PublishedLayout:
    """`open_layout` once per process: every task of a build reads from the same source."""
    return open_layout(root)
