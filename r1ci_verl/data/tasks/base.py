"""What a task is, and the registry that names them (in the spirit of reasoning-gym's factory).

A task is a small frozen dataclass: its registered name doubles as the verifier name and the
parquet ``data_source``, so one string routes a question from the builder to its reward. A task
knows its verifier by looking it up in ``reward_fns``' registry (the one public registry for
scoring); registering a task that has no verifier is an error, so the two cannot drift apart.
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

from reward_fns.registry import Reference, Verifier, get_verifier, has_verifier

FAMILIES = ("symbench", "bbh", "reasoning_gym")
CATEGORIES = ("execution", "planning", "reasoning")


class TaskDataError(ValueError):
    """Bad task data: the message names the file or task, the row and the field."""


@dataclass(frozen=True)
class TaskQuestion:
    """One question with everything needed to score an answer to it.

    `prompt` is the user message exactly as the model sees it (answer-format instruction
    included); `reference` is what the task's verifier checks against.
    """

    question_id: str
    prompt: str
    reference: Reference
    source: str = ""  # where the question came from: "file.jsonl:line", "reasoning_gym:seed=…"

    def ground_truth(self) -> dict[str, Any]:
        """The ``{"task", "answer", "meta"}`` dict stored as JSON in ``reward_model.ground_truth``."""
        return {"task": self.reference.task, "answer": self.reference.answer, "meta": dict(self.reference.meta)}


@dataclass(frozen=True)
class Task(abc.ABC):
    """A named source of questions; `name` is ``<family>/<source_name>`` and the verifier name."""

    family: ClassVar[str] = ""
    # True when question generation depends on the string-hash seed (set iteration order in a
    # third-party generator): the builder then runs it in a process with a pinned seed.
    hash_order_sensitive: ClassVar[bool] = False

    source_name: str
    category: str

    @property
    def name(self) -> str:
        return f"{self.family}/{self.source_name}"

    @property
    def verifier(self) -> Verifier:
        """The function that scores answers to this task (``reward_fns.registry``, same name)."""
        return get_verifier(self.name)

    def validate(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"task {self.name!r}: family must be one of {FAMILIES}, got {self.family!r}")
        if self.category not in CATEGORIES:
            raise ValueError(f"task {self.name!r}: category must be one of {CATEGORIES}, got {self.category!r}")
        if not self.source_name or "/" in self.source_name:
            raise ValueError(f"task source name must be non-empty without '/', got {self.source_name!r}")

    @abc.abstractmethod
    def questions(self, max_count: int, seed: int) -> Iterator[TaskQuestion]:
        """Yield up to `max_count` questions, the same ones for the same `seed`."""

    @abc.abstractmethod
    def source_fingerprint(self, max_count: int, seed: int) -> dict[str, Any]:
        """What the questions were made from (file sha256, generator version and seed), for manifests."""


_TASKS: dict[str, Task] = {}


def register_task(task: Task, *, overwrite: bool = False) -> Task:
    """Add `task` to the registry under ``task.name``; registering a name twice is an error."""
    if not isinstance(task, Task):
        raise TypeError(f"register_task expects a Task instance, got {type(task).__name__}")
    task.validate()
    if not has_verifier(task.name):
        raise ValueError(
            f"task {task.name!r} has no verifier: register one under that name with "
            "reward_fns.register_verifier before registering the task"
        )
    if task.name in _TASKS and not overwrite and _TASKS[task.name] != task:
        raise ValueError(f"task {task.name!r} is already registered")
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    _load_builtin_tasks()
    try:
        return _TASKS[name]
    except KeyError:
        close = [n for n in _TASKS if name.split("/")[-1] in n][:5]
        hint = f"; similar: {close}" if close else ""
        raise KeyError(f"no task registered as {name!r}{hint}") from None


def list_tasks(families: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """Registered task names, sorted, optionally only those of the given families."""
    _load_builtin_tasks()
    if families is not None:
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown task families {unknown}; known: {list(FAMILIES)}")
    return sorted(n for n, t in _TASKS.items() if families is None or t.family in families)


_BUILTIN_MODULES = ("r1ci_verl.data.tasks.symbench", "r1ci_verl.data.tasks.bbh", "r1ci_verl.data.tasks.reasoning_gym")
_builtins_loaded = False


def _load_builtin_tasks() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module).register_builtin_tasks()
