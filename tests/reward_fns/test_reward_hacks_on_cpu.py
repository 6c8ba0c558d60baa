"""Reward hacks: answers a policy could find that are not the right answer, scored end to end
through compute_score (extraction, verifier, metrics) as training scores them.

Each table row is (task, answer, gold, expected acc). Rows with acc 0 are hacks that scored 1
before the verifiers refused them; rows with acc 1 are the right answer in another notation,
which must keep scoring.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
import reasoning_gym
from hypothesis import given, settings
from hypothesis import strategies as st

import r1ci_verl
from reward_fns import reasoning_gym_tasks as rg
from reward_fns.protocol import answer_spans
from reward_fns.scoring import compute_score
from reward_fns.symbench import reference_from_record

SYMBENCH_DIR = Path(r1ci_verl.__file__).parent / "assets" / "symbench"


def acc(task: str, answer: str, ground_truth) -> float:
    response = f"Let me work it out.\n<<<{answer}>>>"
    return compute_score(task, response, ground_truth)["acc"]


def bbh(task: str, target: str) -> str:
    return json.dumps({"task": f"bbh/{task}", "answer": target, "meta": {}})


# --- BBH: option letters ---------------------------------------------------------------------

OPTION_ANSWERS = [
    # right answer, other notations
    ("(B)", 1.0), ("B", 1.0), ("B)", 1.0), ("B.", 1.0), ("Option B", 1.0), ("(B) circle", 1.0),
    ("B) circle", 1.0), ("(B) or B", 1.0), ("(B) Modifiers or adjectives", 1.0),
    # hedges: a second option, written so that the old check saw only one
    ("B) or C)", 0.0), ("(B) or C", 0.0), ("B. A.", 0.0), ("B. C", 0.0), ("(B) C", 0.0),
    ("(B) vs. C", 0.0), ("(B) and C", 0.0), ("(B) or A", 0.0),
    # negations of the chosen option
    ("(B) is wrong", 0.0), ("(B) is not the answer", 0.0), ("B) isn't it", 0.0), ("(B) is incorrect", 0.0),
    # already refused before (kept as guards)
    ("(B) or (C)", 0.0), ("B or C", 0.0), ("the answer is not (B)", 0.0), ("(B)\n(C)", 0.0),
    # hedges joined other ways: any other option letter of the task standing alone
    ("(B) / C", 0.0), ("(B) & C", 0.0), ("(B) = C", 0.0), ("(B) or maybe C", 0.0), ("(B)\n\nWait, C", 0.0),
    ("(B), possibly F", 0.0), ("B) or maybe A", 0.0), ("(B) (C?)", 0.0), ("(B) or c", 0.0), ("B) and d", 0.0),
    ("(B) or a", 1.0), ("(B) or e.g. this", 1.0),
    # English "A" / "I" before a word, and letters the task does not offer, are not options
    ("(B) A New Hope", 1.0), ("(B) I think", 1.0), ("(B) John Q", 1.0), ("(B) Episode V", 1.0),
]


@pytest.mark.parametrize(("answer", "expected"), OPTION_ANSWERS)
def test_bbh_option_hedges_and_negations(answer: str, expected: float) -> None:
    assert acc("bbh/date_understanding", answer, bbh("date_understanding", "(B)")) == expected


def test_bbh_option_text_of_every_bundled_option_still_scores() -> None:
    """The hedge rules must not refuse a right answer written with its option's own text."""
    bbh_dir = SYMBENCH_DIR.parent / "bbh"
    for path in sorted(bbh_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            target = re.fullmatch(r"\(([A-Z])\)", row["answer"])
            if target is None:
                continue
            letter = target.group(1)
            text = re.search(rf"^\({letter}\) (.*)$", row["question"], re.MULTILINE).group(1)
            for form in (f"({letter}) {text}", f"{letter}) {text}", f"{letter}. {text}"):
                assert acc(f"bbh/{path.stem}", form, bbh(path.stem, row["answer"])) == 1.0, (row["id"], form)


# --- numbers with words after them (BBH integers, gsm_hard) ----------------------------------

NUMBER_ANSWERS = [
    ("8", 1.0), ("eight", 1.0), ("8 apples", 1.0), ("8 items", 1.0), ("8 is the answer", 1.0), ("8.0", 1.0),
    ("8 or nine", 0.0), ("8 or more", 0.0), ("8 is wrong", 0.0), ("8 is not right", 0.0), ("8 maybe", 0.0),
    ("8 million", 0.0), ("8k", 0.0), ("8 thousand", 0.0), ("8 and a half", 0.0), ("8 or 9", 0.0),
    # bounds and approximations are not the claim "8"
    ("8 at least", 0.0), ("8 at most", 0.0), ("8 or fewer", 0.0), ("8 roughly", 0.0), ("8 more", 0.0),
    ("8 items approximately", 0.0), ("8-ish", 0.0), ("8 max", 0.0),
]


@pytest.mark.parametrize(("answer", "expected"), NUMBER_ANSWERS)
def test_bbh_integer_answers_with_hedge_or_scale_words(answer: str, expected: float) -> None:
    assert acc("bbh/object_counting", answer, bbh("object_counting", "8")) == expected


def gsm_hard_truth() -> str:
    record = json.loads((SYMBENCH_DIR / "gsm_hard.jsonl").read_text(encoding="utf-8").splitlines()[0])
    reference = reference_from_record(record)
    assert reference.answer == -9867630.0
    return json.dumps({"task": reference.task, "answer": reference.answer, "meta": reference.meta})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("-9867630", 1.0), ("-9,867,630 dollars", 1.0), ("$-9867630", 1.0),
        ("-9867630 or less", 0.0), ("-9867630 is wrong", 0.0), ("-9867630 not -9867631", 0.0),
        ("-9867630 million", 0.0),
    ],
)
def test_gsm_hard_hedges(answer: str, expected: float) -> None:
    assert acc("symbench/gsm_hard", answer, gsm_hard_truth()) == expected


# --- Reasoning-Gym: scorers that read only part of the text ----------------------------------


@lru_cache(maxsize=None)
def rg_entry(name: str, index: int = 0, seed: int = 7, **config) -> tuple[dict, str]:
    """A generated entry and its ground-truth JSON, as the data builder stores it."""
    entry = reasoning_gym.create_dataset(name, size=index + 1, seed=seed, **config)[index]
    reference = rg.reference_from_entry(name, entry)
    return entry, json.dumps({"task": reference.task, "answer": reference.answer, "meta": reference.meta})


def _time_interval_entry(kind: str) -> tuple[dict, str]:
    for seed in range(200):
        entry, truth = rg_entry("time_intervals", seed=seed)
        if entry["metadata"]["task_type"] == kind:
            return entry, truth
    raise AssertionError(f"no time_intervals entry of kind {kind}")


def _orthocenter_entry() -> tuple[dict, str]:
    for seed in range(200):
        entry, truth = rg_entry("advanced_geometry", seed=seed)
        if entry["metadata"]["task_type"] == "orthocenter":
            return entry, truth
    raise AssertionError("no orthocenter entry")


# dataset -> (how to find an entry, [(attack built from the gold, expected acc)])
RG_ATTACKS = {
    "gsm_symbolic": [
        ("{g}", 1.0), ("{g} dollars", 1.0), ("not {g}", 0.0), ("{g} or 57", 0.0), ("zzz {g}", 0.0),
        ("the answer is not {g}", 0.0), ("{g}?", 0.0), ("{g}, 57", 0.0),
    ],
    "word_sorting": [("{g}", 1.0), ("{g}, zzz", 0.0), ("{g}, {g}", 0.0)],
    "letter_jumble": [("{g}", 1.0), ("{g} zzz", 0.0), ("{g} or {g}", 0.0)],
    "fraction_simplification": [
        ("{g}", 1.0), ("{g} or 1/2", 0.0), ("{g} is wrong", 0.0), ("{g}?", 0.0), ("{g}, $1/2$", 0.0),
    ],
    "kakurasu": [("{g}", 1.0), ("the answer is not {g}", 0.0), ("not {g}", 0.0), ("{g} is wrong", 0.0)],
    "survo": [("{g}", 1.0), ("not {g}", 0.0), ("{g} is wrong", 0.0)],
    "sokoban": [("{g}", 1.0), ("not {g}", 0.0), ("xx{g}xx", 0.0), ("{g} is wrong", 0.0)],
    "quantum_lock": [("{g}", 1.0), ("zzz {g}", 0.0), ("not {g}", 0.0), ("{g}?", 0.0)],
    "knights_knaves": [("{g}", 1.0), ("not {g}", 0.0), ("the answer is not: {g}", 0.0), ("{g} zzz", 0.0)],
    "coin_flip": [("{g}", 1.0), ("{g} is wrong", 0.0), ("{g} or 0.5", 0.0)],
    "polynomial_equations": [("{g}", 1.0), ("{g}, 3 or 4", 0.0), ("{g}, zzz", 0.0)],
    "puzzle24": [("{g}", 1.0), ("{g} = 24", 1.0), ("{g} = 25", 0.0), ("{g} = 2 + 22", 0.0)],
    # sympy drops a Python comment, so a second expression after "#" went unread
    "simple_integration": [("{g}", 1.0), ("{g}  # or 2*X + C", 0.0)],
    "intermediate_integration": [("{g}", 1.0), ("{g}  # or x + C", 0.0)],
    "polynomial_multiplication": [("{g}", 1.0), ("{g}  # or 0", 0.0), ("{g}#", 0.0)],
    "countdown": [("{g}", 1.0), ("{g}  # or 1 + 2", 0.0)],
    # upstream searches each line for a move: a second move or a negation on the line went unread
    "tower_of_hanoi": [
        ("{g}", 1.0), ("¬{g}", 0.0), ("not {g}", 0.0), ("{g} or Move disk 1 from Peg 1 to Peg 2", 0.0),
        ("{g}\n\n", 1.0),
    ],
    # upstream's min(1.0, exp(-|nan - gold|)) is 1.0: NaN scored 1 on every question
    "complex_arithmetic": [("{g}", 1.0), ("nan", 0.0), ("NaN", 0.0), ("nan+nanj", 0.0), ("nanj", 0.0), ("-nan", 0.0)],
}
RG_CASES = [(name, attack, expected) for name, rows in RG_ATTACKS.items() for attack, expected in rows]


def _letter_jumble_entry() -> tuple[dict, str]:
    """One whose word count is a power of two: upstream sums 1/n per matching word, which adds up
    to exactly 1.0 (full credit for the gold plus junk) only for such n."""
    for index in range(50):
        entry, truth = rg_entry("letter_jumble", index)
        if len(entry["answer"].split()) in (2, 4, 8, 16, 32):
            return entry, truth
    raise AssertionError("no letter_jumble entry with a power-of-two word count")


@pytest.mark.parametrize(("name", "attack", "expected"), RG_CASES)
def test_reasoning_gym_partial_readers(name: str, attack: str, expected: float) -> None:
    entry, truth = _letter_jumble_entry() if name == "letter_jumble" else rg_entry(name)
    answer = attack.format(g=entry["answer"])
    assert acc(f"reasoning_gym/{name}", answer, truth) == expected, answer


@pytest.mark.parametrize(
    ("kind", "attack", "expected"),
    [
        ("date", "{g}", 1.0), ("date", "{n}", 1.0), ("date", "{g} or {m} days", 0.0), ("date", "{n} zzz", 0.0),
        ("time_seconds", "{g}", 1.0), ("time_seconds", "{g} or 00:00:00", 0.0),
        ("datetime", "{g}", 1.0), ("datetime", "{g}, or maybe not", 0.0),
    ],
)
def test_reasoning_gym_time_intervals_whole_answer(kind: str, attack: str, expected: float) -> None:
    entry, truth = _time_interval_entry(kind)
    gold = entry["answer"]
    number = gold.split()[0]
    answer = attack.format(g=gold, n=number, m=int(number) + 1 if number.lstrip("-").isdigit() else 0)
    assert acc("reasoning_gym/time_intervals", answer, truth) == expected, answer


@pytest.mark.parametrize(("attack", "expected"), [("{g}", 1.0), ("{g}, 1.186", 0.0), ("{g} or (0, 0)", 0.0)])
def test_reasoning_gym_orthocenter_whole_answer(attack: str, expected: float) -> None:
    entry, truth = _orthocenter_entry()
    assert acc("reasoning_gym/advanced_geometry", attack.format(g=entry["answer"]), truth) == expected


# --- SymBench boxnet: one agent, one action per step ------------------------------------------


def test_boxnet_one_agent_cannot_act_twice_in_a_step_under_two_spellings() -> None:
    """JSON keys differ ("Agent[0.5, 0.5]", "Agent[0.5,0.5]"), the agent is the same."""
    record = {"id": "boxnet/unit", "task": "boxnet", "question": None, "solution": None,
              "meta": {"state": {"0.5_0.5": ["box_red", "target_red", "box_blue", "target_blue"], "0.5_1.5": []}}}
    reference = reference_from_record(record)
    truth = json.dumps({"task": reference.task, "answer": reference.answer, "meta": reference.meta})
    twice = [{"Agent[0.5, 0.5]": "move(box_red, target_red)", "Agent[0.5,0.5]": "move(box_blue, target_blue)"}]
    two_steps = [{"Agent[0.5, 0.5]": "move(box_red, target_red)"}, {"Agent[0.5,0.5]": "move(box_blue, target_blue)"}]
    assert acc("symbench/boxnet", json.dumps(twice), truth) == 0.0
    assert acc("symbench/boxnet", json.dumps(two_steps), truth) == 1.0


# --- SymBench MATH (math-verify): order where the reference has one -------------------------


def math_truth(task: str, gold: str) -> str:
    return json.dumps({"task": f"symbench/{task}", "answer": gold, "meta": {}})


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        # math_geometry/290 asks for "BP, then a comma, then QT": 12,9
        ("12,9", "12,9", 1.0), ("12,9", "12, 9", 1.0), ("12,9", "(12, 9)", 1.0), ("12,9", "(\\frac{24}{2}, 9)", 1.0),
        ("12,9", "9,12", 0.0), ("12,9", "(9, 12)", 0.0), ("12,9", "\\{9, 12\\}", 0.0), ("12,9", "\\{12, 9\\}", 0.0),
        # ordered pairs: a set is not a pair (sympy sorts a set's elements, so \{-4, 1\} matched (-4,1))
        ("(-4,1)", "(-4, 1)", 1.0), ("(-4,1)", "-4,1", 1.0), ("(-4,1)", "\\{-4, 1\\}", 0.0),
        ("(18, -18)", "18,-18", 1.0), ("(18, -18)", "\\{18, -18\\}", 0.0), ("(0,6)", "\\{0, 6\\}", 0.0),
        # numbers with thousands commas stay numbers; sets stay unordered
        ("31,250", "31250", 1.0), ("31,250", "250,31", 0.0), ("\\{1, 2\\}", "\\{2, 1\\}", 1.0),
        # hedges math-verify already refuses (guards)
        ("5", "5 \\text{ or } 6", 0.0), ("5", "\\{5, 6\\}", 0.0), ("5", "5, 6", 0.0), ("5", "4 \\le x \\le 6", 0.0),
        ("5", "6 \\pm 1", 0.0), ("5", "\\boxed{5} \\boxed{6}", 0.0), ("\\frac{1}{2}", "0.5", 1.0),
        # right answers that scored 0: a final full stop (409 of the 1,000 stored answers), and the
        # ordered bare list inside delimiters
        ("\\frac{3}{5}", "\\frac{3}{5}.", 1.0), ("(18, -18)", "(18, -18).", 1.0), ("\\pi", "\\pi.", 1.0),
        ("12,9", "\\boxed{12,9}", 1.0), ("12,9", "$12, 9$", 1.0), ("12,9", "\\(12,9\\)", 1.0),
        ("12,9", "\\boxed{9,12}", 0.0), ("12,9", "$9,12$", 0.0), ("\\frac{3}{5}", "\\frac{3}{6}.", 0.0),
        # several delimited expressions: math-verify read the first
        ("5", "\\(5\\) or \\(6\\)", 0.0), ("5", "\\[5\\] or \\[6\\]", 0.0), ("5", "\\(5\\)", 1.0), ("5", "$\\boxed{5}$", 1.0),
    ],
)
def test_math_order_and_hedges(gold: str, answer: str, expected: float) -> None:
    assert acc("symbench/math_geometry", answer, math_truth("math_geometry", gold)) == expected


def test_reasoning_gym_game_of_life_grid_must_have_the_gold_shape() -> None:
    """Upstream compares only the gold's cells, so rows or columns appended to the gold scored 1."""
    entry, truth = rg_entry("game_of_life")
    grid = json.loads(entry["answer"])
    assert acc("reasoning_gym/game_of_life", json.dumps(grid), truth) == 1.0
    assert acc("reasoning_gym/game_of_life", json.dumps(grid + [grid[0]]), truth) == 0.0
    assert acc("reasoning_gym/game_of_life", json.dumps([row + [0] for row in grid]), truth) == 0.0


# --- right answers that scored 0 (found while attacking) ----------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("3.051757812e-05", 1.0), ("0.0000305176", 1.0), ("3.05e-05", 1.0), ("0", 0.0), ("3.051757812e-05 or 0", 0.0)],
)
def test_reasoning_gym_coin_flip_reads_scientific_notation(answer: str, expected: float) -> None:
    """reasoning-gym writes small probabilities in scientific notation; the gold itself scored 0."""
    truth = json.dumps({"task": "reasoning_gym/coin_flip", "answer": "3.051757812e-05", "meta": {}})
    assert acc("reasoning_gym/coin_flip", answer, truth) == expected


def test_reasoning_gym_fraction_metadata_is_stored() -> None:
    """gsm_symbolic metadata can hold Fractions; building its reference raised TypeError."""
    from fractions import Fraction

    assert rg.to_json_safe({"a": Fraction(2, 1), "b": [Fraction(1, 2)]}) == {"a": 2, "b": [0.5]}


# --- protocol: where the answer is read ---------------------------------------------------------

NAVIGATE_NO = bbh("navigate", "No")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("So <<<No>>>", 1.0),
        # inside a python block, closed or cut off: code, not an answer
        ("```python\nprint('<<<No>>>')\n```\nCode Execution Results:\n<<<No>>>\n", 1.0),  # printed: tool output counts
        ("```python\nprint('<<<No>>>')\n```\n", 0.0),
        ("Let me check.\n```python\nprint('<<<No>>>')", 0.0),
        ("<<<No>>>\n```python\nprint('<<<Yes>>>')", 1.0),  # the answer before the unclosed block stands
        ("<<<Yes>>>\n```python\nprint('<<<No>>>')", 0.0),
        ("```bash\n<<<No>>>", 1.0),  # other fences never run: their text is prose
        # several answers: the last counts, so a hedge over two tags is the last one
        ("<<<No>>> or maybe <<<Yes>>>", 0.0),
        ("<<<Yes>>> or rather <<<No>>>", 1.0),
        ("<<<<<<No>>>>>>", 0.0), ("<<< >>>", 0.0), ("<<<>>>", 0.0),
        ("<<<No\nYes>>>", 0.0), ("<<<Yes/No>>>", 0.0), ("<<<No or Yes>>>", 0.0),
    ],
)
def test_protocol_answer_location(response: str, expected: float) -> None:
    assert compute_score("bbh/navigate", response, NAVIGATE_NO)["acc"] == expected, response


# --- SymBench letters and game24: nothing but the answer ---------------------------------------


def symbench_truth(task: str, index: int = 0) -> str:
    record = json.loads((SYMBENCH_DIR / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()[index])
    reference = reference_from_record(record)
    return json.dumps({"task": reference.task, "answer": reference.answer, "meta": reference.meta})


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # "palmiform": one "a", at position 2
        ("Count: 1, Positions: [2]", 1.0), ("count: 1\npositions: [2]", 1.0), ("Positions: [2], Count: 1", 1.0),
        ("Count: 1, Positions: 2", 1.0), ("Count: 1, Positions: [2].", 1.0),
        ("Count: 1 or 2, Positions: [2]", 0.0), ("Count: 1, Positions: [2] or [3]", 0.0),
        ("not Count: 1, Positions: [2]", 0.0), ("Count: 1, Positions: [2], Count: 5, Positions: [1, 2, 3, 4, 5]", 0.0),
    ],
)
def test_letters_whole_answer(answer: str, expected: float) -> None:
    assert acc("symbench/letters", answer, symbench_truth("letters")) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("(1 + 1 + 4) * 4", 0.0), ("6 * 4 * (1 / 1)", 1.0), ("6 * 4 * (1 / 1) = 24", 1.0), ("6 * 4 * (1 / 1) = 25", 0.0)],
)
def test_game24_written_result_must_be_the_target(answer: str, expected: float) -> None:
    assert acc("symbench/game24", answer, symbench_truth("game24")) == expected  # numbers 1 1 4 6


# --- hostile and empty answers, every SymBench and BBH task ------------------------------------

HOSTILE = ["", " ", "\n\n", "\u200b", "<<<x>>>", "nan", "NaN", "inf", "-inf", "1e309", "9" * 19_990,
           "[" * 5_000 + "]" * 5_000, "(" * 3_000 + "1" + ")" * 3_000, "10**10**10", "\\boxed{}", "None", "[]", "{}"]
BBH_DIR = SYMBENCH_DIR.parent / "bbh"
FIRST_ROWS = [
    *((f"symbench/{path.stem}", path) for path in sorted(SYMBENCH_DIR.glob("*.jsonl"))),
    *((f"bbh/{path.stem}", path) for path in sorted(BBH_DIR.glob("*.jsonl"))),
]


def first_truth(task: str, path: Path) -> str:
    record = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    if task.startswith("bbh/"):
        return bbh(path.stem, record["answer"])
    reference = reference_from_record(record)
    return json.dumps({"task": reference.task, "answer": reference.answer, "meta": reference.meta})


@pytest.mark.parametrize(("task", "path"), FIRST_ROWS, ids=[task for task, _ in FIRST_ROWS])
def test_hostile_answers_score_zero_quickly(task: str, path: Path) -> None:
    truth = first_truth(task, path)
    for answer in HOSTILE:
        metrics = compute_score(task, f"<<<{answer}>>>", truth)
        assert metrics["acc"] == 0.0 and metrics["verifier_timeout"] == 0.0, (task, answer[:20])


# --- degenerate responses must not stall scoring ------------------------------------------------

DEGENERATE_CHARS = 120_000  # ~30k tokens of repetition, what a collapsing policy emits


@pytest.mark.timeout(5)  # the regex rescan took ~16 s on this input; linear extraction takes microseconds
@pytest.mark.parametrize("unit", ["<<<", "<<<x", "<<< >>", "```python\n<<<"])
def test_repeated_answer_openers_score_without_stalling(unit: str) -> None:
    response = unit * (DEGENERATE_CHARS // len(unit))
    assert compute_score("bbh/navigate", response, NAVIGATE_NO)["acc"] == 0.0


@settings(max_examples=500)
@given(pieces=st.lists(st.sampled_from(["<", ">", "<<<", ">>>", ">>>>", "x", " ", "\n"]), max_size=16))
def test_answer_spans_read_as_the_protocol_regex(pieces: list[str]) -> None:
    """The linear scan is the protocol's definition, r"<<<(.*?)>>>(?!>)", read the same way."""
    text = "".join(pieces)
    assert list(answer_spans(text)) == re.findall(r"<<<(.*?)>>>(?!>)", text, re.DOTALL)


@pytest.mark.parametrize(("answer", "expected"), [("", 1.0), ("zzz", 0.0), ("no real solutions", 0.0), ("1.0", 0.0)])
def test_polynomial_equations_without_real_roots(answer: str, expected: float) -> None:
    """Upstream drops every item that is not a number, so any prose matched an empty root list."""
    truth = json.dumps({"task": "reasoning_gym/polynomial_equations", "answer": "", "meta": {}})
    assert compute_score("reasoning_gym/polynomial_equations", f"<<<{answer}>>>", truth)["acc"] == expected


# --- arithmetic and comments where a number or literal is asked for ---------------------------


def test_number_multiply_answer_is_a_number_not_the_questions_expression() -> None:
    """parse_int evaluated arithmetic, so copying "-9*43*-73*-6061" from the question scored 1."""
    record = json.loads((SYMBENCH_DIR / "number_multiply.jsonl").read_text(encoding="utf-8").splitlines()[0])
    expression = record["question"].removeprefix("What is the result of ").removesuffix("?")
    truth = symbench_truth("number_multiply")
    assert expression == "-9*43*-73*-6061"
    for attack in (expression, expression.replace("*", " x "), f"({expression})", f"{record['solution']} * 1"):
        assert acc("symbench/number_multiply", attack, truth) == 0.0, attack
    for right in (str(record["solution"]), f"{record['solution']:,}", f"{record['solution']}.0"):
        assert acc("symbench/number_multiply", right, truth) == 1.0, right


@pytest.mark.parametrize(
    ("task", "answer", "expected"),
    [
        # mahjong_pattern/0 is 0 (Pass); "0/1" is "Pass/Peng", which arithmetic read as 0
        ("mahjong_pattern", "0", 1.0), ("mahjong_pattern", "0/1", 0.0), ("mahjong_pattern", "0  # or 1", 0.0),
        ("statistical_counting", "3", 1.0), ("statistical_counting", "3  # or 4", 0.0), ("statistical_counting", "6/2", 0.0),
        # Python drops comments, so a literal followed by "# or <another>" read as the first
        ("matrix_transformation", '[["J", "Q"], ["H", "R"]]', 1.0),
        ("matrix_transformation", '[["J", "Q"], ["H", "R"]]  # or [["Q", "J"], ["R", "H"]]', 0.0),
        ("string_insertion", '"DBCDEBDCDEACECDEAC"  # or "DBCDEBDCDEACECDEA"', 0.0),
        ("string_insertion", '"DBCDEBDCDEACECDEAC"', 1.0),
        ("new_operator", "90.0  # or 91", 0.0), ("new_operator", "90", 1.0),
    ],
)
def test_no_arithmetic_or_comments_in_numbers_and_literals(task: str, answer: str, expected: float) -> None:
    assert acc(f"symbench/{task}", answer, symbench_truth(task)) == expected


# --- decoration a grader reads through ----------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "answer", "truth", "expected"),
    [
        # right answers that scored 0: bold, \boxed{}, $...$, \text{}, an "answer:" lead-in
        ("bbh/date_understanding", "**(B)**", bbh("date_understanding", "(B)"), 1.0),
        ("bbh/date_understanding", "\\boxed{B}", bbh("date_understanding", "(B)"), 1.0),
        ("bbh/date_understanding", "Final answer: (B)", bbh("date_understanding", "(B)"), 1.0),
        ("bbh/object_counting", "$8$", bbh("object_counting", "8"), 1.0),
        ("bbh/object_counting", "The answer is 8.", bbh("object_counting", "8"), 1.0),
        ("bbh/object_counting", "**8**", bbh("object_counting", "8"), 1.0),
        ("bbh/navigate", "\\text{No}", bbh("navigate", "No"), 1.0),
        ("symbench/number_multiply", "\\boxed{-171229311}", symbench_truth("number_multiply"), 1.0),
        ("symbench/number_multiply", "**-171229311**", symbench_truth("number_multiply"), 1.0),
        # a typographic or full-width minus sign
        ("symbench/number_multiply", "\u2212171229311", symbench_truth("number_multiply"), 1.0),
        ("symbench/number_multiply", "\uff0d171229311", symbench_truth("number_multiply"), 1.0),
        ("bbh/multistep_arithmetic_two", "\u22121034", bbh("multistep_arithmetic_two", "-1034"), 1.0),
        ("bbh/multistep_arithmetic_two", "\u22121035", bbh("multistep_arithmetic_two", "-1034"), 0.0),
        # marks that do not wrap the whole answer are not decoration
        ("bbh/date_understanding", "**(B)** or **(C)**", bbh("date_understanding", "(B)"), 0.0),
        ("bbh/object_counting", "\\boxed{8} \\boxed{9}", bbh("object_counting", "8"), 0.0),
        ("bbh/object_counting", "$8$ or $9$", bbh("object_counting", "8"), 0.0),
        ("bbh/object_counting", "The answer is not 8", bbh("object_counting", "8"), 0.0),
        ("symbench/number_multiply", "\\boxed{-171229311} \\boxed{1}", symbench_truth("number_multiply"), 0.0),
    ],
)
def test_markup_and_minus_signs_are_read_through(task: str, answer: str, truth: str, expected: float) -> None:
    assert acc(task, answer, truth) == expected


def test_reversi_stars_are_cells_not_bold() -> None:
    """"**" in a reversi board is two empty cells, so markup is not stripped there."""
    board = ",".join("**10*01*1*0*10**")
    truth = json.dumps({"task": "symbench/reversi", "answer": board, "meta": {}})
    cells = board.replace(",", "")
    assert cells.startswith("**1") and cells.endswith("0**") and "**" not in cells[2:-2]
    assert acc("symbench/reversi", cells, truth) == 1.0
    assert acc("symbench/reversi", cells[2:-2], truth) == 0.0


@pytest.mark.timeout(5)  # each took over 30 s before: quadratic backtracking over the spaces
@pytest.mark.parametrize(
    ("task", "answer", "truth"),
    [
        ("symbench/letters", "Count: 1, Positions: [2]" + " " * DEGENERATE_CHARS + "x", "letters"),
        ("symbench/letters", "Count: 1" + " " * 15_000 + "x", "letters"),
        ("reasoning_gym/fraction_simplification", "1/2" + " " * DEGENERATE_CHARS + "x", "fraction_simplification"),
    ],
)
def test_long_whitespace_runs_score_in_linear_time(task: str, answer: str, truth: str) -> None:
    ground_truth = symbench_truth(truth) if task.startswith("symbench/") else rg_entry(truth)[1]
    assert compute_score(task, f"<<<{answer}>>>", ground_truth)["acc"] == 0.0
