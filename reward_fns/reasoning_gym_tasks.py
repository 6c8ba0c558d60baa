"""Reasoning-Gym verifiers, registered as ``reasoning_gym/<dataset>``; scoring delegates to reasoning-gym.

Reference: ``Reference(task, answer=<entry answer>, meta=<entry metadata, JSON-safe>)``; build it
with `reference_from_entry`. An answer is correct only when reasoning-gym's scorer returns exactly
1.0: many scorers give 0.01–0.05 to any answer, which must not look like progress to RL.

The allow-list below was audited against reasoning-gym ``RG_VERSION``: every enabled dataset's
generated answers score 1 after a JSON round trip and wrong answers score 0 (tested). Scorers are
third-party code, so some get help:
  * gates: scorers that ``eval`` / ``sympy.parse_expr`` the model's text only see text that is a
    plain literal or arithmetic (no calls outside a maths allow-list, no attributes, bounded powers);
  * overrides: four scorers accept wrong answers, so a strict check replaces them;
  * shape checks: scorers that read only part of the text (the first number or fraction, the
    first N words, the 0/1 or move characters) would score "not 42", "42 or 43" or the gold plus
    junk as 1, so the whole answer must first have the shape of an answer;
  * meta restore: ARC grids are tuples, which JSON turns into lists.
"""

from __future__ import annotations

import ast
import cmath
import functools
import json
import logging
import math
import re
from fractions import Fraction
from typing import Any, Callable

from reward_fns.parsing import evaluate_arithmetic, number_text, parse_quantity, yes_no
from reward_fns.registry import Reference, register_verifier

logger = logging.getLogger(__name__)

FAMILY = "reasoning_gym"
RG_VERSION = "0.1.25"
TIME_BUDGET_S = 10.0  # per answer; the slowest scorers (sympy integration) take ~0.1 s

# Datasets of reasoning-gym RG_VERSION that are NOT registered, and why (tested).
EXCLUDED: dict[str, str] = {
    "boxnet": "entries carry no answer (plans are checked by simulation), so no gold to test the scorer with",
    "graph_color": "entries carry no answer (colourings are checked by simulation), so no gold to test with",
    "propositional_logic": "entries carry no answer (conclusions are checked by evaluation), so no gold to test",
    "rubiks_cube": "entries carry no answer (move sequences are checked by simulation), so no gold to test",
    "rush_hour": "entries carry no answer (move sequences are checked by simulation), so no gold to test",
    "composite": "a mixture of other datasets; register its member datasets instead",
}

# The single list of reasoning-gym RG_VERSION datasets (except "composite"), each with the kind
# of skill it trains; the data side builds its tasks and splits from it.
# execution: follow stated rules or compute exactly; planning: search for a plan or an
# assignment that satisfies constraints; reasoning: infer from clues, patterns or language.
CATEGORIES: dict[str, str] = {
    **dict.fromkeys(
        [
            "ab", "advanced_geometry", "base_conversion", "basic_arithmetic", "bf", "binary_matrix",
            "bitwise_arithmetic", "caesar_cipher", "calendar_arithmetic", "chain_sum", "circuit_logic",
            "coin_flip", "color_cube_rotation", "complex_arithmetic", "count_bits", "count_primes",
            "decimal_arithmetic", "decimal_chain_sum", "dice", "emoji_mystery", "fraction_simplification",
            "game_of_life", "game_of_life_halting", "gcd", "group_anagrams", "intermediate_integration",
            "isomorphic_strings", "largest_island", "lcm", "letter_counting", "mahjong_puzzle",
            "manipulate_matrix", "number_filtering", "number_format", "number_sorting",
            "palindrome_partitioning", "polynomial_equations", "polynomial_multiplication", "pool_matrix",
            "power_function", "prime_factorization", "products", "ransom_note", "rectangle_count",
            "rotate_matrix", "rotten_oranges", "simple_equations", "simple_geometry", "simple_integration",
            "spell_backward", "spiral_matrix", "string_insertion", "string_manipulation", "string_splitting",
            "string_synthesis", "time_intervals", "word_sequence_reversal", "word_sorting",
        ],
        "execution",
    ),
    **dict.fromkeys(
        [
            "binary_alternation", "boxnet", "countdown", "course_schedule", "cryptarithm", "futoshiki",
            "graph_color", "jugs", "kakurasu", "knight_swap", "maze", "mini_sudoku", "n_queens",
            "palindrome_generation", "path_star", "puzzle24", "quantum_lock", "rubiks_cube", "rush_hour",
            "shortest_path", "sokoban", "sudoku", "survo", "tower_of_hanoi", "tsumego", "word_ladder",
        ],
        "planning",
    ),
    **dict.fromkeys(
        [
            "acre", "aiw", "arc_1d", "arc_agi", "codeio", "family_relationships", "figlet_font",
            "gsm_symbolic", "knights_knaves", "leg_counting", "letter_jumble", "list_functions",
            "modulo_grid", "needle_haystack", "number_sequence", "propositional_logic", "rearc",
            "self_reference", "sentence_reordering", "syllogism", "zebra_puzzles",
        ],
        "reasoning",
    ),
}  # fmt: skip

# Every dataset above that is not EXCLUDED: generates offline, gold scores 1 after JSON, wrong scores 0.
ENABLED: tuple[str, ...] = tuple(sorted(set(CATEGORIES) - set(EXCLUDED)))


def enabled_datasets() -> dict[str, str]:
    """The datasets that can be scored, with their category (what the data side builds from)."""
    return {name: CATEGORIES[name] for name in ENABLED}


class AnswerRejected(ValueError):
    """The answer was not given to a scorer that would execute it (it is not plain data)."""


# ---------------------------------------------------------------- gates (model text → eval)
_LITERAL_NODES = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.List, ast.Tuple,
                  ast.UnaryOp, ast.USub, ast.UAdd)  # fmt: skip
_ARITHMETIC_NODES = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp,
                     ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Call)  # fmt: skip
MATH_FUNCTIONS = frozenset(
    "sin cos tan cot sec csc asin acos atan acot sinh cosh tanh asinh acosh atanh "
    "exp log ln sqrt Abs abs".split()
)
MAX_GATED_ANSWER_CHARS = 2_000  # longer answers to eval-based scorers are rejected, not parsed
MAX_EXPONENT = 100  # |constant| allowed in an exponent: bounds sympy's integer powers


def _parse(answer: str) -> ast.Expression | None:
    try:  # eval() strips leading spaces and tabs; parse exactly what it would see
        return ast.parse(answer.lstrip(" \t"), mode="eval")
    except (SyntaxError, ValueError):
        return None


def literal_gate(answer: str) -> str:
    """For scorers that ``eval(answer)`` hoping for a list: only literals and bare names pass."""
    tree = _parse(answer)
    if tree is not None and not all(isinstance(n, _LITERAL_NODES) for n in ast.walk(tree)):
        raise AnswerRejected("answer is a Python expression, not a literal; it was not evaluated")
    return answer  # text that does not parse is harmless: eval raises SyntaxError


def arithmetic_gate(answer: str) -> str:
    """For scorers that ``sympy.parse_expr(answer)``: numbers, symbols, + - * / **, maths calls."""
    if len(answer) > MAX_GATED_ANSWER_CHARS:
        raise AnswerRejected(f"answer longer than {MAX_GATED_ANSWER_CHARS} characters")
    if "#" in answer:  # parsers drop comments: "<gold>  # or <another>" would read as the gold
        raise AnswerRejected("a comment is not part of an arithmetic answer")
    tree = _parse(answer)
    if tree is None:
        raise AnswerRejected("answer is not a plain arithmetic expression")
    for node in ast.walk(tree):
        if not isinstance(node, _ARITHMETIC_NODES):
            raise AnswerRejected(f"{type(node).__name__} is not allowed in an arithmetic answer")
        if isinstance(node, ast.Constant) and type(node.value) not in (int, float):
            raise AnswerRejected(f"constant {node.value!r} is not a number")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in MATH_FUNCTIONS and not node.keywords
        ):
            raise AnswerRejected("only maths functions may be called in an arithmetic answer")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            _check_power(node)
    return answer


def _check_power(node: ast.BinOp) -> None:
    exponent = list(ast.walk(node.right))
    if any(isinstance(n, ast.Call) or (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow)) for n in exponent):
        raise AnswerRejected("powers and calls are not allowed inside an exponent")
    if any(isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and abs(n.value) > MAX_EXPONENT
           for n in exponent):
        raise AnswerRejected(f"exponents are limited to ±{MAX_EXPONENT}")
    base = list(ast.walk(node.left))
    numeric_base = not any(isinstance(n, ast.Name) for n in base)
    if numeric_base and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow) for n in base):
        raise AnswerRejected("a numeric power may not be raised to a power")


# ---------------------------------------------------------------- strict overrides
def _strict_puzzle24(answer: str, entry: dict[str, Any]) -> float:
    """Upstream truncates with int() (49/2 counts as 24) and never checks which numbers were used.
    An answer may end in ``= 24``; another right-hand side (``... = 2 + 9``) is not read past."""
    expression, *results = answer.split("=")
    if any(result.strip() != "24" for result in results):
        return 0.0
    arithmetic_gate(expression)
    evaluated = evaluate_arithmetic(expression, allow_float=False)  # the numbers as Python reads them (1_2 is 12)
    if sorted(evaluated.numbers) != sorted(Fraction(n) for n in entry["metadata"]["numbers"]):
        return 0.0
    return 1.0 if evaluated.value == 24 else 0.0


def _strict_game_of_life_halting(answer: str, entry: dict[str, Any]) -> float:
    """Upstream compares bool(answer) with bool(expected), so any non-empty text scores 1."""
    given, expected = yes_no(answer), yes_no(str(entry["answer"]))
    return 1.0 if given is not None and given == expected else 0.0


COIN_FLIP_TOLERANCE = 1e-4  # upstream's tolerance for a probability
COIN_FLIP_REL_TOLERANCE = 1e-2  # and ours: "0" is not 3.05e-05, though within 1e-4 of it


def _quantity(text: str) -> Fraction | None:
    """A number as prose writes it (`parse_quantity`) or in scientific notation ("3.05e-05",
    how reasoning-gym writes small probabilities)."""
    written = number_text(text)
    return Fraction(written) if written is not None else parse_quantity(text)


def _strict_coin_flip(answer: str, entry: dict[str, Any]) -> float:
    """Upstream gives prefix credit, so "0" scores 1.0 against 0.3125; its absolute tolerance
    alone would also pass "0" for a probability of 3.05e-05, so a relative one applies too."""
    given, expected = _quantity(answer), _quantity(str(entry["answer"]))
    if given is None or expected is None:
        return 0.0
    difference = abs(float(given) - float(expected))
    close = difference <= COIN_FLIP_TOLERANCE and difference <= COIN_FLIP_REL_TOLERANCE * abs(float(expected))
    return 1.0 if close else 0.0


def _strict_gsm_symbolic(answer: str, entry: dict[str, Any]) -> float:
    """Upstream reads the first number anywhere in the text, so "not 42" and "42 or 43" score 1."""
    given = _quantity(answer)
    return 1.0 if given is not None and float(given) == float(entry["answer"]) else 0.0


Scorer = Callable[[str, dict[str, Any]], float]
STRICT_OVERRIDES: dict[str, Scorer] = {
    "puzzle24": _strict_puzzle24,
    "game_of_life_halting": _strict_game_of_life_halting,
    "coin_flip": _strict_coin_flip,
    "gsm_symbolic": _strict_gsm_symbolic,
}


# ---------------------------------------------------------------- shape checks (whole answer)
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_FRACTION_ANSWER = re.compile(r"\s*\$?\s*(?:\\d?frac\s*\{\s*\d+\s*\}\s*\{\s*\d+\s*\}|\d+\s*/\s*\d+)\s*\$?\s*",
                              re.IGNORECASE)
_POINT_ANSWER = re.compile(rf"\s*\(?\s*{_NUM}\s*,\s*{_NUM}\s*\)?\s*")
_TIME_INTERVAL_ANSWERS = {  # metadata task_type -> the shape of its answer ("34 days", "01:45:29.840", ...)
    "date": re.compile(r"\s*-?\d+(?:\s+days?)?\s*"),
    "time": re.compile(r"\s*\d+:\d+(?::\d+(?:\.\d+)?)?\s*"),
    "datetime": re.compile(r"\s*-?\d+\s+days?,\s*\d+:\d+(?::\d+)?\s*"),
}
_KAKURASU_ANSWER = re.compile(r"[01\s,\[\]]*")
_SURVO_ANSWER = re.compile(r"[-\d\s]*")
_SOKOBAN_ANSWER = re.compile(r"[LRUD\s,]*")
_QUANTUM_LOCK_ANSWER = re.compile(r"[A-Ca-c\s,→>\-]*")
_HANOI_MOVE = re.compile(r"Move disk \d+ from Peg \d+ to Peg \d+")


def _hanoi_lines(answer: str, entry: dict[str, Any]) -> bool:
    """Every line is one move: upstream searches each line for a move, so "Move disk 1 from Peg 1
    to Peg 3 or Move disk 1 from Peg 1 to Peg 2" and "¬Move disk ..." read as the first move."""
    return all(_HANOI_MOVE.fullmatch(line.strip()) for line in answer.splitlines() if line.strip())



def _comma_items(answer: str) -> list[str]:
    return re.split(r",\s*", answer)  # how upstream word_sorting splits


def _time_interval_shape(answer: str, entry: dict[str, Any]) -> bool:
    kind = str(entry["metadata"]["task_type"])
    shape = _TIME_INTERVAL_ANSWERS["time" if kind.startswith("time") else "datetime" if kind.startswith("datetime") else kind]
    return shape.fullmatch(answer) is not None


def _advanced_geometry_shape(answer: str, entry: dict[str, Any]) -> bool:
    return entry["metadata"]["task_type"] != "orthocenter" or _POINT_ANSWER.fullmatch(answer) is not None


_KNIGHTS_KNAVES_FILLERS = frozenset({"is", "a", "an", "and"})


def _knights_knaves_words(text: str) -> list[str]:
    """The words upstream's parser reads (it lower-cases and drops . , ( ))."""
    return re.sub(r"[.,()]", " ", text.lower()).split()


def _knights_knaves_shape(answer: str, entry: dict[str, Any]) -> bool:
    """Only names of the puzzle, roles and "is/a/an/and": upstream reads any other word as a name
    that a role then overrides, so "not Zoey is a knight" scored as "Zoey is a knight"."""
    from reasoning_gym.logic.knights_knaves import VALID_ROLES

    names = set(_knights_knaves_words(str(entry["answer"]))) - VALID_ROLES - _KNIGHTS_KNAVES_FILLERS
    return set(_knights_knaves_words(answer)) <= names | VALID_ROLES | _KNIGHTS_KNAVES_FILLERS


def _float_items(answer: str, entry: dict[str, Any]) -> bool:
    """Every comma-separated item is a number: upstream drops the others ("1.5, 2 or 3"). An
    empty answer passes on to upstream, which scores it 1 only when there is no real root."""
    if not answer.strip():
        return True
    try:
        return all(math.isfinite(float(item)) for item in answer.split(","))
    except ValueError:
        return False


def _grid_shape(value: Any) -> list[int] | int | None:
    if not isinstance(value, list):
        return None
    return [len(row) if isinstance(row, list) else -1 for row in value] if value and isinstance(value[0], list) else len(value)


def _same_grid_shape(answer: str, entry: dict[str, Any]) -> bool:
    """The answer grid has the gold's rows and columns: upstream compares only the gold's cells."""
    try:
        return _grid_shape(json.loads(answer)) == _grid_shape(json.loads(entry["answer"]))
    except (ValueError, RecursionError):
        return False


def _finite_complex(answer: str, entry: dict[str, Any]) -> bool:
    """Upstream scores min(1, exp(-|given - expected|)); for "nan" that is min(1.0, nan) = 1.0,
    so NaN scored 1 on every question. Text upstream cannot read passes on (it scores it 0)."""
    from reasoning_gym.algebra.complex_arithmetic import ComplexArithmeticDataset

    try:
        value = ComplexArithmeticDataset.parse_string_to_complex(answer)
    except (ValueError, TypeError):
        return True
    return isinstance(value, complex) and cmath.isfinite(value)


ShapeCheck = Callable[[str, dict[str, Any]], bool]
# dataset -> whether the whole answer has the shape of an answer; others score 0 unscored. Each
# closes a hole where upstream scores 1.0 for text that only starts with (or contains) the gold.
SHAPE_CHECKS: dict[str, ShapeCheck] = {
    # prefix credit: the first len(gold) words / items matching gave 1.0, junk after them ignored
    "word_sorting": lambda a, e: len(_comma_items(a)) == len(e["metadata"]["sorted_words"]),
    "letter_jumble": lambda a, e: len(a.split()) == len(str(e["answer"]).split()),
    "game_of_life": _same_grid_shape,
    # the first fraction / number / point was read and the rest of the text ignored
    "fraction_simplification": lambda a, e: _FRACTION_ANSWER.fullmatch(a) is not None,
    "time_intervals": _time_interval_shape,
    "advanced_geometry": _advanced_geometry_shape,
    "polynomial_equations": _float_items,
    # characters other than cells / moves were skipped, so "not <grid>" scored 1
    "kakurasu": lambda a, e: _KAKURASU_ANSWER.fullmatch(a) is not None,
    "survo": lambda a, e: _SURVO_ANSWER.fullmatch(a) is not None,
    "sokoban": lambda a, e: _SOKOBAN_ANSWER.fullmatch(a) is not None,
    "quantum_lock": lambda a, e: _QUANTUM_LOCK_ANSWER.fullmatch(a) is not None,
    "knights_knaves": _knights_knaves_shape,
    "tower_of_hanoi": _hanoi_lines,
    # a value that is not a number: NaN compares false with everything, so upstream's min() kept 1.0
    "complex_arithmetic": _finite_complex,
}
GATES: dict[str, Callable[[str], str]] = {
    "string_insertion": literal_gate,
    "spiral_matrix": literal_gate,
    "binary_matrix": literal_gate,
    "n_queens": literal_gate,
    "countdown": arithmetic_gate,
    "polynomial_multiplication": arithmetic_gate,
    "simple_integration": arithmetic_gate,
    "intermediate_integration": arithmetic_gate,
}


def _grids_as_tuples(meta: dict[str, Any]) -> dict[str, Any]:
    """ARC scorers compare the parsed answer with a tuple-of-tuples grid."""
    restored = dict(meta)
    for key in ("input", "output"):
        if isinstance(restored.get(key), list):
            restored[key] = tuple(tuple(row) for row in restored[key])
    return restored


META_RESTORE: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "arc_agi": _grids_as_tuples,
    "rearc": _grids_as_tuples,
}


# ---------------------------------------------------------------- references and verifiers
def to_json_safe(value: Any) -> Any:
    """Plain JSON types: numpy scalars/arrays, fractions, tuples and sets become numbers and lists."""
    if isinstance(value, dict):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((to_json_safe(v) for v in value), key=repr)
    if hasattr(value, "tolist"):  # numpy array or scalar
        return to_json_safe(value.tolist())
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Fraction):  # gsm_symbolic metadata
        return int(value) if value.denominator == 1 else to_json_safe(float(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite float {value!r} cannot be stored as JSON")
        return value
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON-serialisable")


def reference_from_entry(dataset_name: str, entry: dict[str, Any]) -> Reference:
    """The Reference for a reasoning-gym entry (``{"question", "answer", "metadata"}``)."""
    if dataset_name in EXCLUDED:
        raise ValueError(f"reasoning_gym/{dataset_name} is excluded: {EXCLUDED[dataset_name]}")
    if dataset_name not in ENABLED:
        raise ValueError(f"reasoning_gym/{dataset_name} is not in the audited allow-list (reasoning-gym {RG_VERSION})")
    for field_name in ("answer", "metadata"):
        if field_name not in entry:
            raise ValueError(f"reasoning_gym/{dataset_name}: entry has no {field_name!r} field")
    meta = to_json_safe(entry["metadata"])
    meta["source_dataset"] = dataset_name
    return Reference(task=f"{FAMILY}/{dataset_name}", answer=to_json_safe(entry["answer"]), meta=meta)


@functools.lru_cache(maxsize=None)
def upstream_scorer(dataset_name: str) -> Scorer:
    """reasoning-gym's score_answer for a dataset (built once per process: some load data)."""
    import reasoning_gym

    return reasoning_gym.get_score_answer_fn(dataset_name)


_WHITESPACE_RUN = re.compile(r"\s+")


def _one_blank(run: re.Match[str]) -> str:
    return "\n" if "\n" in run.group() else " "


def _make_verifier(dataset_name: str):
    gate = GATES.get(dataset_name)
    restore = META_RESTORE.get(dataset_name)
    override = STRICT_OVERRIDES.get(dataset_name)
    shape = SHAPE_CHECKS.get(dataset_name)

    def verify(answer: str, reference: Reference) -> float:
        meta = restore(reference.meta) if restore else reference.meta
        entry = {"question": "", "answer": reference.answer, "metadata": meta}
        try:
            # each whitespace run as one space or line break: the shape patterns' adjacent optional
            # spaces made a long run quadratic ("1/2", 16,000 spaces, "x": 0.8 s); no shape
            # depends on how long a run is
            if shape is not None and not shape(_WHITESPACE_RUN.sub(_one_blank, answer), entry):
                return 0.0
            if override is not None:
                return override(answer, entry)
            if gate is not None:
                gate(answer)
            score = upstream_scorer(dataset_name)(answer, entry)
        except Exception as exc:  # noqa: BLE001 - scorers raise on malformed answers: wrong, not broken
            logger.debug("%s/%s: answer %r scored 0: %r", FAMILY, dataset_name, answer[:80], exc)
            return 0.0
        return 1.0 if score == 1.0 else 0.0

    verify.__name__ = f"verify_{dataset_name}"
    verify.__doc__ = f"reasoning-gym {dataset_name}: its scorer, counted correct only at 1.0."
    return verify


def _check_version() -> None:
    try:
        from importlib.metadata import version

        installed = version("reasoning-gym")
    except Exception:  # not installed: verifiers fail when first used, with an ImportError
        return
    if installed != RG_VERSION:
        logger.warning(
            "reasoning-gym %s is installed but the allow-list was audited for %s; "
            "re-run tests/reward_fns/test_reasoning_gym_on_cpu.py before training",
            installed,
            RG_VERSION,
        )


_check_version()
# Scorers whose cost the answer controls (sympy parsing and simplification) run under a time
# budget; the rest are linear-time string/number checks, run inline (a budget costs a thread hop).
BUDGETED = frozenset(name for name, gate in GATES.items() if gate is arithmetic_gate)

for _name in ENABLED:
    _budget = TIME_BUDGET_S if _name in BUDGETED else None
    register_verifier(f"{FAMILY}/{_name}", _make_verifier(_name), time_budget_s=_budget)
