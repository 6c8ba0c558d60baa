"""Reasoning-Gym verifiers: every enabled dataset, gold answers after a JSON round trip score 1,
wrong answers score 0; excluded datasets are excluded for the reason given; unsafe answers to
scorers that evaluate text are rejected without being run."""

from __future__ import annotations

import json
import time

import pytest
import reasoning_gym
from reasoning_gym.factory import DATASETS

from reward_fns import reasoning_gym_tasks as rg
from reward_fns.registry import Reference, get_verifier, has_verifier

SIZE, SEED = 3, 1234
# Datasets where another question's answer can also solve this one (several valid solutions).
MANY_SOLUTIONS = {"n_queens", "sokoban"}  # sokoban: blocked moves are no-ops, so walks can coincide


def round_trip(reference: Reference) -> Reference:
    """What compute_score rebuilds from the ground-truth JSON stored in parquet."""
    record = json.loads(json.dumps({"task": reference.task, "answer": reference.answer, "meta": reference.meta}))
    return Reference(**record)


def entries(name: str) -> list[dict]:
    dataset = reasoning_gym.create_dataset(name, size=SIZE, seed=SEED)
    return [dataset[i] for i in range(SIZE)]


def test_allow_list_covers_exactly_the_audited_version():
    from importlib.metadata import version

    assert version("reasoning-gym") == rg.RG_VERSION, "a new reasoning-gym: re-audit, then bump RG_VERSION"
    assert set(rg.ENABLED).isdisjoint(rg.EXCLUDED)
    assert set(rg.ENABLED) | set(rg.EXCLUDED) == set(DATASETS), "new datasets: audit them, then list them"
    assert list(rg.ENABLED) == sorted(rg.ENABLED)
    for name in rg.ENABLED:
        assert has_verifier(f"reasoning_gym/{name}")
    for name in rg.EXCLUDED:
        assert not has_verifier(f"reasoning_gym/{name}")


def test_one_dataset_list_with_categories_for_the_data_side():
    assert set(rg.CATEGORIES) == set(DATASETS) - {"composite"}
    assert set(rg.CATEGORIES.values()) == {"execution", "planning", "reasoning"}
    enabled = rg.enabled_datasets()
    assert list(enabled) == list(rg.ENABLED) and len(enabled) == 100
    assert all(enabled[name] == rg.CATEGORIES[name] for name in enabled)


@pytest.mark.parametrize("name", rg.ENABLED)
def test_enabled_dataset_gold_scores_one_and_wrong_scores_zero(name):
    verify = get_verifier(f"reasoning_gym/{name}")
    generated = entries(name)
    references = [round_trip(rg.reference_from_entry(name, e)) for e in generated]
    for entry, reference in zip(generated, references):
        assert reference.meta["source_dataset"] == name
        if name == "intermediate_integration" and "Integral(" in entry["answer"]:
            continue  # sympy could not integrate; see test_integral_answers_are_rejected
        assert verify(entry["answer"], reference) == 1.0, (name, entry["answer"][:80])
        for wrong in ("", "nonsense answer zzz", "<<<>>>"):
            assert verify(wrong, reference) == 0.0, (name, wrong)
    if name in MANY_SOLUTIONS:
        return
    for entry, reference in zip(generated, references):
        for other in generated:
            if other["answer"] != entry["answer"]:
                assert verify(other["answer"], reference) == 0.0, (name, other["answer"][:80], reference.answer)


@pytest.mark.parametrize("name", sorted(set(rg.EXCLUDED) - {"composite"}))
def test_excluded_datasets_carry_no_gold_answer(name):
    generated = entries(name)
    assert all(e["answer"] is None for e in generated), f"{name} now has answers: re-audit it"
    with pytest.raises(ValueError, match="excluded"):
        rg.reference_from_entry(name, generated[0])


def test_composite_needs_member_datasets():
    with pytest.raises(Exception, match="at least one dataset"):
        reasoning_gym.create_dataset("composite", size=2, seed=1)
    with pytest.raises(ValueError, match="member datasets"):
        rg.reference_from_entry("composite", {"answer": "x", "metadata": {}})


def test_reference_errors_name_the_dataset_and_field():
    with pytest.raises(ValueError, match="reasoning_gym/gcd: entry has no 'metadata'"):
        rg.reference_from_entry("gcd", {"answer": "3"})
    with pytest.raises(ValueError, match="not in the audited allow-list"):
        rg.reference_from_entry("no_such_dataset", {"answer": "3", "metadata": {}})


def test_metadata_is_made_json_safe():
    import numpy as np

    meta = rg.to_json_safe({"grid": ((1, 2), (3, 4)), "n": np.int64(3), "xs": np.array([1.5]), 7: {3, 1}})
    assert meta == {"grid": [[1, 2], [3, 4]], "n": 3, "xs": [1.5], "7": [1, 3]}
    with pytest.raises(ValueError, match="non-finite"):
        rg.to_json_safe({"x": float("nan")})


def _reference(name: str, entry: dict) -> Reference:
    return round_trip(rg.reference_from_entry(name, entry))


def test_strict_overrides_reject_answers_upstream_accepts():
    halting = entries("game_of_life_halting")[0]
    wrong_bool = "True" if halting["answer"] == "False" else "False"
    assert get_verifier("reasoning_gym/game_of_life_halting")(wrong_bool, _reference("game_of_life_halting", halting)) == 0.0
    assert get_verifier("reasoning_gym/game_of_life_halting")("nonsense", _reference("game_of_life_halting", halting)) == 0.0

    coin = {"answer": "0.3125", "metadata": {}}
    assert rg.upstream_scorer("coin_flip")("0", coin) == 1.0  # the upstream bug being fixed
    assert get_verifier("reasoning_gym/coin_flip")("0", _reference("coin_flip", coin)) == 0.0
    assert get_verifier("reasoning_gym/coin_flip")("5/16", _reference("coin_flip", coin)) == 1.0

    puzzle = {"answer": "4*8 - 6 - 2", "metadata": {"numbers": [4, 8, 6, 2]}}
    verify = get_verifier("reasoning_gym/puzzle24")
    assert verify("(8 - 2) * (6 - 4) * 2", _reference("puzzle24", puzzle)) == 0.0  # numbers reused
    assert verify("5*6*1 - 6", _reference("puzzle24", puzzle)) == 0.0  # other numbers
    assert verify("8*6/2 + 4 - 4", _reference("puzzle24", puzzle)) == 0.0
    assert verify("6*8/2 - 4 + 2 - 2/2", _reference("puzzle24", puzzle)) == 0.0
    assert verify("2*6 + 8 + 4", _reference("puzzle24", puzzle)) == 1.0
    assert verify("2_6 - 8/4", _reference("puzzle24", puzzle)) == 0.0  # 2_6 is 26: two given digits glued
    assert verify("2*6 + 8 + 4 = 24", _reference("puzzle24", puzzle)) == 1.0
    assert verify("(4 + 8/6) * 2", _reference("puzzle24", puzzle)) == 0.0  # 32/3, not 24
    assert verify("6 / (2 - 8/4)", _reference("puzzle24", puzzle)) == 0.0  # division by zero


@pytest.mark.parametrize(
    ("name", "attack"),
    [
        ("n_queens", "[__import__('pathlib').Path({marker!r}).touch()]"),
        ("string_insertion", "[open({marker!r}, 'w').write('x')]"),
        ("spiral_matrix", "(lambda: __import__('pathlib').Path({marker!r}).touch())()"),
        ("binary_matrix", "[[x for x in [__import__('pathlib').Path({marker!r}).touch()]]]"),
        ("countdown", "__import__('pathlib').Path({marker!r}).touch() or 24"),
        ("polynomial_multiplication", "x.__class__.__base__.__subclasses__()"),
        ("simple_integration", "Symbol('x').func.__globals__['os'].system('touch {marker}')"),
        ("intermediate_integration", "exec(\"open({marker!r}, 'w')\")"),
    ],
)
def test_code_in_answers_is_never_executed(name, attack, tmp_path):
    marker = str(tmp_path / "executed")
    reference = _reference(name, entries(name)[0])
    assert get_verifier(f"reasoning_gym/{name}")(attack.format(marker=marker), reference) == 0.0
    assert not (tmp_path / "executed").exists()


def test_integral_answers_are_rejected():
    """sympy's Integral(f, x) differentiates back to f: upstream would pay for restating the question."""
    entry = next(e for e in entries("simple_integration"))
    integrand = entry["metadata"]["integrand"]
    hack = f"Integral({integrand}, {entry['metadata']['variable']}) + C"
    assert rg.upstream_scorer("simple_integration")(hack, entry) == 1.0
    assert get_verifier("reasoning_gym/simple_integration")(hack, _reference("simple_integration", entry)) == 0.0


@pytest.mark.parametrize("bomb", ["9**9**9**9", "(10**100)**100**2", "((10**50)**50)**50", "x" * 3000])
def test_arithmetic_gate_bounds_work(bomb):
    start = time.perf_counter()
    with pytest.raises(rg.AnswerRejected):
        rg.arithmetic_gate(bomb)
    assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize("ok", ["-2*x**3/3 + C", "sin(x)**2 + exp(-x/2) + C", "(x**2 + 1)**(3/2)", "3*x**(-1)"])
def test_arithmetic_gate_passes_maths(ok):
    assert rg.arithmetic_gate(ok) == ok


@pytest.mark.parametrize("ok", ["[1, 2, 3]", "abc", "hello world", "[['1', '0'], ['0', '1']]", "-1 2 3"])
def test_literal_gate_passes_data(ok):
    assert rg.literal_gate(ok) == ok


def test_sympy_scorers_run_under_a_time_budget_and_others_inline():
    from reward_fns.registry import get_time_budget

    budgeted = {name for name in rg.ENABLED if get_time_budget(f"reasoning_gym/{name}") is not None}
    assert budgeted == {"countdown", "polynomial_multiplication", "simple_integration", "intermediate_integration"}
