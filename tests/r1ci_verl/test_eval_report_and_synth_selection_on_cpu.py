"""The arithmetic of eval reports (mean@n, pass@n, families, mean over tasks) and of synth's selection."""

from __future__ import annotations

import pytest

from r1ci_verl.evaluation.report import compare, summarize
from r1ci_verl.potential.runner import Question
from r1ci_verl.synth.runner import SynthConfig, select


def rec(task, index, sample, acc, **kw):
    return {"task": task, "index": index, "sample": sample, "acc": acc, "answer": "x", "num_code_calls": 1, **kw}


def test_mean_and_pass_at_n_per_task_family_and_overall():
    records = [
        rec("bbh/a", 1, 0, 1.0), rec("bbh/a", 1, 1, 0.0),  # question 1: 1 of 2
        rec("bbh/a", 2, 0, 0.0), rec("bbh/a", 2, 1, 0.0),  # question 2: 0 of 2
        rec("symbench/b", 3, 0, 1.0), rec("symbench/b", 3, 1, 1.0, num_code_calls=0, answer=None),
    ]
    s = summarize(records, n=2)
    assert s["tasks"]["bbh/a"]["mean_at_n"] == pytest.approx(25.0)
    assert s["tasks"]["bbh/a"]["pass_at_n"] == pytest.approx(50.0)
    assert s["tasks"]["symbench/b"]["mean_at_n"] == pytest.approx(100.0)
    assert s["families"]["bbh"]["tasks"] == 1
    assert s["overall"]["mean_at_n"] == pytest.approx(62.5)  # mean over tasks, as the paper averages
    assert s["overall"]["mean_at_n_by_question"] == pytest.approx(50.0)
    assert s["code_use"]["share_ran_code"] == pytest.approx(5 / 6)
    assert s["code_use"]["share_without_answer"] == pytest.approx(1 / 6)
    table = compare({"summary": s}, {"summary": summarize(records[:4], n=2)})
    assert "| bbh/a | 25.0 | 25.0 | +0.0 |" in table and "| symbench/b | 100.0 | n/a | n/a |" in table


def q(index, task):
    return Question(index=index, task=task, data_source=task, prompt=[{"role": "user", "content": "?"}],
                    ground_truth="{}", extra_info={"question_id": f"q{index}"})


def good(index, sample, task, response):
    return {"index": index, "sample": sample, "task": task, "acc": 1.0, "answer": "1", "renderable": True,
            "response": response, "steps": [{"reasoning": "", "code": "print(1)\n", "output": "1"}],
            "final": "<<<1>>>", "variant": "free", "question_id": f"q{index}"}


def test_selection_keeps_correct_distinct_answers_spread_over_questions_and_capped():
    questions = [q(1, "t"), q(2, "t"), q(3, "u")]
    records = [
        good(1, 0, "t", "A"), good(1, 1, "t", " A "),  # the same answer twice (whitespace aside): kept once
        good(1, 2, "t", "B"), good(2, 0, "t", "C"), good(2, 1, "t", "D"),
        {**good(3, 0, "u", "E"), "acc": 0.0},  # wrong: never kept
        {**good(3, 1, "u", "F"), "renderable": False},  # right but not renderable for SFT
    ]
    kept, yields = select(questions, records, SynthConfig(max_per_task=3))
    assert [(r["question_id"], r["sample"]) for r in kept] == [("q1", 0), ("q2", 0), ("q1", 2)]  # questions take turns
    assert yields["t"] == {"asked": 5, "answered": 5, "correct": 5, "kept": 3}
    assert yields["u"] == {"asked": 2, "answered": 2, "correct": 1, "kept": 0}
    assert all(r["prompt"] == [{"role": "user", "content": "?"}] for r in kept)  # the RL row's own prompt


async def test_offline_scoring_reads_the_response_without_program_output():
    """eval, potential and synth score as training does: an answer only the program printed is no answer."""
    from r1ci_verl.potential.runner import default_score_fn, score_answer

    task = "bbh/multistep_arithmetic_two"
    question = Question(index=0, task=task, data_source=task, prompt=[{"role": "user", "content": "?"}],
                        ground_truth="42", extra_info={"index": 0})
    block = "```python\nprint('<<<42>>>')\n```\nCode Execution Results:\n"
    response, scored = block + "<<<42>>>\nI do not know.", block + "\nI do not know."
    assert (await score_answer(default_score_fn(), question, response))["acc"] == 1.0  # the whole text, read naively
    assert (await score_answer(default_score_fn(), question, response, scored))["acc"] == 0.0
