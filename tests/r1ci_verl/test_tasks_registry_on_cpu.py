"""The task registry: every family's builders, prompts, references, determinism and bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reward_fns import protocol
from reward_fns.registry import Reference, get_verifier, has_verifier
from r1ci_verl.data.tasks import CATEGORIES, FAMILIES, TaskDataError, get_task, list_tasks, register_task
from r1ci_verl.data.tasks.bbh import BBH_CATEGORIES, BBHTask
from r1ci_verl.data.tasks.reasoning_gym import ReasoningGymTask, enabled_datasets, task_seed
from reward_fns.reasoning_gym_tasks import CATEGORIES as REASONING_GYM_CATEGORIES
from r1ci_verl.data.tasks.symbench import SYMBENCH_CATEGORIES, SymBenchTask
from r1ci_verl.data.tasks.symbench_prompts import PROMPT_RENDERERS

DATA = Path(__file__).resolve().parents[2] / "r1ci_verl" / "assets"


def line_count(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def test_every_task_has_a_family_a_category_and_a_verifier():
    names = list_tasks()
    assert {get_task(n).family for n in names} == set(FAMILIES)
    for name in names:
        task = get_task(name)
        assert task.name == name == f"{task.family}/{task.source_name}"
        assert task.category in CATEGORIES
        assert has_verifier(name), f"{name} has no verifier: its rows could not be scored"


def test_registered_tasks_match_the_bundled_files_and_the_allow_list():
    assert sorted(list_tasks(["symbench"])) == sorted(f"symbench/{p.stem}" for p in (DATA / "symbench").glob("*.jsonl"))
    assert sorted(list_tasks(["bbh"])) == sorted(f"bbh/{p.stem}" for p in (DATA / "bbh").glob("*.jsonl"))
    assert list_tasks(["reasoning_gym"]) == [f"reasoning_gym/{n}" for n in enabled_datasets()]
    assert set(SYMBENCH_CATEGORIES) == {p.stem for p in (DATA / "symbench").glob("*.jsonl")}
    assert set(BBH_CATEGORIES) == {p.stem for p in (DATA / "bbh").glob("*.jsonl")}
    assert set(enabled_datasets()) <= set(REASONING_GYM_CATEGORIES)  # reward_fns: the one list, with categories


def test_registering_a_name_twice_or_a_bad_category_fails():
    with pytest.raises(ValueError, match="already registered"):
        register_task(SymBenchTask(source_name="game24", category="execution"))
    with pytest.raises(ValueError, match="category"):
        register_task(SymBenchTask(source_name="new_task", category="vibes"))
    with pytest.raises(KeyError, match="no task registered"):
        get_task("symbench/no_such_task")
    with pytest.raises(ValueError, match="unknown task families"):
        list_tasks(["gsm8k"])


@pytest.mark.parametrize("name", sorted(SYMBENCH_CATEGORIES))
def test_symbench_builds_every_bundled_question_with_an_answer_format(name):
    task = get_task(f"symbench/{name}")
    questions = list(task.questions(10_000, seed=0))
    assert len(questions) == line_count(task.data_file)
    assert len({q.question_id for q in questions}) == len(questions)
    for q in questions:
        assert q.question_id.startswith(f"symbench/{name}/")
        assert "<<<" in q.prompt  # the answer format is asked for, by the source or by us
        assert q.reference.task == f"symbench/{name}"
        json.dumps(q.ground_truth(), allow_nan=False)
    assert [q.question_id for q in task.questions(3, seed=7)] == [q.question_id for q in questions[:3]]


@pytest.mark.parametrize("name", ["number_multiply", "statistical_counting", "mahjong_pattern", "new_operator"])
def test_symbench_ground_truth_scores_its_stored_answer_after_the_json_round_trip(name):
    task = get_task(f"symbench/{name}")
    verify = get_verifier(task.name)
    for q in task.questions(5):
        reference = Reference(**json.loads(json.dumps(q.ground_truth())))
        assert float(verify(str(reference.answer), reference)) == 1.0
        assert float(verify(str(reference.answer) + "1", reference)) == 0.0


def solve_24(numbers: list[int]) -> str:
    """Brute force over orders, operators and the five bracketings of four numbers."""
    from fractions import Fraction
    from itertools import permutations, product

    shapes = ["(({a} {x} {b}) {y} {c}) {z} {d}", "({a} {x} ({b} {y} {c})) {z} {d}", "({a} {x} {b}) {y} ({c} {z} {d})",
              "{a} {x} (({b} {y} {c}) {z} {d})", "{a} {x} ({b} {y} ({c} {z} {d}))"]  # fmt: skip
    for (a, b, c, d), (x, y, z), shape in product(permutations(numbers), product("+-*/", repeat=3), shapes):
        expression = shape.format(a=a, b=b, c=c, d=d, x=x, y=y, z=z)
        try:
            if eval(expression.replace("/", "*Fraction(1)/"), {"Fraction": Fraction}) == 24:
                return expression
        except ZeroDivisionError:
            continue
    raise AssertionError(f"no solution for {numbers}")


def greedy_boxlift_plan(boxes: list[int], lifters: list[int]) -> str:
    """Heaviest box first, free lifters in listed order: the plan the step bound was computed with."""
    left, steps = sorted(boxes, reverse=True), []
    while left:
        free, step = list(range(len(lifters))), []
        for weight in list(left):
            team, capacity = [], 0
            for i in free:
                if capacity >= weight:
                    break
                team.append(i)
                capacity += lifters[i]
            if capacity >= weight:
                step.append((weight, team))
                free = [i for i in free if i not in team]
                left.remove(weight)
        steps.append(f"Step {len(steps) + 1}: {step}")
    return "\n".join(steps)


def bfs_blocksworld_plan(initial: dict[str, list[str]], goal: dict[str, list[str]]) -> str:
    """Shortest plan by breadth-first search (the first bundled puzzles have two or three blocks)."""
    from collections import deque

    names = list(initial)
    target = tuple(tuple(goal.get(n, [])) for n in names)
    start = tuple(tuple(initial[n]) for n in names)
    parent: dict = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state == target:
            moves = []
            while parent[state] is not None:
                state, move = parent[state]
                moves.append(move)
            return "\n".join(reversed(moves))
        for i, j in ((i, j) for i in range(len(names)) for j in range(len(names)) if i != j and state[i]):
            nxt = list(state)
            nxt[i], nxt[j] = state[i][:-1], state[j] + (state[i][-1],)
            if tuple(nxt) not in parent:
                parent[tuple(nxt)] = (state, f"Move {state[i][-1]} from {names[i]} to {names[j]}")
                queue.append(tuple(nxt))
    raise AssertionError("unsolvable")


def test_rendered_prompt_formats_are_what_the_verifiers_accept():
    game24 = get_task("symbench/game24")
    for q in game24.questions(3):
        reference = Reference(**json.loads(json.dumps(q.ground_truth())))
        assert float(get_verifier(game24.name)(solve_24(reference.meta["derived_numbers"]), reference)) == 1.0
        assert float(get_verifier(game24.name)("1 + 1", reference)) == 0.0
    blocks = get_task("symbench/blocksworld")
    for q in blocks.questions(3):
        meta = q.reference.meta
        plan = bfs_blocksworld_plan(meta["derived_initial_state"], meta["derived_goal_state"])
        assert float(get_verifier(blocks.name)(plan, q.reference)) == 1.0
        assert float(get_verifier(blocks.name)("Move Q from stack1 to stack2", q.reference)) == 0.0
    boxlift = get_task("symbench/boxlift")
    for q in boxlift.questions(3):
        plan = greedy_boxlift_plan(q.reference.meta["boxes"], q.reference.meta["lifters"])
        assert plan.count("Step") <= q.reference.meta["derived_estimated_steps"]
        assert float(get_verifier(boxlift.name)(plan, q.reference)) == 1.0
        assert float(get_verifier(boxlift.name)(plan.splitlines()[0], q.reference)) == 0.0
    letters = get_task("symbench/letters")
    for q in letters.questions(3):
        meta = q.reference.meta
        answer = f"Count: {meta['derived_count']}, Positions: {meta['derived_positions']}"
        assert float(get_verifier(letters.name)(answer, q.reference)) == 1.0
        assert (
            float(get_verifier(letters.name)(f"Count: {meta['derived_count'] + 1}, Positions: []", q.reference)) == 0.0
        )


def test_question_less_symbench_tasks_get_prompts_from_meta():
    assert set(PROMPT_RENDERERS) == {"blocksworld", "boxlift", "boxnet", "game24", "letters", "path_plan"}
    game24 = next(get_task("symbench/game24").questions(1))
    numbers = game24.reference.meta["derived_numbers"]
    assert all(str(n) in game24.prompt for n in numbers) and "24" in game24.prompt
    letters = next(get_task("symbench/letters").questions(1))
    assert letters.reference.meta["word"] in letters.prompt
    assert "<<<Count: X, Positions: [Y, Z, ...]>>>" in letters.prompt
    boxlift = next(get_task("symbench/boxlift").questions(1))
    assert str(boxlift.reference.meta["boxes"]) in boxlift.prompt
    assert f"at most {boxlift.reference.meta['derived_estimated_steps']} steps" in boxlift.prompt
    blocks = next(get_task("symbench/blocksworld").questions(1))
    assert "stack2: B A" in blocks.prompt and "Move <block> from <source stack> to <destination stack>" in blocks.prompt
    boxnet = next(get_task("symbench/boxnet").questions(1))
    assert "square[0.5, 1.5]" in boxnet.prompt and "Agent[0.5, 0.5]" in boxnet.prompt


@pytest.mark.parametrize("name", sorted(BBH_CATEGORIES))
def test_bbh_questions_carry_our_answer_instruction_and_score_their_target(name):
    task = get_task(f"bbh/{name}")
    questions = list(task.questions(10_000))
    assert len(questions) == line_count(task.data_file)
    verify = get_verifier(task.name)
    for q in questions[:5]:
        assert q.prompt.endswith(protocol.ANSWER_INSTRUCTION)
        reference = Reference(**json.loads(json.dumps(q.ground_truth())))
        assert float(verify(reference.answer, reference)) == 1.0


def test_reasoning_gym_is_deterministic_from_seed_and_index():
    task = get_task("reasoning_gym/maze")
    first = list(task.questions(4, seed=3))
    again = list(task.questions(4, seed=3))
    other = list(task.questions(4, seed=4))
    assert first == again
    assert [q.prompt for q in first] != [q.prompt for q in other]
    assert [q.question_id for q in task.questions(2, seed=3)] == [q.question_id for q in first[:2]]
    assert first[0].question_id == f"reasoning_gym/maze/seed{task_seed(3, 'maze')}/0"
    # per-dataset seeds: one dataset's questions do not depend on which others are built
    assert task_seed(3, "maze") != task_seed(3, "sudoku")


@pytest.mark.parametrize("name", ["maze", "gcd", "word_sorting", "knights_knaves"])
def test_reasoning_gym_gold_answers_score_after_the_json_round_trip(name):
    task = get_task(f"reasoning_gym/{name}")
    verify = get_verifier(task.name)
    for q in task.questions(3, seed=0):
        reference = Reference(**json.loads(json.dumps(q.ground_truth())))
        assert float(verify(str(reference.answer), reference)) == 1.0
        assert float(verify("definitely not the answer", reference)) == 0.0


def test_reasoning_gym_bad_config_names_the_task():
    task = ReasoningGymTask(source_name="maze", category="planning", config_json='{"no_such_option": 1}')
    with pytest.raises(TaskDataError, match="reasoning_gym/maze"):
        list(task.questions(2))


def write_symbench(tmp_path: Path, name: str, records: list[dict]) -> SymBenchTask:
    (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return SymBenchTask(source_name=name, category="execution", data_dir=str(tmp_path))


def record(i: int, **overrides) -> dict:
    base = {"id": f"pooling/sample_{i}", "task": "pooling", "question": f"Q{i} <<<x>>>", "solution": [[i]], "meta": {}}
    return {**base, **overrides}


def test_duplicate_id_names_file_and_line(tmp_path):
    task = write_symbench(tmp_path, "pooling", [record(0), record(1), record(0)])
    with pytest.raises(TaskDataError, match=r"pooling\.jsonl:3: duplicate id 'pooling/sample_0' \(first on line 1\)"):
        list(task.questions(10))


def test_missing_ground_truth_names_file_line_and_field(tmp_path):
    task = write_symbench(tmp_path, "pooling", [record(0), record(1, solution=None)])
    with pytest.raises(TaskDataError, match=r"pooling\.jsonl:2: no ground truth: field 'solution'"):
        list(task.questions(10))
    bbh_dir = tmp_path / "bbh"
    bbh_dir.mkdir()
    (bbh_dir / "navigate.jsonl").write_text(
        json.dumps({"id": "navigate/0", "task": "navigate", "question": "Go?", "answer": ""}) + "\n", encoding="utf-8"
    )
    with pytest.raises(TaskDataError, match=r"navigate\.jsonl:1: no ground truth: field 'answer'"):
        list(BBHTask(source_name="navigate", category="execution", data_dir=str(bbh_dir)).questions(10))


def test_missing_field_bad_json_and_missing_file_are_named(tmp_path):
    task = write_symbench(tmp_path, "pooling", [record(0), {"id": "pooling/x", "task": "pooling"}])
    with pytest.raises(
        TaskDataError, match=r"pooling\.jsonl:2: record is missing field\(s\) \['question', 'solution', 'meta'\]"
    ):
        list(task.questions(10))
    (tmp_path / "pooling.jsonl").write_text(json.dumps(record(0)) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"pooling\.jsonl:2: invalid JSON"):
        list(task.questions(10))
    with pytest.raises(FileNotFoundError, match=r"sudoku\.jsonl"):
        list(SymBenchTask(source_name="sudoku", category="planning", data_dir=str(tmp_path)).questions(1))


def test_question_less_record_with_broken_meta_is_named(tmp_path):
    bad = {"id": "game24/rank_1", "task": "game24", "question": None, "solution": None, "meta": {"Rank": "1"}}
    task = SymBenchTask(source_name="game24", category="planning", data_dir=str(tmp_path))
    (tmp_path / "game24.jsonl").write_text(json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"game24\.jsonl:1: .*derived_numbers"):
        list(task.questions(1))
