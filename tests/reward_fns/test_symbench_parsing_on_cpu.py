"""The safe answer parsers (reward_fns.parsing), SymBench references, and the never-raise rule."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import r1ci_verl
from reward_fns import registry
from reward_fns.parsing import (
    MAX_ANSWER_CHARS,
    evaluate_arithmetic,
    grid_cells,
    number_matches,
    parse_grid,
    parse_int,
    parse_literal,
    parse_number,
    parse_pairs,
    split_list,
)
from reward_fns.registry import Reference
from reward_fns.symbench import TASK_VERIFIERS, ReferenceDataError, reference_from_record

DATA_DIR = Path(r1ci_verl.__file__).parent / "assets" / "symbench"
FIRST_RECORDS = {
    path.stem: json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    for path in sorted(DATA_DIR.glob("*.jsonl"))
}


# --- parsers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        (" -7 ", -7),
        ("+5", 5),
        ("1,234,567", 1234567),
        ("12.0", 12),
        ("[3]", 3),
        ('"8"', 8),
        ("1,23", None),
        ("12.5", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("1e999", None),
    ],
)
def test_parse_int(text, expected) -> None:
    assert parse_int(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5", 1.5),
        ("-2e3", -2000.0),
        ("13/9", 13 / 9),
        ("(1+2)*3", 9.0),
        ("1/0", None),
        ("nan", None),
        ("inf", None),
        ("2**10", None),
        ("abs(-1)", None),
    ],
)
def test_parse_number(text, expected) -> None:
    assert parse_number(text) == expected


def test_number_matches_allows_float_noise_and_correct_rounding_only() -> None:
    assert number_matches("1.4000000000000001", 1.4)
    assert number_matches("1.5417", 1.5416666666666665)
    assert number_matches("1.54", 1.5416666666666665)
    assert not number_matches("1.55", 1.5416666666666665)  # wrongly rounded
    assert not number_matches("1.5", 1.5416666666666665)  # one decimal is too coarse
    assert not number_matches("2", 1.54)
    assert number_matches("90", 90.0) and not number_matches("91", 90.0)


def test_split_list_accepts_common_list_layouts() -> None:
    expected = ["5", "3", "F", "A"]
    for text in ['["5", "3", "F", "A"]', "5, 3, F, A", "5 3 F A", "(5;3;F;A)", ' [ "5","3","F","A" ] ']:
        assert split_list(text) == expected, text
    assert split_list(None) is None
    assert split_list("x" * (MAX_ANSWER_CHARS + 1)) is None


def test_parse_grid_and_grid_cells() -> None:
    assert parse_grid("16, 0\n4, 2") == [["16", "0"], ["4", "2"]]
    assert parse_grid("[[16, 0], [4, 2]]") == [["16", "0"], ["4", "2"]]
    assert parse_grid("16,0,4,2") == [["16", "0", "4", "2"]]
    assert grid_cells(parse_grid("16,0,4,2"), 2, 2) == ["16", "0", "4", "2"]
    assert grid_cells(parse_grid("16,0\n4"), 2, 2) is None  # ragged
    assert grid_cells(parse_grid("16,0,4"), 2, 2) is None  # too short
    assert parse_grid("") is None


def test_parse_pairs_layouts() -> None:
    expected = [(0, 3), (1, 0), (2, 4)]
    for text in [
        "0 3, 1 0, 2 4",
        "(0,3), (1,0), (2,4)",
        "[[0, 3], [1, 0], [2, 4]]",
        "[(0, 3), (1, 0), (2, 4)]",
        "0 3\n1 0\n2 4",
    ]:
        assert parse_pairs(text) == expected, text
    assert parse_pairs("0 3 1, 1 0") is None
    assert parse_pairs("a b") is None


def test_parse_literal_never_evaluates_code() -> None:
    assert parse_literal("[1, 'a', (2, 3)]") == [1, "a", (2, 3)]
    assert parse_literal("__import__('os').getcwd()") is None
    assert parse_literal("[" * 5000 + "]" * 5000) is None  # too deep: rejected, not a crash


def test_evaluate_arithmetic_is_exact_and_reports_numbers_in_order() -> None:
    result = evaluate_arithmetic("8 / (3 - 8 / 3)")
    assert result.value == 24 and result.numbers == [8, 3, 8, 3]
    assert evaluate_arithmetic("6 × 4 ÷ 1").value == 24
    assert evaluate_arithmetic("0.1 + 0.2").value == Fraction(3, 10)
    with pytest.raises(ValueError):
        evaluate_arithmetic("-4 + 28", allow_unary=False)
    for hostile in [
        "2 ** 1000000",
        "(lambda: 1)()",
        "__import__('os')",
        "[1][0]",
        "1 if 1 else 2",
        "a + 1",
        "4 // 2",
        "1/0",
    ]:
        with pytest.raises(ValueError):
            evaluate_arithmetic(hostile)
    with pytest.raises(ValueError):
        evaluate_arithmetic("+".join(["1"] * 500))  # too many nodes


# --- references -------------------------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(FIRST_RECORDS))
def test_reference_is_json_serialisable_and_round_trips(task: str) -> None:
    record = FIRST_RECORDS[task]
    reference = reference_from_record(record)
    assert reference.task == f"symbench/{task}"
    stored = json.loads(json.dumps(dataclasses.asdict(reference)))
    assert Reference(**stored) == reference


def test_reference_parses_question_facts() -> None:
    meta = reference_from_record(FIRST_RECORDS["logic_puzzle"]).meta
    assert meta["derived_num_select"] == 3 and meta["derived_start"] == [0, 1]
    meta = reference_from_record(FIRST_RECORDS["logical_equation"]).meta
    assert meta["derived_numbers"] == [1, 3, 4, 9, 16, 27, 36, 80, 121]
    assert meta["derived_equations"][0] == "A - C = -44" and len(meta["derived_equations"]) == 7


def test_reference_errors_name_the_record_and_field() -> None:
    record = dict(FIRST_RECORDS["game24"])
    with pytest.raises(ValueError, match=r"game24/rank_1.*'task'"):
        reference_from_record({**record, "task": ""})
    with pytest.raises(ValueError, match=r"no verifier for task 'nonesuch'"):
        reference_from_record({**record, "task": "nonesuch"})
    with pytest.raises(ValueError, match=r"'meta' must be an object"):
        reference_from_record({**record, "meta": [1]})
    puzzle = FIRST_RECORDS["logic_puzzle"]
    with pytest.raises(ValueError, match=r"logic_puzzle/sample_0: field 'question'"):
        reference_from_record({**puzzle, "question": None})
    with pytest.raises(ValueError, match=r"logic_puzzle/sample_0: question"):
        reference_from_record({**puzzle, "question": "Pick some cells."})
    equation = FIRST_RECORDS["logical_equation"]
    odd = equation["question"].replace("1. A - C = -44", "1. A ^ C = 2")
    with pytest.raises(ValueError, match=r"unknown equation 'A \^ C = 2'"):
        reference_from_record({**equation, "question": odd})


@pytest.mark.parametrize("task", ["logic_puzzle", "logical_equation"])
def test_reference_without_question_facts_is_a_loud_setup_error(task: str) -> None:
    record = FIRST_RECORDS[task]
    bare = Reference(task=f"symbench/{task}", answer=record["solution"], meta=record["meta"])
    with pytest.raises(ReferenceDataError, match=r"reference_from_record"):
        TASK_VERIFIERS[task]("0 1", bare)


def test_verifiers_are_in_the_shared_registry() -> None:
    for task, verifier in TASK_VERIFIERS.items():
        assert registry.get_verifier(f"symbench/{task}") is verifier


# --- never raise --------------------------------------------------------------------------------

ANSWER_TEXT = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="0123456789,;[]()<>*+-/. \n'\"xABCabcStepMovefrom:", max_size=200),
)


@settings(max_examples=40, deadline=None)
@given(text=ANSWER_TEXT)
def test_no_verifier_raises_on_arbitrary_text(text: str) -> None:
    for task, verifier in TASK_VERIFIERS.items():
        result = verifier(text, reference_from_record(FIRST_RECORDS[task]))
        assert result in (0.0, 1.0), (task, text)
