"""Hedges generated from the bundled data: every task with one right answer, the gold joined with
a wrong answer of the same question in the ways a policy could join them, must score 0.

The gold and wrong answers are the ones the per-family tests use (stored answers written as a
model writes them, and their perturbations); this file only combines them. A sample of records
keeps it fast; the templates are what differs between tasks.
"""

from __future__ import annotations

import pytest

import test_bbh_on_cpu as bbh_tests
import test_symbench_stored_answers_on_cpu as stored
from reward_fns.protocol import extract_answer
from reward_fns.registry import Reference, get_verifier
from reward_fns.symbench import TASK_VERIFIERS, reference_from_record

# Ways to write two candidates as one answer; each must score 0 whatever the task.
HEDGES = [
    "{g} or {w}", "{w} or {g}", "{g}, {w}", "{w}, {g}", "{g}\n{w}", "{w}\n{g}", "{g}; {w}", "{g} / {w}", "{g} | {w}",
    "{g} & {w}", "{g} and {w}", "{g} (or {w})", "either {g} or {w}", "{g} or maybe {w}", "{g}  # or {w}",
    "{g}\n\nWait, {w}", "{g} = {w}", "{g} vs {w}", "[{g}, {w}]", "{{{g}, {w}}}", "{g}, or {w}", "{g}. {w}",
    "**{g}** or **{w}**", "\\boxed{{{g}}} \\boxed{{{w}}}", "${g}$ or ${w}$", "{g} \\text{{ or }} {w}",
]  # fmt: skip
SYMBENCH_RECORDS_PER_TASK = 10
BBH_EVERY_NTH_ROW = 10


def _hedges(gold: str, wrongs: list[str]) -> list[str]:
    # A wrong answer holding ">>>" ends the <<<...>>> early: what is left is not a hedge.
    return [t.format(g=gold, w=w) for w in wrongs if w.strip() and ">>>" not in w for t in HEDGES]


def _scores_one(verifier, answer: str, reference: Reference) -> bool:
    extracted = extract_answer(f"Let me answer.\n<<<{answer}>>>")
    return extracted is not None and verifier(extracted, reference) == 1.0


@pytest.mark.parametrize("task", stored.STORED_ANSWER_TASKS)
def test_symbench_hedges_score_zero(task: str) -> None:
    failures = []
    for record in stored.RECORDS[task][:SYMBENCH_RECORDS_PER_TASK]:
        reference = reference_from_record(record)
        gold = stored.GOLD[task](record, 0).strip()
        assert _scores_one(TASK_VERIFIERS[task], gold, reference), gold
        for answer in _hedges(gold, stored.WRONG[task](record)):
            if _scores_one(TASK_VERIFIERS[task], answer, reference):
                failures.append((record["id"], answer))
    assert failures == []


@pytest.mark.parametrize("task", sorted({row["task"] for row in bbh_tests.ROWS}))
def test_bbh_hedges_score_zero(task: str) -> None:
    verifier = get_verifier(f"bbh/{task}")
    failures = []
    for row in [r for r in bbh_tests.ROWS if r["task"] == task][::BBH_EVERY_NTH_ROW]:
        reference = Reference(task=f"bbh/{task}", answer=row["answer"])
        assert _scores_one(verifier, row["answer"], reference), row["id"]
        wrongs = [w for w in bbh_tests.perturbations(row) if w not in ("(", "<<<", "I don't know", "A and B")][:3]
        for answer in _hedges(row["answer"], wrongs):
            if _scores_one(verifier, answer, reference):
                failures.append((row["id"], answer))
    assert failures == []
