"""The train/test split by task, kept as versioned YAML files next to this module.

The split is read at build time and never recomputed silently: a task missing from the split
is an error. `make_split` exists to write a *new* version explicitly (``r1ci data split``).

Rule of `make_split` (paper: 107 train / 37 test tasks): every BIG-Bench-Hard task is a test
task (evaluation data, never trained on), and so is any task of the same name in another
family; the remaining test places are filled from the other
families in proportion to their size, by a seeded hash order, skipping tasks whose name also
exists in another family (e.g. ``symbench/sudoku`` and ``reasoning_gym/sudoku``), so a held-out
task has no twin in training.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from r1ci_verl.data.assets import SPLITS_DIR

SPLIT_DIR = SPLITS_DIR
CURRENT_VERSION = 1
PAPER_TEST_TASKS = 37  # R1-Code-Interpreter holds out 37 of its 144 tasks
TEST_ONLY_FAMILIES = ("bbh",)  # evaluation data: must never reach SFT or RL training
SPLITS = ("train", "test")


class SplitError(ValueError):
    """A split file that is missing, malformed or inconsistent, or a task it does not cover."""


@dataclass(frozen=True)
class TaskSplit:
    """Which tasks train and which test; `version` and `path` say where it came from."""

    version: int
    seed: int
    train: tuple[str, ...]
    test: tuple[str, ...]
    path: Path | None = None

    def __post_init__(self) -> None:
        for side in SPLITS:
            counts = Counter(getattr(self, side))
            duplicates = sorted(name for name, n in counts.items() if n > 1)
            if duplicates:
                raise SplitError(f"{self._where()}: tasks listed twice under {side!r}: {duplicates}")
        overlap = sorted(set(self.train) & set(self.test))
        if overlap:
            raise SplitError(f"{self._where()}: tasks on both sides of the split: {overlap}")
        leaked = sorted(name for name in self.train if name.split("/")[0] in TEST_ONLY_FAMILIES)
        if leaked:
            raise SplitError(f"{self._where()}: test-only tasks ({TEST_ONLY_FAMILIES}) listed under 'train': {leaked}")

    def _where(self) -> str:
        return str(self.path) if self.path else f"split v{self.version}"

    def split_of(self, task: str) -> str:
        """``"train"`` or ``"test"``; a task the split does not cover is an error, never a guess."""
        if task in self.train:
            return "train"
        if task in self.test:
            return "test"
        raise SplitError(
            f"task {task!r} is not in {self._where()}; add it there or write a new split version "
            "with `r1ci data split --version N`"
        )

    def tasks(self, split: str) -> tuple[str, ...]:
        if split not in SPLITS:
            raise SplitError(f"unknown split {split!r}; expected one of {SPLITS}")
        return getattr(self, split)


def split_path(version: int) -> Path:
    return SPLIT_DIR / f"task_split_v{version}.yaml"


def load_split(version: int | None = None, path: str | Path | None = None) -> TaskSplit:
    """Read a split file: the packaged one of `version` (default: current) or an explicit `path`."""
    file = Path(path) if path is not None else split_path(CURRENT_VERSION if version is None else version)
    if not file.is_file():
        raise SplitError(f"split file not found: {file}")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SplitError(f"{file}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise SplitError(f"{file}: expected a mapping with version, seed, train and test")
    missing = [key for key in ("version", "seed", "train", "test") if key not in data]
    if missing:
        raise SplitError(f"{file}: missing field(s) {missing}")
    for side in SPLITS:
        if not isinstance(data[side], list) or not all(isinstance(n, str) for n in data[side]):
            raise SplitError(f"{file}: field {side!r} must be a list of task names")
    return TaskSplit(
        version=int(data["version"]),
        seed=int(data["seed"]),
        train=tuple(data["train"]),
        test=tuple(data["test"]),
        path=file,
    )


def _hash_order(name: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def make_split(task_names: Iterable[str], version: int, seed: int = 0, n_test: int = PAPER_TEST_TASKS) -> TaskSplit:
    """A new split of `task_names` by the rule in the module docstring; deterministic in `seed`."""
    names = sorted(set(task_names))
    family_of = {name: name.split("/")[0] for name in names}
    base_name = {name: name.split("/", 1)[1] for name in names}
    test_only_bases = {base_name[n] for n in names if family_of[n] in TEST_ONLY_FAMILIES}
    # a test-only task's twins (e.g. reasoning_gym/word_sorting for bbh/word_sorting) are held out too
    forced_test = [n for n in names if base_name[n] in test_only_bases]
    others = [n for n in names if family_of[n] not in TEST_ONLY_FAMILIES]
    base_count = Counter(base_name.values())
    candidates = [n for n in others if base_count[base_name[n]] == 1]  # no twin in another family
    n_extra = max(0, n_test - len(forced_test))

    by_family: dict[str, list[str]] = {}
    for name in candidates:
        by_family.setdefault(family_of[name], []).append(name)
    family_sizes = Counter(family_of[n] for n in others)
    chosen: list[str] = []
    remaining = n_extra
    families = sorted(by_family, key=lambda f: (-family_sizes[f], f))
    for position, family in enumerate(families):
        share = remaining if position == len(families) - 1 else round(n_extra * family_sizes[family] / len(others))
        pool = sorted(by_family[family], key=lambda n: _hash_order(n, seed))
        picked = pool[: max(0, min(share, remaining))]
        chosen += picked
        remaining -= len(picked)
    test = sorted(forced_test + chosen)
    train = sorted(n for n in others if n not in set(test))
    return TaskSplit(version=version, seed=seed, train=tuple(train), test=tuple(test))


def write_split(split: TaskSplit, path: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write `split` as YAML (to the packaged location of its version unless `path` is given)."""
    file = Path(path) if path is not None else split_path(split.version)
    if file.exists() and not overwrite:
        raise SplitError(f"{file} already exists: a published split never changes; write a new version")
    header = (
        f"# Train/test split by task, version {split.version}: {len(split.train)} train, {len(split.test)} test.\n"
        "# Written by `r1ci data split`; read at build time. Never edit a published version:\n"
        "# write a new one, so every built dataset names the split it used.\n"
    )
    body = yaml.safe_dump(
        {"version": split.version, "seed": split.seed, "train": list(split.train), "test": list(split.test)},
        sort_keys=False,
        default_flow_style=False,
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text(header + body, encoding="utf-8")
    tmp.replace(file)
    return file


__all__ = [
    "CURRENT_VERSION",
    "SplitError",
    "TaskSplit",
    "load_split",
    "make_split",
    "split_path",
    "write_split",
]
