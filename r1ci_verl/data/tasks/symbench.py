"""SymBench tasks: the bundled JSONL copy, or the full data in its published folder layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

from reward_fns.protocol import user_prompt
from reward_fns.registry import Reference
from reward_fns.symbench import reference_from_record
from r1ci_verl.data.assets import SYMBENCH_DIR
from r1ci_verl.data.tasks.base import TaskDataError, TaskQuestion, register_task
from r1ci_verl.data.tasks.records import BundledJsonlTask, read_jsonl_records
from r1ci_verl.data.tasks.symbench_prompts import ANSWER_FORMATS, PROMPT_RENDERERS

BUNDLED_DIR = SYMBENCH_DIR
RECORD_FIELDS = ("id", "task", "question", "solution", "meta")

# execution: follow stated rules exactly; planning: search for a plan or assignment that
# satisfies constraints; reasoning: deduce facts from clues.
SYMBENCH_CATEGORIES: dict[str, str] = {
    "2048": "execution",
    "blocksworld": "planning",
    "boxlift": "planning",
    "boxnet": "planning",
    "combinatorial_calculation": "planning",
    "constrained_linear_arrangement": "reasoning",
    "cryptanalysis": "reasoning",
    "eight_queens": "planning",
    "game24": "planning",
    "letter_logic_diagram": "planning",
    "letters": "execution",
    "light_puzzles": "execution",
    "logic_puzzle": "planning",
    "logical_equation": "reasoning",
    "mahjong_pattern": "execution",
    "matrix_transformation": "execution",
    "new_operator": "execution",
    "number_multiply": "execution",
    "pattern_recognition": "execution",
    "permutations_and_combinations": "reasoning",
    "pooling": "execution",
    "reversi": "execution",
    "statistical_counting": "execution",
    "string_deletion_and_modification": "execution",
    "string_insertion": "execution",
    "string_splitting": "execution",
    "string_synthesis": "execution",
    "sudoku": "planning",
    "synthesis_decomposition": "execution",
    "gsm_hard": "execution",
    "math_geometry": "reasoning",
    "math_counting_and_probability": "reasoning",
    "path_plan": "planning",
}


def reference_for(record: dict[str, Any], origin: str) -> Reference:
    """Ask the verifier package how it wants this record's reference, so both sides agree."""
    try:
        return reference_from_record(record)
    except ValueError as exc:
        raise TaskDataError(f"{origin}: {exc}") from None


@dataclass(frozen=True)
class SymBenchTask(BundledJsonlTask):
    """One SymBench task. Questions come in source order; the first `max_count` are taken."""

    family: ClassVar[str] = "symbench"

    data_dir: str = str(BUNDLED_DIR)

    def _records(self) -> Iterable[tuple[str, dict[str, Any]]]:
        if self.layout_root is not None:
            from r1ci_verl.data.published_layout import cached_layout

            for record in cached_layout(self.layout_root).records(self.name):
                yield f"{self.layout_root}: {record['id']}", record
            return
        for line_no, record in read_jsonl_records(self.data_file, RECORD_FIELDS):
            yield f"{self.data_file}:{line_no}", record  # full path: errors must point at the file

    def questions(self, max_count: int, seed: int = 0) -> Iterator[TaskQuestion]:
        del seed  # fixed data: the first `max_count` records, in source order
        if max_count <= 0:
            return
        count = 0
        for origin, record in self._records():
            yield self._question(origin, record)
            count += 1
            if count >= max_count:
                return

    def _question(self, origin: str, record: dict[str, Any]) -> TaskQuestion:
        if record["task"] != self.source_name:
            raise TaskDataError(f"{origin}: field 'task' is {record['task']!r}, expected {self.source_name!r}")
        if not isinstance(record["meta"], dict):
            raise TaskDataError(f"{origin}: field 'meta' must be an object, got {type(record['meta']).__name__}")
        renderer = PROMPT_RENDERERS.get(self.source_name)
        if renderer is not None:  # question-less task: the meta is the ground truth
            try:
                question = renderer(record["meta"])
            except (KeyError, TypeError, ValueError) as exc:
                raise TaskDataError(
                    f"{origin}: cannot render the {self.source_name} prompt from 'meta' ({exc!r})"
                ) from None
        else:
            question = record["question"]
            if isinstance(question, str) and self.source_name in ANSWER_FORMATS:
                question = f"{question.rstrip()}\n\n{ANSWER_FORMATS[self.source_name]}"
            if not isinstance(question, str) or not question.strip():
                raise TaskDataError(f"{origin}: field 'question' is empty for task {self.source_name!r}")
            if record["solution"] is None:
                raise TaskDataError(
                    f"{origin}: no ground truth: field 'solution' is null for task {self.source_name!r}"
                )
        return TaskQuestion(
            question_id=f"{self.family}/{record['id']}",
            prompt=user_prompt(question),
            reference=reference_for(record, origin),
            source=(
                f"published:{record['id']}" if self.layout_root is not None else f"{self.family}/{Path(origin).name}"
            ),
        )


def register_builtin_tasks() -> None:
    for name, category in SYMBENCH_CATEGORIES.items():
        register_task(SymBenchTask(source_name=name, category=category))
