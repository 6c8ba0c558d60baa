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
    assert "row 2 (line 2) bbh/navigate: wrong answer: 'No' (expected 'Yes')" in out  # rows and lines from 1
    assert "row 3 (line 3) bbh/object_counting: no <<<answer>>> outside code blocks" in out
    assert "Scored 4 responses" in out
    results = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["acc"] for r in results] == [1.0, 0.0, 0.0, 1.0]
    assert [r["row"] for r in results] == [1, 2, 3, 4] and [r["line"] for r in results] == [1, 2, 3, 4]


def test_answers_file_and_fail_under(tmp_path, capsys):
    rows = [{k: v for k, v in row.items() if k != "response"} for row in ROWS]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    answers = write_jsonl(tmp_path / "answers.jsonl", ["<<<No>>>", {"response": "<<<Yes>>>"}, "<<<8>>>", "<<<7>>>"])
    assert main(["reward", "check", "--data", data, "--answers", answers, "--fail-under", "80"]) == 1
    captured = capsys.readouterr()
    assert "accuracy 75.0% is below --fail-under 80.0%" in captured.err


def test_gold_self_check_on_bundled_data(capsys):
    from pathlib import Path

    import r1ci_verl

    data = Path(r1ci_verl.__file__).parent / "assets" / "bbh" / "dyck_languages.jsonl"
    assert main(["reward", "check", "--data", str(data), "--gold", "--fail-under", "100"]) == 0
    assert "bbh/dyck_languages" in capsys.readouterr().out


def test_bundled_symbench_records_are_checked_with_their_derived_facts(tmp_path, capsys):
    """A raw SymBench record holds its question, not the facts its check derives from it (the
    equations of logical_equation, the count of logic_puzzle): every such row was a verifier error,
    right answers included."""
    from pathlib import Path

    import r1ci_verl

    path = Path(r1ci_verl.__file__).parent / "assets" / "symbench" / "logical_equation.jsonl"
    record = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    right, wrong = record["solution"], record["solution"][::-1]
    rows = [{**record, "task": "symbench/logical_equation", "response": f"<<<{json.dumps(right)}>>>"},
            {**record, "task": "symbench/logical_equation", "response": f"<<<{json.dumps(wrong)}>>>"}]
    assert main(["reward", "check", "--data", write_jsonl(tmp_path / "rows.jsonl", rows)]) == 0
    out = capsys.readouterr().out
    assert "50.0%" in out and "verifier error" not in out


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
    assert "mine/contains" in out and "50.0%" in out and "row 2 (line 2) mine/contains: score 0" in out
    assert "│       n/a │      n/a │" in out  # format ok / answered: not reported by this function


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"ground_truth": "No", "response": "<<<No>>>"}, "rows.jsonl:2, row 2, field 'data_source' (or 'task')"),
        ({"data_source": "bbh/navigate", "response": "<<<No>>>"}, "no ground truth"),
        ({"data_source": "bbh/navigate", "ground_truth": "No"}, "rows.jsonl:2, row 2, field 'response'"),
        ({"data_source": "bbh/nowhere", "ground_truth": "No", "response": "<<<No>>>"},
         "no verifier registered for task 'bbh/nowhere'"),
        ({"task": "word_sorting", "answer": "a b", "response": "<<<a b>>>"},
         "task 'word_sorting' is ambiguous (bbh/word_sorting, reasoning_gym/word_sorting)"),
        ({"data_source": "bbh/navigate", "ground_truth": None, "response": "<<<No>>>"},
         "ground truth is null, "),
        ({"data_source": "bbh/navigate", "reward_model": {"ground_truth": None}, "response": "<<<No>>>"},
         "field 'reward_model.ground_truth'"),
    ],
)
def test_bad_rows_are_named(tmp_path, capsys, record, message):
    data = write_jsonl(tmp_path / "rows.jsonl", [ROWS[0], record])
    assert main(["reward", "check", "--data", data]) == 2
    err = capsys.readouterr().err
    assert message in err and "rows.jsonl:2, row 2" in err and len(err.strip().splitlines()) == 1


def test_bad_json_line_is_named(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{oops\n")
    assert main(["reward", "check", "--data", str(path)]) == 2
    assert "not valid JSON" in (err := capsys.readouterr().err) and "rows.jsonl:2, row 2" in err


def test_line_and_row_differ_after_blank_lines(tmp_path, capsys):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n" + json.dumps(ROWS[0]) + "\n\n" + json.dumps({"data_source": "bbh/navigate", "response": "x"}) + "\n")
    assert main(["reward", "check", "--data", str(path)]) == 2
    assert "rows.jsonl:4, row 2" in capsys.readouterr().err


@pytest.mark.parametrize(("value", "accepted"), [("90", 0.9), ("90%", 0.9), ("0.5%", 0.005), ("0", 0.0), ("100", 1.0)])
def test_fail_under_is_a_percentage(value, accepted):
    from r1ci_verl.cli.errors import percentage

    assert percentage(value) == pytest.approx(accepted)


@pytest.mark.parametrize("value", ["0.9", "1", "150", "-1", "ninety"])
def test_fail_under_rejects_ambiguous_or_out_of_range(tmp_path, capsys, value):
    data = write_jsonl(tmp_path / "rows.jsonl", ROWS[:1])
    with pytest.raises(SystemExit) as exited:
        main(["reward", "check", "--data", data, "--fail-under", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("r1ci reward check: error: argument --fail-under") and len(err.strip().splitlines()) == 1


def test_gold_skips_tasks_without_a_stored_answer(tmp_path, capsys):
    rows = [ROWS[0], {"data_source": "bbh/navigate", "ground_truth": json.dumps({"answer": None, "meta": {"x": 1}})}]
    rows = [{k: v for k, v in row.items() if k != "response"} for row in rows]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    assert main(["reward", "check", "--data", data, "--gold"]) == 0
    out = capsys.readouterr().out
    assert "Skipped 1 rows whose task stores no answer" in out and "'null'" not in out
    assert "Scored 1 responses" in out


def test_gold_with_no_stored_answer_at_all_is_an_error(tmp_path, capsys):
    data = write_jsonl(tmp_path / "rows.jsonl", [{"data_source": "bbh/navigate", "answer": None, "meta": {"x": 1}}])
    assert main(["reward", "check", "--data", data, "--gold"]) == 2
    assert "no row has a stored answer (tasks bbh/navigate)" in capsys.readouterr().err


def test_one_off_verifier_cost_is_not_charged_to_the_first_row(tmp_path):
    """A verifier whose first call is slow (an import) is warmed before timing."""
    from reward_fns.check import load_rows, score_rows
    from reward_fns.registry import register_verifier

    calls = []

    @register_verifier("testonly/slow_first", overwrite=True)
    def slow_first(answer, reference):
        if not calls:
            import time

            time.sleep(0.3)
        calls.append(answer)
        return answer == reference.answer

    data = tmp_path / "rows.jsonl"
    write_jsonl(data, [{"data_source": "testonly/slow_first", "ground_truth": "1", "response": "<<<1>>>"}] * 2)
    rows, _ = load_rows(data)
    results, seconds = score_rows(rows)
    assert max(r.seconds for r in results) < 0.1 and seconds < 0.2
