"""SymBench verifiers against the bundled data: every stored answer, written the ways a model
writes it and passed through `extract_answer`, scores 1; systematic perturbations score 0.

Tasks without a stored answer (and logic_puzzle, whose stored answers are not trusted) are
covered by solvers in test_symbench_solved_answers_on_cpu.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import r1ci_verl
from reward_fns.protocol import extract_answer
from reward_fns.symbench import TASK_VERIFIERS, reference_from_record
from reward_fns.symbench.exact import synthesis_decomposition_fields
from reward_fns.symbench.puzzles import book_constraints, parse_equation

DATA_DIR = Path(r1ci_verl.__file__).parent / "assets" / "symbench"


def load_records(task: str) -> list[dict]:
    with open(DATA_DIR / f"{task}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


RECORDS = {path.stem: load_records(path.stem) for path in sorted(DATA_DIR.glob("*.jsonl"))}


def as_model_writes(answer: str) -> str:
    """Wrap an answer the way a model ends a response, then extract it like compute_score does."""
    response = f"Let me check the result.\n```python\nprint('<<<decoy>>>')\n```\nCode Execution Results:\ndone\n\nSo the final answer is <<<{answer}>>>"
    extracted = extract_answer(response)
    assert extracted is not None
    return extracted


def score(task: str, answer: str, record: dict) -> float:
    return TASK_VERIFIERS[task](as_model_writes(answer), reference_from_record(record))


def flat(rows):
    return [c for row in rows for c in row]


def csv(values, sep=","):
    return sep.join(str(v) for v in values)


# --- gold renderings: task -> fn(record, style) -> answer text --------------------------------


def _new_operator(r, style):
    value = float(r["solution"])
    if style == 1 and not value.is_integer():
        return f"{value:.4f}"  # correctly rounded
    if style == 2 and value.is_integer():
        return str(int(value))
    return repr(value)


def _pooling(r, style):
    rows = r["solution"]
    if style == 1:
        return json.dumps(rows)
    if style == 2:
        return csv(f"{v:.2f}" for v in flat(rows))
    return csv(flat(rows))


GOLD = {
    "2048": lambda r, s: [
        r["solution"],
        json.dumps([[int(c) for c in row.split(",")] for row in r["solution"].split("\n")]),
        f"\n{r['solution']}\n",
    ][s],
    "cryptanalysis": lambda r, s: [
        f" {json.dumps(r['solution'])} ",
        csv(r["solution"], ", "),
        csv(r["solution"]),
    ][s],
    "light_puzzles": lambda r, s: [csv(r["solution"]), json.dumps(r["solution"]), csv(r["solution"], ", ")][
        s
    ],
    "mahjong_pattern": lambda r, s: [str(r["solution"]), f" {r['solution']} ", f"[{r['solution']}]"][s],
    "matrix_transformation": lambda r, s: [
        r["meta"]["formatted_solution"],
        json.dumps(r["solution"]),
        "\n".join(csv(row) for row in r["solution"]),
    ][s],
    "new_operator": _new_operator,
    "number_multiply": lambda r, s: [str(r["solution"]), f"{r['solution']:,}", f" {r['solution']}\n"][s],
    "pattern_recognition": lambda r, s: [
        json.dumps(r["solution"]),
        csv(r["solution"], ", "),
        f"({r['solution'][0]}, {r['solution'][1]})",
    ][s],
    "pooling": _pooling,
    "reversi": lambda r, s: [
        r["solution"],
        "\n".join(
            r["solution"].replace(",", "")[i : i + r["meta"]["board_size"]]
            for i in range(0, len(r["solution"].replace(",", "")), r["meta"]["board_size"])
        ),
        json.dumps(r["solution"].split(",")),
    ][s],
    "statistical_counting": lambda r, s: [str(r["solution"]), f" {r['solution']} ", f"{r['solution']}.0"][s],
    "string_deletion_and_modification": lambda r, s: [
        f' "{r["solution"]}" ',
        r["solution"],
        f"'{r['solution']}'",
    ][s],
    "string_insertion": lambda r, s: [r["solution"], f' "{r["solution"]}" ', f"\n{r['solution']}\n"][s],
    "string_splitting": lambda r, s: [
        json.dumps(r["solution"]),
        json.dumps([int(v) for v in r["solution"]]),
        csv(r["solution"], ", "),
    ][s],
    "string_synthesis": lambda r, s: [
        r["meta"]["solution_string"][3:-3],
        json.dumps(r["solution"]),
        csv(r["solution"], ", "),
    ][s],
    "synthesis_decomposition": lambda r, s: json.dumps(
        [int(r["solution"]["answer"][i]) for i in synthesis_decomposition_fields(r["meta"]["complexity"])]
    ),
    "combinatorial_calculation": lambda r, s: [
        "[" + ", ".join(r["solution"]) + "]",
        json.dumps(r["solution"]),
        "".join(r["solution"]),
    ][s],
    "constrained_linear_arrangement": lambda r, s: [
        csv(r["solution"]),
        json.dumps(r["solution"]),
        csv(r["solution"], ", "),
    ][s],
    "eight_queens": lambda r, s: [
        ", ".join(f"{a} {b}" for a, b in r["solution"]),
        json.dumps(r["solution"]),
        ", ".join(f"({a},{b})" for a, b in r["solution"]),
    ][s],
    "letter_logic_diagram": lambda r, s: [
        "\n" + "\n".join(csv(row) for row in r["solution"]) + "\n",
        json.dumps(r["solution"]),
        "\n".join(csv(row, ", ") for row in r["solution"]),
    ][s],
    "logical_equation": lambda r, s: [json.dumps(r["solution"]), csv(r["solution"], ", ")][s % 2],
    "permutations_and_combinations": lambda r, s: [
        json.dumps(r["solution"]),
        csv(r["solution"], ", "),
        csv(r["solution"]).lower(),
    ][s],
    "sudoku": lambda r, s: [
        json.dumps(r["solution"]),
        "\n".join(csv(row) for row in r["solution"]),
        csv(flat(r["solution"])),
    ][s],
}
STYLES = 3

STORED_ANSWER_TASKS = sorted(GOLD)
STORED_CASES = [
    pytest.param(task, record, i % STYLES, id=record["id"])
    for task in STORED_ANSWER_TASKS
    for i, record in enumerate(RECORDS[task])
]


@pytest.mark.parametrize(("task", "record", "style"), STORED_CASES)
def test_stored_answer_scores_one(task: str, record: dict, style: int) -> None:
    answer = GOLD[task](record, style)
    assert score(task, answer, record) == 1.0, answer


def test_every_bundled_task_has_a_verifier() -> None:
    assert len(RECORDS) == 33
    assert set(RECORDS) <= set(TASK_VERIFIERS)


# --- perturbations: task -> fn(record) -> list of wrong answers --------------------------------


def _bump_first(values):
    values = list(values)
    values[0] = str(int(values[0]) + 1)
    return values


def _swap_in_row(grid, given=None):
    """Swap two different cells of one row that are not givens: rows stay valid, columns break."""
    for r, row in enumerate(grid):
        free = [c for c in range(len(row)) if given is None or not given[r][c]]
        for a in free:
            for b in free:
                if a < b and row[a] != row[b]:
                    swapped = [list(x) for x in grid]
                    swapped[r][a], swapped[r][b] = row[b], row[a]
                    return swapped
    raise AssertionError("no swappable cells")


def _reversi_flip(solution: str) -> str:
    cells = solution.split(",")
    i = next(i for i, c in enumerate(cells) if c in "01")
    cells[i] = "1" if cells[i] == "0" else "0"
    return ",".join(cells)


def _combinatorial_wrong(r):
    tokens = r["solution"]
    numbers = [t for t in tokens if t.isdigit()]
    wrong = ["[" + ", ".join(tokens[:-2]) + "]"]  # a number left out
    if len(set(numbers)) > 1:  # same expression with the numbers reordered
        order = iter(sorted(numbers, reverse=numbers != sorted(numbers, reverse=True)))
        wrong.append("".join(next(order) if t.isdigit() else t for t in tokens))
    wrong.append("".join(tokens) + "+1-1*1")  # extra numbers
    wrong.append("-(" + "".join(tokens) + ")")  # unary minus is not allowed
    return wrong


def _logic_equation_wrong(r):
    values = list(r["solution"])
    missing = values[:-1]
    duplicated = [values[0]] + values[1:-1] + [values[0]]
    swapped = [values[1], values[0]] + values[2:]
    return [json.dumps(missing), json.dumps(duplicated), json.dumps(swapped)]


def _permutation_wrong(r):
    order = list(r["solution"])
    return [json.dumps(order[:-1]), json.dumps(order[:-1] + [order[0]]), json.dumps(order + ["Z"])]


WRONG = {
    "2048": lambda r: [
        r["solution"].replace("\n", "\n0, ", 1),
        ", ".join(_bump_first(r["solution"].replace("\n", ",").split(","))),
    ],
    "cryptanalysis": lambda r: [
        json.dumps(r["solution"][::-1]) if r["solution"][::-1] != r["solution"] else "[]",
        json.dumps(r["solution"][:3]),
        json.dumps(_bump_first(r["solution"])),
    ],
    "light_puzzles": lambda r: [csv([1 - r["solution"][0]] + r["solution"][1:]), csv(r["solution"][:-1])],
    "mahjong_pattern": lambda r: [str((r["solution"] + 1) % 3), "Peng"],
    "matrix_transformation": lambda r: [
        csv(flat(r["meta"]["matrix"])) if r["meta"]["matrix"] != r["solution"] else "X",
        csv(flat(r["solution"])[:-1]),
    ],
    "new_operator": lambda r: [
        str(float(r["solution"]) + 1),
        str(round(float(r["solution"]) * 1.01 + 0.01, 6)),
        f"{r['solution']} + 1",
    ],
    "number_multiply": lambda r: [str(r["solution"] + 1), str(-r["solution"]), str(r["solution"])[:-1]],
    "pattern_recognition": lambda r: [
        json.dumps([r["solution"][0] + 1, r["solution"][1]]),
        json.dumps(r["solution"][::-1]) if r["solution"][0] != r["solution"][1] else "[0]",
    ],
    "pooling": lambda r: [
        csv([flat(r["solution"])[0] + 1] + flat(r["solution"])[1:]),
        csv(flat(r["solution"])[:-1]),
    ],
    "reversi": lambda r: [
        _reversi_flip(r["solution"]),
        r["solution"] + ",*",
        r["solution"].replace("*", "2", 1),
    ],
    "statistical_counting": lambda r: [str(r["solution"] + 1), str(r["solution"] - 1)],
    "string_deletion_and_modification": lambda r: [
        r["solution"] + "a",
        r["solution"][:-1] or "z",
        f'"{r["solution"]}", "x"',
    ],
    "string_insertion": lambda r: [r["solution"] + "A", r["solution"][:-1], r["meta"]["original_string"]],
    "string_splitting": lambda r: [json.dumps(_bump_first(r["solution"])), json.dumps(r["solution"][:-1])],
    "string_synthesis": lambda r: [json.dumps(_bump_first(r["solution"])), json.dumps(r["solution"][:-1])],
    "synthesis_decomposition": lambda r: [
        json.dumps(r["solution"]["answer"]),
        json.dumps(_bump_first(r["solution"]["answer"][:2]) + r["solution"]["answer"][2:4]),
    ],
    "combinatorial_calculation": _combinatorial_wrong,
    "constrained_linear_arrangement": lambda r: [
        csv(r["solution"][:-1]),
        csv([r["solution"][0]] * len(r["solution"])),
        csv(["Z"] + r["solution"][1:]),
    ],
    "eight_queens": lambda r: [
        ", ".join(f"{a} {b}" for a, b in r["solution"][:-1]),  # 7 queens
        ", ".join(f"{a} {(b + 1) % 8 if a == 0 else b}" for a, b in r["solution"]),  # two share a column
        ", ".join(f"{a} {b}" for a, b in r["solution"] + [r["solution"][0]]),  # duplicate
    ],
    "letter_logic_diagram": lambda r: [
        "\n".join(csv(row) for row in _swap_in_row(r["solution"])),
        "\n".join(csv(row) for row in r["solution"][:-1]),
    ],
    "logical_equation": _logic_equation_wrong,
    "permutations_and_combinations": _permutation_wrong,
    "sudoku": lambda r: [
        json.dumps(_swap_in_row(r["solution"], r["meta"]["puzzle"])),
        json.dumps(r["solution"][:-1]),
        json.dumps([[1] * 9] * 9),
    ],
}

MALFORMED = [
    "",
    "   ",
    "\n",
    "None",
    "answer",
    "[[[",
    "}{",
    "'",
    "x" * 30_000,
    "1e999",
    "0/0",
    "__import__('os').system('true')",
]


def test_every_stored_answer_task_has_perturbations() -> None:
    assert set(WRONG) == set(GOLD)


@pytest.mark.parametrize("task", STORED_ANSWER_TASKS)
def test_perturbed_answers_score_zero(task: str) -> None:
    for record in RECORDS[task]:
        for wrong in WRONG[task](record):
            if task == "logical_equation" and wrong == json.dumps(
                [record["solution"][1], record["solution"][0]] + record["solution"][2:]
            ):
                if _equations_hold(record, json.loads(wrong)):
                    continue  # the swap is another valid answer
            assert score(task, wrong, record) == 0.0, (record["id"], wrong)


def _equations_hold(record: dict, values: list[int]) -> bool:
    ref = reference_from_record(record)
    by_letter = {chr(ord("A") + i): v for i, v in enumerate(values)}
    return all(parse_equation(eq)(by_letter) for eq in ref.meta["derived_equations"])


@pytest.mark.parametrize("task", sorted(TASK_VERIFIERS))
def test_malformed_answers_score_zero_and_never_raise(task: str) -> None:
    record = RECORDS[task][0]
    reference = reference_from_record(record)
    for text in MALFORMED:
        assert TASK_VERIFIERS[task](text, reference) == 0.0, text
    assert TASK_VERIFIERS[task](None, reference) == 0.0  # type: ignore[arg-type]


def test_permutation_constraints_are_all_recognised() -> None:
    rules = [
        len(book_constraints(r["meta"]["constraints_text"])) for r in RECORDS["permutations_and_combinations"]
    ]
    assert all(n > 0 for n in rules)


def test_synthesis_fields_match_what_the_question_asks() -> None:
    names = {
        3: "[remaining_A, remaining_B, obtained_X]",
        4: "[remaining_A, remaining_B, remaining_C, obtained_X]",
    }
    for record in RECORDS["synthesis_decomposition"]:
        fields = synthesis_decomposition_fields(record["meta"]["complexity"])
        if len(fields) in names:
            assert names[len(fields)] in record["question"], record["id"]


def test_eight_queens_answer_may_list_only_the_queens_it_adds() -> None:
    records = [r for r in RECORDS["eight_queens"] if r["meta"]["placed_queens"]]
    assert records
    for record in records:
        placed = {tuple(q) for q in record["meta"]["placed_queens"]}
        added = [q for q in record["solution"] if tuple(q) not in placed]
        assert score("eight_queens", ", ".join(f"{a} {b}" for a, b in added), record) == 1.0
        assert score("eight_queens", ", ".join(f"{a} {b}" for a, b in added[:-1]), record) == 0.0


CARD_GAME_OUTCOMES = [  # (game, my card, opponent card, result) as the puzzles were generated
    ("elements", "A", "B", "loss"),  # A generates B: its holder loses
    ("elements", "A", "C", "win"),  # A overcomes C
    ("elements", "B", "A", "draw"),  # only the player's card's relations count
    ("elements", "D", "D", "draw"),
    ("stick_game", "A", "B", "win"),  # stick beats tiger
    ("stick_game", "B", "A", "loss"),
    ("stick_game", "A", "C", "draw"),  # two steps apart
    ("animal", "H", "A", "win"),  # the mouse captures the elephant
    ("animal", "A", "H", "loss"),
    ("animal", "B", "C", "win"),
    ("animal", "E", "E", "draw"),
]


@pytest.mark.parametrize(("game", "mine", "theirs", "result"), CARD_GAME_OUTCOMES)
def test_card_game_rules(game: str, mine: str, theirs: str, result: str) -> None:
    record = {
        "id": "constrained_linear_arrangement/unit",
        "task": "constrained_linear_arrangement",
        "question": "",
        "solution": [theirs],
        "meta": {"game_type": game, "player_moves": [mine], "results": [result]},
    }
    assert score("constrained_linear_arrangement", theirs, record) == 1.0
    others = {"draw", "win", "loss"} - {result}
    for other in others:
        assert (
            score(
                "constrained_linear_arrangement",
                theirs,
                {**record, "meta": {**record["meta"], "results": [other]}},
            )
            == 0.0
        )
