"""BIG-Bench-Hard tasks from the bundled JSONL copy. Evaluation data: the split keeps them on the test side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

from reward_fns.protocol import user_prompt
from reward_fns.registry import Reference
from r1ci_verl.data.assets import BBH_DIR
from r1ci_verl.data.tasks.base import TaskDataError, TaskQuestion, register_task
from r1ci_verl.data.tasks.records import BundledJsonlTask, read_jsonl_records

BUNDLED_DIR = BBH_DIR
RECORD_FIELDS = ("id", "task", "question", "answer")

BBH_CATEGORIES: dict[str, str] = {
    "boolean_expressions": "execution",
    "causal_judgement": "reasoning",
    "date_understanding": "reasoning",
    "disambiguation_qa": "reasoning",
    "dyck_languages": "execution",
    "formal_fallacies": "reasoning",
    "geometric_shapes": "reasoning",
    "hyperbaton": "reasoning",
    "logical_deduction_five_objects": "reasoning",
    "logical_deduction_seven_objects": "reasoning",
    "logical_deduction_three_objects": "reasoning",
    "movie_recommendation": "reasoning",
    "multistep_arithmetic_two": "execution",
    "navigate": "execution",
    "object_counting": "execution",
    "penguins_in_a_table": "reasoning",
    "reasoning_about_colored_objects": "reasoning",
    "ruin_names": "reasoning",
    "salient_translation_error_detection": "reasoning",
    "snarks": "reasoning",
    "sports_understanding": "reasoning",
    "temporal_sequences": "reasoning",
    "tracking_shuffled_objects_five_objects": "execution",
    "tracking_shuffled_objects_seven_objects": "execution",
    "tracking_shuffled_objects_three_objects": "execution",
    "web_of_lies": "reasoning",
    "word_sorting": "execution",
}


@dataclass(frozen=True)
class BBHTask(BundledJsonlTask):
    """One BBH task; the question gets our ``<<<answer>>>`` instruction, the target is the answer."""

    family: ClassVar[str] = "bbh"

    data_dir: str = str(BUNDLED_DIR)

    def _records(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """``(origin for errors, source for rows, record)`` in source order."""
        if self.layout_root is not None:
            from r1ci_verl.data.published_layout import cached_layout

            for record in cached_layout(self.layout_root).records(self.name):
                yield f"{self.layout_root}: {record['id']}", f"published:{record['id']}", record
            return
        for line_no, record in read_jsonl_records(self.data_file, RECORD_FIELDS):
            yield f"{self.data_file}:{line_no}", f"{self.family}/{self.data_file.name}:{line_no}", record

    def questions(self, max_count: int, seed: int = 0) -> Iterator[TaskQuestion]:
        del seed  # fixed data: the first `max_count` records, in source order
        if max_count <= 0:
            return
        count = 0
        for origin, source, record in self._records():
            answer, question = record["answer"], record["question"]
            if record["task"] != self.source_name:
                raise TaskDataError(f"{origin}: field 'task' is {record['task']!r}, expected {self.source_name!r}")
            if not isinstance(question, str) or not question.strip():
                raise TaskDataError(f"{origin}: field 'question' is empty")
            if not isinstance(answer, str) or not answer.strip():
                raise TaskDataError(f"{origin}: no ground truth: field 'answer' is {answer!r}")
            yield TaskQuestion(
                question_id=f"{self.family}/{record['id']}",
                prompt=user_prompt(question),
                reference=Reference(task=self.name, answer=answer, meta={}),
                source=source,
            )
            count += 1
            if count >= max_count:
                return


def register_builtin_tasks() -> None:
    for name, category in BBH_CATEGORIES.items():
        register_task(BBHTask(source_name=name, category=category))
