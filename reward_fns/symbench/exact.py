"""SymBench tasks with one right answer: compare the parsed answer with the stored one.

Parsing is lenient about layout (quotes, brackets, commas or spaces, flat or nested grids) and
strict about content: every value must match and nothing may be missing or extra.
"""

from __future__ import annotations

import re

from reward_fns.parsing import (
    clean,
    grid_cells,
    number_matches,
    parse_grid,
    parse_int,
    parse_literal,
    split_list,
)
from reward_fns.registry import Reference
from reward_fns.symbench._common import symbench_verifier


def _ints(tokens: list[str] | None) -> list[int] | None:
    if tokens is None:
        return None
    values = [parse_int(t) for t in tokens]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def _int_list_equals(answer: str, expected: list) -> bool:
    return _ints(split_list(answer)) == [int(v) for v in expected]


def _single_string(answer: str) -> str | None:
    """The answer as one string, unwrapping quotes or a one-element list."""
    literal = parse_literal(answer)
    if isinstance(literal, str):
        return literal.strip()
    if isinstance(literal, list) and len(literal) == 1 and isinstance(literal[0], str):
        return literal[0].strip()
    return clean(answer)


@symbench_verifier("2048")
def check_2048(answer: str, reference: Reference) -> bool:
    expected = [[int(c) for c in row] for row in parse_grid(reference.answer) or []]
    cells = grid_cells(parse_grid(answer), len(expected), len(expected[0]))
    return _ints(cells) == [c for row in expected for c in row]


@symbench_verifier("cryptanalysis")
def check_cryptanalysis(answer: str, reference: Reference) -> bool:
    tokens = split_list(answer)
    return tokens is not None and [t.upper() for t in tokens] == [str(v).upper() for v in reference.answer]


@symbench_verifier("light_puzzles")
def check_light_puzzles(answer: str, reference: Reference) -> bool:
    n = int(reference.meta["n"])
    return _ints(grid_cells(parse_grid(answer), n, n)) == list(reference.answer)


@symbench_verifier("mahjong_pattern")
def check_mahjong_pattern(answer: str, reference: Reference) -> bool:
    return parse_int(answer) == int(reference.answer)


@symbench_verifier("matrix_transformation", markup=False)  # cells such as "$" and "*"
def check_matrix_transformation(answer: str, reference: Reference) -> bool:
    expected = reference.answer
    cells = grid_cells(parse_grid(answer), len(expected), len(expected[0]))
    return cells == [str(c) for row in expected for c in row]


@symbench_verifier("new_operator")
def check_new_operator(answer: str, reference: Reference) -> bool:
    return number_matches(clean(answer) or "", float(reference.answer))


@symbench_verifier("number_multiply")
def check_number_multiply(answer: str, reference: Reference) -> bool:
    return parse_int(answer) == int(reference.answer)


@symbench_verifier("pattern_recognition")
def check_pattern_recognition(answer: str, reference: Reference) -> bool:
    return _int_list_equals(answer, reference.answer)


@symbench_verifier("pooling")
def check_pooling(answer: str, reference: Reference) -> bool:
    expected = reference.answer
    cells = grid_cells(parse_grid(answer), len(expected), len(expected[0]))
    flat = [float(v) for row in expected for v in row]
    return cells is not None and all(number_matches(c, e) for c, e in zip(cells, flat))


_REVERSI_CELLS = frozenset("*01")
_REVERSI_LAYOUT = frozenset(" \t\r\n,;[]()'\"")


@symbench_verifier("reversi", markup=False)  # "**" is two empty cells, not bold
def check_reversi(answer: str, reference: Reference) -> bool:
    """Board cells in row-major order, whatever the separators (``*,1,0`` or rows like ``*10*``)."""
    text = clean(answer) or ""
    if any(ch not in _REVERSI_CELLS and ch not in _REVERSI_LAYOUT for ch in text):
        return False
    expected = [ch for ch in reference.answer if ch in _REVERSI_CELLS]
    return bool(text) and [ch for ch in text if ch in _REVERSI_CELLS] == expected


@symbench_verifier("statistical_counting")
def check_statistical_counting(answer: str, reference: Reference) -> bool:
    return parse_int(answer) == int(reference.answer)


@symbench_verifier("string_deletion_and_modification")
def check_string_deletion_and_modification(answer: str, reference: Reference) -> bool:
    return _single_string(answer) == reference.answer


@symbench_verifier("string_insertion")
def check_string_insertion(answer: str, reference: Reference) -> bool:
    return _single_string(answer) == reference.answer


@symbench_verifier("string_splitting")
def check_string_splitting(answer: str, reference: Reference) -> bool:
    """Six counts in the order machines A, B, C, parts X, Y, Z."""
    return _int_list_equals(answer, reference.answer)


@symbench_verifier("string_synthesis")
def check_string_synthesis(answer: str, reference: Reference) -> bool:
    """Nine block counts in the question's order, e.g. ``2 0 1 1 0 0 0 0 0``."""
    return _int_list_equals(answer, reference.answer)


# Which of the stored [A, B, C, X, Y] the question asks for, by complexity (see the data README).
_SYNTHESIS_FIELDS = {1: (0, 1, 3), 2: (0, 1, 3), 3: (0, 1, 2, 3), 4: (0, 1, 2, 3), 5: (0, 1, 2, 3, 4)}


def synthesis_decomposition_fields(complexity: int) -> tuple[int, ...]:
    try:
        return _SYNTHESIS_FIELDS[int(complexity)]
    except KeyError:
        raise ValueError(f"synthesis_decomposition: unknown complexity {complexity!r}") from None


@symbench_verifier("synthesis_decomposition")
def check_synthesis_decomposition(answer: str, reference: Reference) -> bool:
    stored = reference.answer["answer"]
    fields = synthesis_decomposition_fields(reference.meta["complexity"])
    return _int_list_equals(answer, [stored[i] for i in fields])


_LETTERS_COUNT = r"count\s*[:=]?\s*(?P<count>\d+)"
_LETTERS_POSITIONS = r"positions?\s*[:=]?\s*(?:\[(?P<bracketed>[\d\s,]*)\]|(?P<bare>[\d\s,]*?))"
_LETTERS_SEPARATOR = r"\s*[,;.]?\s*"
# The whole answer is the count and the positions, in either order: text around them ("Count: 1
# or 2", "Positions: [2] or [3]", a second Count/Positions pair) made them a hedge.
_LETTERS_ANSWER = re.compile(
    rf"\s*(?:{_LETTERS_COUNT}{_LETTERS_SEPARATOR}{_LETTERS_POSITIONS}"
    rf"|{_LETTERS_POSITIONS.replace('?P<', '?P<p_')}{_LETTERS_SEPARATOR}{_LETTERS_COUNT.replace('?P<', '?P<p_')})\s*\.?\s*",
    re.IGNORECASE,
)


@symbench_verifier("letters")
def check_letters(answer: str, reference: Reference) -> bool:
    """``Count: 3, Positions: [2, 5, 9]`` with 1-based positions, nothing else."""
    text = clean(answer)
    if text is None:
        return False
    # One space per run: the pattern's adjacent optional spaces made a long run quadratic (1 s at 16k).
    match = _LETTERS_ANSWER.fullmatch(" ".join(text.split()))
    if match is None:
        return False
    groups = {name.removeprefix("p_"): value for name, value in match.groupdict().items() if value is not None}
    positions = groups.get("bracketed", groups.get("bare", ""))
    return int(groups["count"]) == int(reference.meta["derived_count"]) and _ints(
        split_list(positions)
    ) == list(reference.meta["derived_positions"])
