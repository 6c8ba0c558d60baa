"""compute_score: routing, ground-truth forms, error containment, time budgets, user modules."""

from __future__ import annotations

import json
import textwrap
import time
import uuid

import pytest

from reward_fns.protocol import RESULTS_HEADER
from reward_fns.registry import Reference, register_verifier
from reward_fns.scoring import REWARD_MODULES_ENV, ScoringConfig, compute_score, parse_ground_truth

METRIC_KEYS = {
    "score", "acc", "format_ok", "answer_extracted", "num_code_calls", "verifier_error", "verifier_timeout", "task",
    "reward_error",
}  # fmt: skip


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def code_turn(i: int) -> str:
    return f"```python\nprint({i})\n```\n{RESULTS_HEADER}\n{i}\n"


def test_ground_truth_forms():
    stored = json.dumps({"task": "bbh/navigate", "answer": "No", "meta": {"k": 1}})
    assert parse_ground_truth(stored, "bbh/navigate") == Reference("bbh/navigate", "No", {"k": 1})
    assert parse_ground_truth("No", "bbh/navigate") == Reference("bbh/navigate", "No")
    assert parse_ground_truth({"answer": 24}, "my/task") == Reference("my/task", 24)
    assert parse_ground_truth("{not json", "my/task") == Reference("my/task", "{not json")
    assert parse_ground_truth('{"x": 1}', "my/task") == Reference("my/task", '{"x": 1}')  # no "answer": a plain answer
    with pytest.raises(ValueError, match="ground truth is for task 'bbh/snarks' but the row's data_source is 'bbh/navigate'"):
        parse_ground_truth(json.dumps({"task": "bbh/snarks", "answer": "(A)"}), "bbh/navigate")
    with pytest.raises(ValueError, match="bbh/navigate: ground truth 'meta' must be an object"):
        parse_ground_truth(json.dumps({"answer": "No", "meta": [1]}), "bbh/navigate")


def test_result_keys_are_the_same_for_every_outcome():
    outcomes = [
        compute_score("bbh/navigate", "<<<No>>>", "No"),
        compute_score("bbh/navigate", "nothing", "No"),
        compute_score("reasoning_gym/prime_factorization", "<<<abc>>>", json.dumps({"answer": "2 × 3", "meta": {}})),
    ]
    for outcome in outcomes:
        assert set(outcome) == METRIC_KEYS
        assert all(isinstance(outcome[k], (int, float)) for k in METRIC_KEYS - {"task", "reward_error"})


def test_unknown_task_is_a_clear_error_unless_exact_match_fallback():
    with pytest.raises(KeyError, match="no verifier registered for task 'bbh/navigat'.*bbh/navigate"):
        compute_score("bbh/navigat", "<<<No>>>", "No")
    with pytest.raises(KeyError, match="my/unknown"):
        compute_score("my/unknown", "no answer at all", "No")
    result = compute_score("my/unknown", "<<< no. >>>", "No", unknown_task="exact_match")
    assert result["acc"] == 1.0 and result["score"] == pytest.approx(1.1)
    with pytest.raises(ValueError, match="unknown_task must be one of"):
        compute_score("my/unknown", "<<<No>>>", "No", unknown_task="zero")


def test_a_crashing_verifier_scores_zero_and_reports_why():
    name = unique("test/crash")

    @register_verifier(name)
    def crash(answer, reference):
        raise RuntimeError(f"cannot parse {answer}")

    result = compute_score(name, "<<<42>>>", "42")
    assert result["acc"] == 0.0 and result["score"] == pytest.approx(0.1)
    assert result["verifier_error"] == 1.0
    assert result["reward_error"] == f"{name}: RuntimeError: cannot parse 42"


def test_a_verifier_returning_junk_is_an_error_not_a_reward():
    name = unique("test/junk")
    register_verifier(name, lambda answer, reference: "yes")
    result = compute_score(name, "<<<42>>>", "42")
    assert result["acc"] == 0.0 and "returned str" in result["reward_error"]


def test_time_budget_abandons_a_slow_verifier():
    name = unique("test/slow")
    register_verifier(name, lambda answer, reference: time.sleep(3) or 1.0, time_budget_s=0.2)
    start = time.perf_counter()
    result = compute_score(name, "<<<42>>>", "42")
    assert time.perf_counter() - start < 2.0
    assert result["acc"] == 0.0 and "time budget of 0.2 s" in result["reward_error"]


def test_code_calls_from_agent_loop_or_counted_from_text():
    text = "".join(code_turn(i) for i in range(7)) + "<<<No>>>"
    counted = compute_score("bbh/navigate", text, "No")
    assert counted["num_code_calls"] == 7 and counted["score"] == pytest.approx(1.0)
    reported = compute_score("bbh/navigate", text, "No", extra_info={"num_code_calls": 3, "num_turns": 9})
    assert reported["num_code_calls"] == 3 and reported["score"] == pytest.approx(1.1)


def test_shaping_from_reward_kwargs():
    result = compute_score("bbh/navigate", "<<<Yes>>>", "No", shaping={"format_bonus": 0.0})
    assert result["score"] == 0.0
    with pytest.raises(ValueError, match="unknown ShapingConfig keys"):
        compute_score("bbh/navigate", "<<<No>>>", "No", shaping={"bonus": 1})
    assert ScoringConfig.from_kwargs({"reward_modules": "a.b, c.d", "reward_router_address": "x"}).reward_modules == ("a.b", "c.d")


def write_module(directory, module_name: str, task: str) -> None:
    (directory / f"{module_name}.py").write_text(
        textwrap.dedent(
            f"""
            from reward_fns import register_verifier

            @register_verifier({task!r})
            def same_length(answer, reference):
                return len(answer) == len(reference.answer)
            """
        )
    )


def test_user_module_from_a_file_path(tmp_path):
    task = unique("custom/file")
    write_module(tmp_path, "my_file_rewards", task)
    path = str(tmp_path / "my_file_rewards.py")
    assert compute_score(task, "<<<abc>>>", "xyz", reward_modules=[path])["acc"] == 1.0
    assert compute_score(task, "<<<abcd>>>", "xyz", reward_modules=[path])["acc"] == 0.0


def test_user_module_from_a_dotted_path(tmp_path, monkeypatch):
    task, module = unique("custom/dotted"), unique("my_dotted_rewards")
    write_module(tmp_path, module, task)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert compute_score(task, "<<<ab>>>", "xy", reward_modules=module)["acc"] == 1.0


def test_user_module_from_the_environment(tmp_path, monkeypatch):
    task, module = unique("custom/env"), unique("my_env_rewards")
    write_module(tmp_path, module, task)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(REWARD_MODULES_ENV, f" {module} ,")
    assert compute_score(task, "<<<a>>>", "x")["acc"] == 1.0


def test_missing_user_module_names_the_path():
    with pytest.raises(FileNotFoundError, match="reward module file not found: nowhere/rewards.py"):
        compute_score("bbh/navigate", "<<<No>>>", "No", reward_modules=["nowhere/rewards.py"])
