"""The paper's suite: 33 SymBench + 27 BBH + Reasoning-Gym tasks, each knowing its verifier.

Covers the four SymBench tasks that are not puzzles (gsm_hard, the two MATH subjects and
path_plan): their prompts ask for the format their verifiers parse, and answers in that
format score 1 (right) and 0 (wrong) through the task's own verifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import pytest

from reward_fns.reasoning_gym_tasks import ENABLED
from reward_fns.registry import Reference, get_verifier, list_verifiers
from r1ci_verl.data.tasks import Task, TaskQuestion, get_task, list_tasks, register_task

PAPER_FAMILY_SIZES = {"symbench": 33, "bbh": 27}
NEW_TASKS = ["gsm_hard", "math_geometry", "math_counting_and_probability", "path_plan"]


def round_trip(question: TaskQuestion) -> Reference:
    return Reference(**json.loads(json.dumps(question.ground_truth())))


def test_suite_has_the_papers_symbench_and_bbh_tasks_and_the_enabled_reasoning_gym_datasets():
    for family, size in PAPER_FAMILY_SIZES.items():
        assert len(list_tasks([family])) == size
    assert list_tasks(["reasoning_gym"]) == sorted(f"reasoning_gym/{n}" for n in ENABLED)
    assert {f"symbench/{n}" for n in NEW_TASKS} <= set(list_tasks())


def test_a_task_knows_its_verifier_and_every_builtin_verifier_has_its_task():
    for name in list_tasks():
        assert get_task(name).verifier is get_verifier(name)
    families = tuple(f"{family}/" for family in PAPER_FAMILY_SIZES) + ("reasoning_gym/",)
    builtin = {n for n in list_verifiers() if n.startswith(families)}
    assert builtin == set(list_tasks()), "a verifier without a task (or the reverse): one list must drive both"


@dataclass(frozen=True)
class _Unscored(Task):
    family: ClassVar[str] = "symbench"

    def questions(self, max_count: int, seed: int) -> Iterator[TaskQuestion]:
        return iter(())

    def source_fingerprint(self, max_count: int, seed: int) -> dict[str, Any]:
        return {}


def test_registering_a_task_without_a_verifier_fails_at_registration():
    with pytest.raises(ValueError, match=r"'symbench/unscored' has no verifier: register one .*register_verifier"):
        register_task(_Unscored(source_name="unscored", category="execution"))
    with pytest.raises(KeyError):
        get_task("symbench/unscored")


def test_gsm_hard_prompt_asks_for_a_number_and_its_answer_scores():
    task = get_task("symbench/gsm_hard")
    questions = list(task.questions(20))
    assert len(questions) == 20
    for q in questions:
        assert q.prompt.endswith("inside <<< >>>, for example <<<42>>>.")
        reference = round_trip(q)
        gold = float(reference.answer)
        written = str(int(gold)) if gold.is_integer() else str(gold)
        assert float(task.verifier(written, reference)) == 1.0
        assert float(task.verifier(str(gold + 7), reference)) == 0.0


@pytest.mark.parametrize("name", ["math_geometry", "math_counting_and_probability"])
def test_math_prompts_keep_the_latex_question_and_their_boxed_answers_score(name):
    task = get_task(f"symbench/{name}")
    questions = list(task.questions(15))
    for q in questions:
        assert "<<<\\frac{3}{4}>>>" in q.prompt and q.prompt.count("<<<") == 3  # "inside <<< >>>" and the two examples
        reference = round_trip(q)
        assert float(task.verifier(reference.answer, reference)) == 1.0
        assert float(task.verifier("\\frac{9999}{7}", reference)) == 0.0


def test_path_plan_prompt_renders_the_environment_and_a_path_in_its_format_scores():
    task = get_task("symbench/path_plan")
    questions = list(task.questions(1000))
    assert len(questions) == 140  # 14 environments x 10 instructions (some environments repeat upstream)
    first = questions[0]
    meta = first.reference.meta
    assert "(-1.3, -1.3)" in first.prompt and "(1.3, 1.3)" in first.prompt
    assert meta["instruction"] in first.prompt
    assert "green: x from 0.2 to 0.7, y from 0.8 to 1.2" in first.prompt
    assert "x from -1.5 to -1.4, y from -1.5 to 1.5" in first.prompt  # a wall
    assert "<<<[(-1.3, -1.3), (0.0, -1.0), (1.3, 1.3)]>>>" in first.prompt
    assert meta["instruction"] == "Navigate into the green room and go to the yellow room."
    reference = round_trip(first)
    green_then_yellow = "[(-1.3, -1.3), (0.45, 1.0), (-0.85, 0.1), (1.3, 1.3)]"
    yellow_then_green = "[(-1.3, -1.3), (-0.85, 0.1), (0.45, 1.0), (1.3, 1.3)]"
    assert float(task.verifier(green_then_yellow, reference)) == 1.0
    assert float(task.verifier(yellow_then_green, reference)) == 0.0
