"""SymBench verifiers, registered as ``symbench/<task>`` on import, and their ground truth.

`reference_from_record` turns a bundled SymBench JSONL record into the `Reference` a verifier
checks against. It is the ground truth the data builder stores, so it stays JSON-serialisable.
Where a check needs facts that only the question text states, they are parsed once here into
``derived_*`` meta keys (the data README's convention), so verifiers never read prose.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from reward_fns.registry import Reference
from reward_fns.symbench import exact, math_answers, path_plan, planning, puzzles  # noqa: F401  (registers)
from reward_fns.symbench._common import FAMILY, TASK_VERIFIERS, ReferenceDataError

# Tasks whose verifier needs facts from the question text: task -> parser(question) -> meta keys.
_QUESTION_FACTS: dict[str, Callable[[str], dict[str, Any]]] = {}


def _question_facts(task: str):
    def decorator(fn: Callable[[str], dict[str, Any]]):
        _QUESTION_FACTS[task] = fn
        return fn

    return decorator


@_question_facts("logic_puzzle")
def _logic_puzzle_facts(question: str) -> dict[str, Any]:
    count = re.search(r"select (\d+) different numbers", question)
    start = re.search(r"square \((\d+),\s*(\d+)\) as the first selected number", question)
    if count is None or start is None:
        raise ValueError("cannot find the selection count or the first selected cell")
    return {
        "derived_num_select": int(count.group(1)),
        "derived_start": [int(start.group(1)), int(start.group(2))],
    }


@_question_facts("logical_equation")
def _logical_equation_facts(question: str) -> dict[str, Any]:
    numbers = re.search(r"each representing one of the numbers ([-\d,\s]+)\.", question)
    equations = re.findall(r"^\s*\d+\.\s*(.+?)\s*$", question, re.MULTILINE)
    if numbers is None or not equations:
        raise ValueError("cannot find the number set or the equations")
    for equation in equations:
        puzzles.parse_equation(equation)  # fail now, naming the line, not at scoring time
    return {
        "derived_numbers": [int(n) for n in re.findall(r"-?\d+", numbers.group(1))],
        "derived_equations": equations,
    }


# Tasks whose verifier needs constraints stated in prose inside meta: task -> parser(meta) -> keys.
_META_FACTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "path_plan": lambda meta: path_plan.instruction_constraints(meta["instruction"], list(meta["boxes"])),
}


def reference_from_record(record: dict[str, Any]) -> Reference:
    """The `Reference` for one SymBench record ``{"id", "task", "question", "solution", "meta"}``."""
    record_id = record.get("id", "<no id>")
    task = record.get("task")
    if not isinstance(task, str) or not task:
        raise ValueError(f"SymBench record {record_id}: field 'task' is missing or empty")
    if not isinstance(record.get("meta", {}), dict):
        raise ValueError(f"SymBench record {record_id}: field 'meta' must be an object")
    if task not in TASK_VERIFIERS:
        raise ValueError(f"SymBench record {record_id}: no verifier for task {task!r}")
    meta = dict(record.get("meta") or {})
    if task in _QUESTION_FACTS:
        question = record.get("question")
        if not isinstance(question, str):
            raise ValueError(f"SymBench record {record_id}: field 'question' is needed for task {task!r}")
        try:
            meta.update(_QUESTION_FACTS[task](question))
        except ValueError as exc:
            raise ValueError(f"SymBench record {record_id}: question: {exc}") from None
    if task in _META_FACTS:
        try:
            meta.update(_META_FACTS[task](meta))
        except KeyError as exc:
            raise ValueError(f"SymBench record {record_id}: field 'meta' lacks {exc}") from None
        except ValueError as exc:
            raise ValueError(f"SymBench record {record_id}: meta: {exc}") from None
    return Reference(task=f"{FAMILY}/{task}", answer=record.get("solution"), meta=meta)


__all__ = ["TASK_VERIFIERS", "ReferenceDataError", "reference_from_record"]
