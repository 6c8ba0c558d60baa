"""The train/test split by task, kept as versioned YAML presets under ``r1ci_verl/assets/splits``.

A split is read at build time and never recomputed silently: a task the split does not list
is an error. `make_split` writes a *new* split explicitly (``r1ci data split --out FILE``),
by one of two rules:

- ``random-by-task`` (the paper's kind: 107 train / 37 test tasks drawn at random, BBH on both
  sides): the test places are shared among the families in proportion to their size (largest
  remainder), and each family's places go to its first tasks in a seeded sha256 order.
- ``bbh-heldout`` (the paper's generalisation ablation): every BIG-Bench-Hard task is a test
  task, and so is any task of the same name in another family; the remaining test places are
  shared among the other families in proportion to their size, in the same seeded order.

Under both rules a task whose name also exists in another family (``symbench/sudoku`` and
``reasoning_gym/sudoku``) is never drawn for the test side, so no held-out task has a twin in
training. A split may also exclude tasks by name (``excluded: {task: reason}``), which pins a
subset of the registered suite, e.g. fewer Reasoning-Gym datasets.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from r1ci_verl.data.assets import SPLITS_DIR

SPLIT_DIR = SPLITS_DIR
DEFAULT_PRESET = "paper_random_v1"
BBH_HELDOUT_PRESET = "bbh_heldout_v2"
PAPER_TEST_TASKS = 37  # R1-Code-Interpreter holds out 37 of its 144 tasks
CANARY_FAMILIES = ("bbh",)  # their files ask to stay out of training corpora
KINDS = ("random-by-task", "bbh-heldout")
SPLITS = ("train", "test")
EXCLUDED = "excluded"


class SplitError(ValueError):
    """A split file that is missing, malformed or inconsistent, or a task it does not cover."""


def family_of(task: str) -> str:
    return task.split("/", 1)[0]


@dataclass(frozen=True)
class TaskSplit:
    """Which tasks train, which test and which are left out; `name` and `path` say where it came from."""

    name: str
    kind: str
    version: int
    seed: int
    train: tuple[str, ...]
    test: tuple[str, ...]
    excluded: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        sides = {"train": self.train, "test": self.test, EXCLUDED: tuple(self.excluded)}
        for side, names in sides.items():
            duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
            if duplicates:
                raise SplitError(f"{self.where()}: tasks listed twice under {side!r}: {duplicates}")
        seen: dict[str, str] = {}
        for side, names in sides.items():
            for name in names:
                if name in seen:
                    raise SplitError(f"{self.where()}: task {name!r} is listed under both {seen[name]!r} and {side!r}")
                seen[name] = side

    def where(self) -> str:
        return str(self.path) if self.path else f"split {self.name}"

    def split_of(self, task: str) -> str:
        """``"train"``, ``"test"`` or ``"excluded"``; a task the split does not list is an error, never a guess."""
        if task in self.train:
            return "train"
        if task in self.test:
            return "test"
        if task in self.excluded:
            return EXCLUDED
        raise SplitError(
            f"task {task!r} is not in split {self.name} ({self.where()}): write a split that lists it "
            "(`r1ci data split --out FILE`) and build with --split-file FILE"
        )

    def tasks(self, split: str) -> tuple[str, ...]:
        if split not in SPLITS:
            raise SplitError(f"unknown split {split!r}; expected one of {SPLITS}")
        return getattr(self, split)

    def check_names(self, known: Iterable[str]) -> None:
        """Every task the split names must be a registered task (a typo is an error, not a no-op)."""
        known = set(known)
        unknown = sorted(n for n in (*self.train, *self.test, *self.excluded) if n not in known)
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise SplitError(f"{self.where()}: unknown task(s) {shown}; see `r1ci data list`")

    def canary_tasks_in_training(self) -> list[str]:
        return sorted(n for n in self.train if family_of(n) in CANARY_FAMILIES)


def preset_path(name: str) -> Path:
    return SPLIT_DIR / f"{name}.yaml"


def list_presets() -> list[str]:
    return sorted(p.stem for p in SPLIT_DIR.glob("*.yaml"))


def load_split(preset: str | None = None, path: str | Path | None = None) -> TaskSplit:
    """Read a split: a packaged `preset` (default: `DEFAULT_PRESET`) or a user's file at `path`."""
    if path is not None and preset is not None:
        raise SplitError("give a split preset or a split file, not both")
    if path is None:
        name = preset or DEFAULT_PRESET
        if name not in list_presets():
            raise SplitError(f"unknown split preset {name!r}; presets: {', '.join(list_presets())}")
        file = preset_path(name)
    else:
        file = Path(path)
    if not file.is_file():
        raise SplitError(f"split file not found: {file}")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SplitError(f"{file}: invalid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise SplitError(f"{file}: expected a mapping with version, seed, train and test")
    missing = [key for key in ("version", "seed", "train", "test") if key not in data]
    if missing:
        raise SplitError(f"{file}: missing field(s) {missing}")
    for side in SPLITS:
        if not isinstance(data[side], list) or not all(isinstance(n, str) for n in data[side]):
            raise SplitError(f"{file}: field {side!r} must be a list of task names")
    excluded = data.get(EXCLUDED) or {}
    if not isinstance(excluded, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in excluded.items()):  # fmt: skip
        raise SplitError(f"{file}: field 'excluded' must map task names to a reason")
    for key in ("version", "seed"):
        if not isinstance(data[key], int) or isinstance(data[key], bool):
            raise SplitError(f"{file}: field {key!r} must be an integer, got {data[key]!r}")
    return TaskSplit(
        name=str(data.get("name") or file.stem),
        kind=str(data.get("kind") or "unspecified"),  # hand-written files and bbh_heldout_v1 carry none
        version=data["version"],
        seed=data["seed"],
        train=tuple(data["train"]),
        test=tuple(data["test"]),
        excluded=dict(excluded),
        path=file,
    )


def _hash_order(name: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def proportional_quotas(sizes: Mapping[str, int], total: int) -> dict[str, int]:
    """`total` places shared in proportion to `sizes` by largest remainder (ties: larger family, then name)."""
    whole = sum(sizes.values())
    if whole == 0:
        return {family: 0 for family in sizes}
    exact = {family: total * size / whole for family, size in sizes.items()}
    quotas = {family: int(value) for family, value in exact.items()}
    leftover = total - sum(quotas.values())
    by_remainder = sorted(sizes, key=lambda f: (-(exact[f] - quotas[f]), -sizes[f], f))
    for family in by_remainder[:leftover]:
        quotas[family] += 1
    return quotas


def make_split(
    task_names: Iterable[str],
    name: str,
    kind: str = "random-by-task",
    version: int = 1,
    seed: int = 0,
    n_test: int = PAPER_TEST_TASKS,
    excluded: Mapping[str, str] | None = None,
) -> TaskSplit:
    """A new split of `task_names` (minus `excluded`) by `kind`'s rule (module docstring); deterministic in `seed`."""
    if kind not in KINDS:
        raise SplitError(f"unknown split kind {kind!r}; kinds: {', '.join(KINDS)}")
    excluded = dict(sorted((excluded or {}).items()))
    names = sorted(set(task_names) - set(excluded))
    base_name = {n: n.split("/", 1)[1] for n in names}
    base_count = Counter(base_name.values())
    has_twin = {n for n in names if base_count[base_name[n]] > 1}
    forced: list[str] = []
    pool_names = names
    if kind == "bbh-heldout":
        canary_bases = {base_name[n] for n in names if family_of(n) in CANARY_FAMILIES}
        forced = [n for n in names if base_name[n] in canary_bases]
        pool_names = [n for n in names if family_of(n) not in CANARY_FAMILIES]
    sizes = Counter(family_of(n) for n in pool_names)
    quotas = proportional_quotas(dict(sorted(sizes.items())), max(0, n_test - len(forced)))
    chosen: list[str] = []
    for family in sorted(quotas):
        candidates = sorted(
            (n for n in pool_names if family_of(n) == family and n not in has_twin and n not in forced),
            key=lambda n: _hash_order(n, seed),
        )
        chosen += candidates[: quotas[family]]
    test = sorted(set(forced) | set(chosen))
    train = sorted(n for n in names if n not in set(test))
    return TaskSplit(name=name, kind=kind, version=version, seed=seed, train=tuple(train), test=tuple(test),
                     excluded=excluded)  # fmt: skip


def split_yaml(split: TaskSplit) -> str:
    """The YAML text of `split`, with a header that says how it was made."""
    per_family = {side: dict(sorted(Counter(family_of(n) for n in split.tasks(side)).items())) for side in SPLITS}
    header = (
        f"# Train/test split by task '{split.name}' ({split.kind}, seed {split.seed}): "
        f"{len(split.train)} train, {len(split.test)} test, {len(split.excluded)} excluded.\n"
        f"# Per family: train {per_family['train']}, test {per_family['test']}.\n"
        "# Written by `r1ci data split`; read at build time. Never edit a published split:\n"
        "# write a new one, so every built dataset names the split it used.\n"
    )
    data = {"name": split.name, "kind": split.kind, "version": split.version, "seed": split.seed,
            "train": list(split.train), "test": list(split.test)}  # fmt: skip
    if split.excluded:
        data[EXCLUDED] = dict(split.excluded)
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def write_split(split: TaskSplit, path: str | Path, overwrite: bool = False) -> Path:
    """Write `split` as YAML to `path` (a user's file: the packaged presets are never written at run time)."""
    file = Path(path)
    if file.exists() and not overwrite:
        raise SplitError(f"{file} already exists: a published split never changes; write a new file")
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_text(split_yaml(split), encoding="utf-8")
    tmp.replace(file)
    return file


__all__ = [
    "DEFAULT_PRESET",
    "BBH_HELDOUT_PRESET",
    "SplitError",
    "TaskSplit",
    "list_presets",
    "load_split",
    "make_split",
    "preset_path",
    "split_yaml",
    "write_split",
]
