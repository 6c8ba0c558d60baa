"""`r1ci reward check` on small JSONL files: per-task accuracy, failure reasons, bad-row errors."""

from __future__ import annotations

import json

import pytest

from r1ci_verl.cli import main


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return str(path)


ROWS = [
    {"data_source": "bbh/navigate", "ground_truth": "No", "response": "<<<No>>>"},
    {"task": "navigate", "answer": "Yes", "response": "I think <<<No>>>"},  # bare task name
    {"data_source": "bbh/object_counting",
     "reward_model": {"ground_truth": json.dumps({"task": "bbh/object_counting", "answer": "8", "meta": {}})},
     "response": "Eight things."},
    {"data_source": "reasoning_gym/gcd", "ground_truth": json.dumps({"answer": "6", "meta": {}}),
     "response": "<<<6>>>"},
]


def test_check_prints_per_task_accuracy_and_failures(tmp_path, capsys):
    data = write_jsonl(tmp_path / "rows.jsonl", ROWS)
    out_file = tmp_path / "results.jsonl"
    assert main(["reward", "check", "--data", data, "--output", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "bbh/navigate" in out and "bbh/object_counting" in out and "reasoning_gym/gcd" in out
    assert "50.0%" in out  # navigate: 1 of 2
    assert "row 1 bbh/navigate: wrong answer: 'No' (expected 'Yes')" in out
    assert "row 2 bbh/object_counting: no <<<answer>>> outside code blocks" in out
    assert "Scored 4 responses" in out
    results = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["acc"] for r in results] == [1.0, 0.0, 0.0, 1.0]


def test_answers_file_and_fail_under(tmp_path, capsys):
    rows = [{k: v for k, v in row.items() if k != "response"} for row in ROWS]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    answers = write_jsonl(tmp_path / "answers.jsonl", ["<<<No>>>", {"response": "<<<Yes>>>"}, "<<<8>>>", "<<<7>>>"])
    assert main(["reward", "check", "--data", data, "--answers", answers, "--fail-under", "0.8"]) == 1
    captured = capsys.readouterr()
    assert "accuracy 75.0% is below --fail-under 80.0%" in captured.err


def test_gold_self_check_on_bundled_data(capsys):
    from pathlib import Path

    import r1ci_verl

    data = Path(r1ci_verl.__file__).parent / "assets" / "bbh" / "dyck_languages.jsonl"
    assert main(["reward", "check", "--data", str(data), "--gold", "--fail-under", "1.0"]) == 0
    assert "bbh/dyck_languages" in capsys.readouterr().out


def test_custom_compute_score_replaces_ours(tmp_path, capsys):
    """An async function, as verl allows, used in place of compute_score."""
    module = tmp_path / "my_reward.py"
    module.write_text(
        "async def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kw):\n"
        "    return 1.0 if ground_truth.lower() in solution_str.lower() else 0.0\n"
    )
    data = write_jsonl(tmp_path / "rows.jsonl", [
        {"data_source": "mine/contains", "ground_truth": "paris", "response": "It is Paris."},
        {"data_source": "mine/contains", "ground_truth": "rome", "response": "It is Paris."},
    ])
    assert main(["reward", "check", "--data", data, "--reward", f"{module}:compute_score"]) == 0
    out = capsys.readouterr().out
    assert "mine/contains" in out and "50.0%" in out and "row 1 mine/contains: score 0" in out


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"ground_truth": "No", "response": "<<<No>>>"}, "row 1: field 'data_source' (or 'task') is missing"),
        ({"data_source": "bbh/navigate", "response": "<<<No>>>"}, "row 1: no ground truth"),
        ({"data_source": "bbh/navigate", "ground_truth": "No"}, "row 1: field 'response' is missing"),
        ({"data_source": "bbh/nowhere", "ground_truth": "No", "response": "<<<No>>>"}, "bbh/nowhere"),
        ({"task": "word_sorting", "answer": "a b", "response": "<<<a b>>>"},
         "task 'word_sorting' is ambiguous (bbh/word_sorting, reasoning_gym/word_sorting)"),
    ],
)
def test_bad_rows_are_named(tmp_path, capsys, record, message):
    data = write_jsonl(tmp_path / "rows.jsonl", [ROWS[0], record])
    assert main(["reward", "check", "--data", data]) == 2
    assert message in capsys.readouterr().err


def test_bad_json_line_is_named(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{oops\n")
    assert main(["reward", "check", "--data", str(path)]) == 2
    assert "rows.jsonl line 2: not valid JSON" in capsys.readouterr().err
