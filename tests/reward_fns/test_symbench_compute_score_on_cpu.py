"""SymBench through verl's reward entry point: the stored ground truth JSON routes to our verifiers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import r1ci_verl
from reward_fns.scoring import compute_score
from reward_fns.symbench import reference_from_record

DATA_DIR = Path(r1ci_verl.__file__).parent / "assets" / "symbench"


def first_record(task: str) -> dict:
    return json.loads((DATA_DIR / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()[0])


def ground_truth(record: dict) -> str:
    """What the data builder stores in ``reward_model.ground_truth``."""
    reference = reference_from_record(record)
    return json.dumps({"task": reference.task, "answer": reference.answer, "meta": reference.meta})


RESPONSES = [  # (task, right answer, wrong answer) for the first record of each task
    ("game24", "6 * 4 * 1 * 1 = 24", "6 * 4 * 1 + 1"),  # numbers 1 1 4 6
    (
        "blocksworld",  # stack2 holds B A (bottom to top); the goal is A B
        "Move A from stack2 to stack1\nMove B from stack2 to stack3\n"
        "Move A from stack1 to stack2\nMove B from stack3 to stack2",
        "Move B from stack2 to stack1",  # B is not on top
    ),
    ("logic_puzzle", "0 1, 1 0, 0 0", "0 1, 0 0"),  # three cells are asked for
    ("new_operator", "90", "91"),
    ("sudoku", json.dumps(first_record("sudoku")["solution"]), "[[1]]"),
]


@pytest.mark.parametrize(("task", "right", "wrong"), RESPONSES)
def test_compute_score_routes_symbench_ground_truth(task: str, right: str, wrong: str) -> None:
    truth = ground_truth(first_record(task))
    right_result = compute_score(f"symbench/{task}", f"Done.\n<<<{right}>>>", truth)
    wrong_result = compute_score(f"symbench/{task}", f"Done.\n<<<{wrong}>>>", truth)
    assert right_result["acc"] == 1.0 and right_result["reward_error"] == "", right_result
    assert wrong_result["acc"] == 0.0 and wrong_result["reward_error"] == "", wrong_result
