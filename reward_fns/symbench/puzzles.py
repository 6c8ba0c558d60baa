"""SymBench puzzles with many right answers: check the answer against the puzzle's constraints.

A stored solution is one valid answer among possibly many, so these verifiers never compare
with it: they check the rules the question states (see the data README per task).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from reward_fns.parsing import (
    clean,
    evaluate_arithmetic,
    grid_cells,
    parse_grid,
    parse_int,
    parse_pairs,
    split_list,
)
from reward_fns.registry import Reference
from reward_fns.symbench._common import require_meta, symbench_verifier

# --- arithmetic puzzles -------------------------------------------------------------------

_TRAILING_RESULT = re.compile(r"=\s*(?P<result>[-+]?\d+(?:\.\d*)?)\s*$")


def _expression_from_token_list(answer: str) -> str:
    """``[6, /, 2, +, 7]`` (tokens, maybe quoted) or a plain ``6/2+7`` -> an expression string."""
    text = clean(answer) or ""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    tokens = [t.strip().strip("\"'`") for t in text.split(",")]
    return " ".join(t for t in tokens if t)


@symbench_verifier("combinatorial_calculation")
def check_combinatorial_calculation(answer: str, reference: Reference) -> bool:
    """Uses meta.numbers in the given order, each once, with + - * / ( ) only; equals meta.target."""
    result = evaluate_arithmetic(_expression_from_token_list(answer), allow_unary=False)
    numbers = [Fraction(n) for n in reference.meta["numbers"]]
    return result.numbers == numbers and result.value == Fraction(reference.meta["target"])


@symbench_verifier("game24")
def check_game24(answer: str, reference: Reference) -> bool:
    """Each of meta.derived_numbers once (any order), + - * / and parentheses, equal to the target;
    a written result (``... = 24``) must be the target too."""
    text = clean(answer) or ""
    target = Fraction(reference.meta.get("derived_target", 24))
    written = _TRAILING_RESULT.search(text)
    if written is not None and Fraction(written.group("result")) != target:
        return False
    result = evaluate_arithmetic(_TRAILING_RESULT.sub("", text), allow_unary=False)
    numbers = sorted(Fraction(n) for n in reference.meta["derived_numbers"])
    return sorted(result.numbers) == numbers and result.value == target


# --- grid puzzles -------------------------------------------------------------------------

EIGHT_QUEENS_SIZE = 8


@symbench_verifier("eight_queens")
def check_eight_queens(answer: str, reference: Reference) -> bool:
    """Eight non-attacking queens: the answer plus the pre-placed ones, none on a blocked cell."""
    pairs = parse_pairs(answer)
    if not pairs or len(set(pairs)) != len(pairs):
        return False
    placed = {tuple(q) for q in reference.meta.get("placed_queens", [])}
    blocked = {tuple(b) for b in reference.meta.get("blocked_positions", [])}
    queens = set(pairs) | placed
    n = EIGHT_QUEENS_SIZE
    if len(queens) != n or queens & blocked:
        return False
    if not all(0 <= r < n and 0 <= c < n for r, c in queens):
        return False
    return all(len({key(r, c) for r, c in queens}) == n for key in _QUEEN_LINES)


_QUEEN_LINES = (lambda r, c: r, lambda r, c: c, lambda r, c: r - c, lambda r, c: r + c)

SUDOKU_SIZE, SUDOKU_BOX = 9, 3


@symbench_verifier("sudoku")
def check_sudoku(answer: str, reference: Reference) -> bool:
    """A complete valid 9x9 grid that keeps every given of meta.puzzle (0 = empty)."""
    n = SUDOKU_SIZE
    cells = grid_cells(parse_grid(answer), n, n)
    values = [parse_int(c) for c in cells] if cells else None
    if values is None or any(v is None for v in values):
        return False
    grid = [values[r * n : (r + 1) * n] for r in range(n)]
    if any(
        given and given != grid[r][c]
        for r, row in enumerate(reference.meta["puzzle"])
        for c, given in enumerate(row)
    ):
        return False
    digits = set(range(1, n + 1))
    boxes = [
        [grid[r][c] for r in range(br, br + SUDOKU_BOX) for c in range(bc, bc + SUDOKU_BOX)]
        for br in range(0, n, SUDOKU_BOX)
        for bc in range(0, n, SUDOKU_BOX)
    ]
    groups = grid + [list(col) for col in zip(*grid)] + boxes
    return all(set(group) == digits for group in groups)


LETTER_GRID_LETTERS = "abcdefg"


@symbench_verifier("letter_logic_diagram")
def check_letter_logic_diagram(answer: str, reference: Reference) -> bool:
    """Latin square of a..g, one letter on the whole minor diagonal, pre-filled cells kept."""
    n = len(LETTER_GRID_LETTERS)
    cells = grid_cells(parse_grid(answer), n, n)
    if cells is None:
        return False
    grid = [[c.lower() for c in cells[r * n : (r + 1) * n]] for r in range(n)]
    letters = set(LETTER_GRID_LETTERS)
    if any(set(row) != letters for row in grid) or any(set(col) != letters for col in zip(*grid)):
        return False
    if len({grid[r][n - 1 - r] for r in range(n)}) != 1:
        return False
    return all(
        given is None or given.lower() == grid[r][c]
        for r, row in enumerate(reference.meta["grid"])
        for c, given in enumerate(row)
    )


@symbench_verifier("logic_puzzle")
def check_logic_puzzle(answer: str, reference: Reference) -> bool:
    """Exactly meta.derived_num_select distinct cells, including the start cell, such that every
    row's and column's selected numbers meet the constraint.

    "Select N different numbers" is read as N different cells (values may repeat), as the data
    README specifies. Stored solutions are not trusted (27/100 break the constraints).
    """
    require_meta(reference, "derived_num_select", "derived_start")
    grid = reference.meta["grid"]
    pairs = parse_pairs(answer)
    if not pairs or len(set(pairs)) != len(pairs) or len(pairs) != int(reference.meta["derived_num_select"]):
        return False
    if tuple(reference.meta["derived_start"]) not in pairs:
        return False
    if not all(0 <= r < len(grid) and 0 <= c < len(grid[r]) for r, c in pairs):
        return False
    values = [grid[r][c] for r, c in pairs]
    lines: dict[tuple[str, int], list[int]] = {}
    for (r, c), value in zip(pairs, values):
        lines.setdefault(("row", r), []).append(value)
        lines.setdefault(("col", c), []).append(value)
    kind = reference.meta["constraints"]["type"]
    if kind == "sum_le_4":
        return all(sum(v) <= 4 for v in lines.values())
    if kind == "product_gt_0":
        return all(math.prod(v) > 0 for v in lines.values())
    raise ValueError(f"logic_puzzle: unknown constraint type {kind!r}")


# --- ordering and deduction puzzles -------------------------------------------------------

_BOOK_RULES = (
    (re.compile(r"Book (\w) must be adjacent to book (\w)"), lambda pos, a, b: abs(pos[a] - pos[b]) == 1),
    (re.compile(r"Book (\w) must be to the left of book (\w)"), lambda pos, a, b: pos[a] < pos[b]),
    (re.compile(r"Book (\w) must be to the right of book (\w)"), lambda pos, a, b: pos[a] > pos[b]),
    (re.compile(r"Book (\w) must be placed in position (\d+)"), lambda pos, a, n: pos[a] == int(n)),
    (re.compile(r"Book (\w) cannot be placed in position (\d+)"), lambda pos, a, n: pos[a] != int(n)),
)


def book_constraints(constraints_text: str) -> list[tuple]:
    """Parse permutations_and_combinations constraint lines into (rule, arg1, arg2)."""
    parsed = []
    for line in filter(None, (line.strip() for line in constraints_text.splitlines())):
        for pattern, rule in _BOOK_RULES:
            match = pattern.search(line)
            if match:
                parsed.append((rule, *match.groups()))
                break
        else:
            raise ValueError(f"permutations_and_combinations: unknown constraint {line!r}")
    return parsed


@symbench_verifier("permutations_and_combinations")
def check_permutations_and_combinations(answer: str, reference: Reference) -> bool:
    """An arrangement of all meta.items (positions 1..n, left to right) meeting every constraint."""
    order = [token.upper() for token in split_list(answer) or []]
    items = list(reference.meta["items"])
    if sorted(order) != sorted(items):
        return False
    position = {item: i + 1 for i, item in enumerate(order)}
    return all(rule(position, a, b) for rule, a, b in book_constraints(reference.meta["constraints_text"]))


# Outcome of (my card, opponent card) as the puzzles were generated; see the data README.
_ELEMENT_GENERATES = {"A": "B", "B": "C", "C": "D", "D": "E", "E": "A"}
_ELEMENT_OVERCOMES = {"A": "C", "C": "E", "E": "B", "B": "D", "D": "A"}
_STICK_BEATS = {"A": "B", "B": "C", "C": "D", "D": "A"}
_ANIMAL_RANK = {letter: 8 - i for i, letter in enumerate("ABCDEFGH")}  # Elephant A largest


def _elements_outcome(mine: str, theirs: str) -> str:
    if _ELEMENT_GENERATES[mine] == theirs:
        return "loss"
    return "win" if _ELEMENT_OVERCOMES[mine] == theirs else "draw"


def _stick_outcome(mine: str, theirs: str) -> str:
    if _STICK_BEATS[mine] == theirs:
        return "win"
    return "loss" if _STICK_BEATS[theirs] == mine else "draw"


def _animal_outcome(mine: str, theirs: str) -> str:
    if mine == theirs:
        return "draw"
    if (mine, theirs) == ("H", "A"):  # the mouse captures the elephant
        return "win"
    if (mine, theirs) == ("A", "H"):
        return "loss"
    return "win" if _ANIMAL_RANK[mine] > _ANIMAL_RANK[theirs] else "loss"


_CARD_GAMES = {
    "elements": (_elements_outcome, _ELEMENT_GENERATES.keys()),
    "stick_game": (_stick_outcome, _STICK_BEATS.keys()),
    "animal": (_animal_outcome, _ANIMAL_RANK.keys()),
}


@symbench_verifier("constrained_linear_arrangement")
def check_constrained_linear_arrangement(answer: str, reference: Reference) -> bool:
    """Opponent cards, each used at most once, that give every announced round result."""
    outcome, pieces = _CARD_GAMES[reference.meta["game_type"]]
    cards = [t.upper() for t in split_list(answer) or []]
    mine, results = reference.meta["player_moves"], reference.meta["results"]
    if len(cards) != len(mine) or len(set(cards)) != len(cards) or not set(cards) <= set(pieces):
        return False
    return all(outcome(m, c) == r for m, c, r in zip(mine, cards, results))


_EQUATION_FORMS = (
    (re.compile(r"([A-Z])\s*([+-])\s*([A-Z])\s*=\s*(-?\d+(?:\.\d+)?)"), "sum"),
    (re.compile(r"([A-Z])\s*([<>])\s*([A-Z])"), "compare"),
    (re.compile(r"([A-Z])\s*=\s*(-?\d+(?:\.\d+)?)\s*\*?\s*([A-Z])"), "scale"),
)


def parse_equation(text: str):
    """A logical_equation line as a predicate over {letter: value}; ValueError if unknown."""
    for pattern, form in _EQUATION_FORMS:
        match = pattern.fullmatch(text.strip().rstrip("."))
        if not match:
            continue
        if form == "sum":
            a, op, b, total = match.groups()
            sign = 1 if op == "+" else -1
            return lambda v: Fraction(v[a] + sign * v[b]) == Fraction(total)
        if form == "compare":
            a, op, b = match.groups()
            return lambda v: v[a] > v[b] if op == ">" else v[a] < v[b]
        a, factor, b = match.groups()
        return lambda v: Fraction(v[a]) == Fraction(factor) * v[b]
    raise ValueError(f"logical_equation: unknown equation {text!r}")


@symbench_verifier("logical_equation")
def check_logical_equation(answer: str, reference: Reference) -> bool:
    """Values for A, B, … in order: a permutation of the listed numbers satisfying every equation."""
    require_meta(reference, "derived_numbers", "derived_equations")
    values = [parse_int(t) for t in split_list(answer) or []]
    numbers = sorted(int(n) for n in reference.meta["derived_numbers"])
    if any(v is None for v in values) or sorted(values) != numbers:  # type: ignore[type-var]
        return False
    by_letter = {chr(ord("A") + i): v for i, v in enumerate(values)}
    return all(parse_equation(eq)(by_letter) for eq in reference.meta["derived_equations"])
