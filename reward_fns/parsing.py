"""Answer parsing for every verifier: cleaning, literals, lists, numbers, options, maths.

One module, so every task reads model answers the same way. Model text is never executed:
literals go through `json` / `ast.literal_eval`, arithmetic through a tiny `ast` walker that knows
numbers, + - * / and parentheses only, LaTeX through math-verify. Models decorate answers
(``<<< (B) >>>``, ``<<<"yes".>>>``, ``<<<1,234 apples>>>``): the helpers strip the decoration a
grader would ignore and nothing more, so a wrong answer stays wrong. Parsers return None (or
raise `ValueError` where documented) on text of the wrong shape; verifiers score that 0.

Two cleaning levels, chosen by the caller: layout (`clean(text)`: surrounding whitespace and
wrapping quotes; puzzle answers, where punctuation is content) and sentence
(`clean(text, sentence=True)`: also inner whitespace runs and trailing sentence punctuation;
short prose answers such as BBH's).
"""

from __future__ import annotations

import ast
import functools
import io
import json
import logging
import math
import re
import tokenize
import warnings
from fractions import Fraction
from typing import Any

# Imported here, not lazily: budgeted verifiers run in processes forked from this one, and a
# worker that replaces a killed one should not pay the ~0.5 s import again.
from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
from sympy import FiniteSet, Interval, Tuple

MAX_ANSWER_CHARS = 20_000  # longer answers are not parsed (bounds work on hostile text)
MAX_EXPRESSION_NODES = 200  # arithmetic expressions are short; this bounds the walk
NUMERIC_REL_TOL = 1e-6
NUMERIC_ABS_TOL = 1e-9
MIN_ROUNDED_DECIMALS = 2  # "1.54" for 1.5416… counts as correct rounding; "2" for 1.54 does not

_QUOTES = "\"'`“”‘’"
_MINUS_SIGNS = str.maketrans({"\u2212": "-", "\uff0d": "-"})  # typographic and full-width minus: "−1034"
_TRAILING_PUNCT = ".!;:,"
_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_SCIENTIFIC = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)[eE][-+]?\d+")
_INT = re.compile(r"[-+]?\d+")
_GROUPED_INT = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+")
_TOKEN_SPLIT = re.compile(r"[,;\s]+")
_BRACKETS = "[](){}"


# --- cleaning ---------------------------------------------------------------------------------


def clean(text: str | None, *, sentence: bool = False) -> str | None:
    """Strip surrounding whitespace and wrapping quotes/backticks; None for missing or oversized text.

    `sentence`: also collapse whitespace runs, drop trailing sentence punctuation and a leading
    "answer:" / "the final answer is", so ``' "yes". '`` is ``yes`` (for prose answers; puzzle
    answers keep their punctuation).
    """
    if text is None or not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
        return None
    text = text.translate(_MINUS_SIGNS)
    if sentence:
        text = _SPACES.sub(" ", text)
    text = text.strip()
    previous = None
    while text != previous:
        previous = text
        if sentence:
            text = _LEAD_IN.sub("", text.rstrip(_TRAILING_PUNCT)).strip()
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1].strip()
    return text


def strip_markup(text: str) -> str:
    """The answer inside decoration that wraps all of it, which a grader reads through:
    ``**B**``, ``$8$``, ``\\(8\\)``, ``\\boxed{8}``, ``\\text{No}``, nested or not. Verifiers apply it
    once to the whole answer (never to parts: ``$`` and ``*`` can be cells of a grid)."""
    previous = None
    while text != previous:
        previous = text
        text = _unwrap_markup(text.strip())
    return text


_LEAD_IN = re.compile(r"^(?:the\s+)?(?:final\s+)?answer(?:\s+is\b|\s*:)\s*", re.IGNORECASE)
# (opening, closing) pairs of decoration around a whole answer
_MARKUP = (("**", "**"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("\\boxed{", "}"), ("\\text{", "}"),
           ("\\textbf{", "}"))


def _unwrap_markup(text: str) -> str:
    """The answer inside one layer of decoration that wraps all of it (``**B**``, ``\\boxed{42}``,
    ``$x$``); the text itself when the marks do not pair up (``\\boxed{1} \\boxed{2}``, ``**1*``)."""
    for opening, closing in _MARKUP:
        if len(text) > len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing):
            inner = text[len(opening) : -len(closing)]
            if closing == "}" and not _braces_balanced(inner):
                continue
            if closing != "}" and (opening in inner or closing in inner or opening[-1] in (inner[0], inner[-1])):
                continue  # "$5$ or $6$", "\(5\) or \(6\)", "***": two wrapped parts, not one
            return inner.strip()
    return text


def _braces_balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def parse_literal(text: str | None) -> Any | None:
    """A JSON or Python literal (lists, dicts, strings, numbers), else None. Never evaluates code."""
    text = clean(text)
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    if _has_comment(text):
        return None  # Python drops comments: "[1, 2]  # or [2, 1]" would read as [1, 2]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # model text such as "1if" warns
            return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _has_comment(text: str) -> bool:
    """Whether Python would read part of `text` as a ``# comment`` (a ``#`` inside a string is not one)."""
    if "#" not in text:
        return False
    try:
        return any(token.type == tokenize.COMMENT for token in tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return True  # not Python: literal_eval refuses it anyway


def split_list(text: str | None, *, sentence: bool = False) -> list[str] | None:
    """Items of a flat list written any common way: ``[1, 2]``, ``1,2``, ``"A", "B"``, ``1 2``.

    Layout mode (default, puzzle answers): every bracket, comma, semicolon and whitespace run
    separates items. `sentence` mode (prose answers such as BBH word lists): the text is cleaned
    as a sentence, only one outer bracket pair is dropped and items split at commas and
    whitespace, so inner brackets stay part of an item. None for missing or oversized text.
    """
    text = clean(text, sentence=sentence)
    if text is None:
        return None
    if sentence:
        if len(text) >= 2 and text[0] + text[-1] in ("[]", "()", "{}"):
            text = text[1:-1]
        items = re.split(r"[\s,]+", text)
    else:
        for bracket in _BRACKETS:
            text = text.replace(bracket, " ")
        items = _TOKEN_SPLIT.split(text)
    items = [item.strip(_QUOTES) for item in items]
    return [item for item in items if item]


def parse_int(text: str | None) -> int | None:
    """An integer written as a number: ``-42``, ``+7``, ``1,234,567``, ``12.0`` or ``1e3``; None
    otherwise. Arithmetic is not read: ``-9*43`` is the question of a multiplication task, not its
    answer, and ``0/1`` ("Pass/Peng") names two answers."""
    text = _unwrap(clean(text))
    if not text:
        return None
    try:
        if _INT.fullmatch(text):
            return int(text)
        if _GROUPED_INT.fullmatch(text):
            return int(text.replace(",", ""))
        if _NUMBER.fullmatch(text):
            value = Fraction(text) if _SCIENTIFIC.fullmatch(text) is None else Fraction(float(text))
            return int(value) if value.denominator == 1 else None
    except (ValueError, OverflowError):  # more digits than int() reads, or 1e309
        pass
    return None


def parse_number(text: str | None) -> float | None:
    """A finite number: decimal, scientific, or an exact fraction/arithmetic like ``13/9``.

    Strict: no units, currency or thousands commas (`parse_quantity` reads those).
    """
    text = _unwrap(clean(text))
    if not text:
        return None
    if _NUMBER.fullmatch(text):
        value = float(text)
    else:
        try:
            value = float(evaluate_arithmetic(text).value)
        except (ValueError, OverflowError):
            return None
    return value if math.isfinite(value) else None


def _unwrap(text: str | None) -> str | None:
    """``[42]`` or ``(42)`` -> ``42``; leaves ``(1+2)*3`` alone."""
    if text and len(text) >= 2 and text[0] in "[(" and text[-1] in "])":
        inner = text[1:-1]
        if not any(ch in inner for ch in _BRACKETS):
            return inner.strip()
    return text


def number_matches(written: str, expected: float, *, rel_tol: float = NUMERIC_REL_TOL) -> bool:
    """Whether the number text `written` equals `expected` up to `rel_tol` or correct rounding.

    A value written with at least MIN_ROUNDED_DECIMALS decimals counts when it is `expected`
    rounded to that many places (the questions ask for no precision).
    """
    value = parse_number(written)
    if value is None:
        return False
    if math.isclose(value, expected, rel_tol=rel_tol, abs_tol=NUMERIC_ABS_TOL):
        return True
    match = re.fullmatch(r"[-+]?\d*\.(\d+)", written.strip())
    if match and len(match.group(1)) >= MIN_ROUNDED_DECIMALS:
        half_unit = 0.5 * 10 ** -len(match.group(1))
        return abs(value - expected) <= half_unit + NUMERIC_ABS_TOL
    return False


_DECORATED_NUMBER = re.compile(
    r"""^(?:[$€£¥~≈=]\s*)?                  # optional currency, "about" or "=" sign
        (?P<num>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|[-+]?\.\d+)
        (?:\s*%|\s*(?P<unit>[A-Za-z][A-Za-z\s\-]*))?$   # optional percent sign or a unit / noun
    """,
    re.VERBOSE,
)
# Words after a number that change what it says: a hedge, bound or negation ("8 or more", "8 at
# least", "8 roughly", "8 is wrong", "8 not 9" is not the claim "8") or a scale ("8 million",
# "8k" is not 8). A unit or noun ("8 apples", "4.67 dollars") may follow a number; these may not.
_NOT_A_UNIT = frozenset(
    """or nor not no never neither either maybe perhaps possibly probably wrong incorrect false
    than and but plus minus to vs versus
    least most more less fewer over under above below approximately roughly about around nearly almost
    ish max min maximum minimum
    half halves quarter quarters dozen dozens hundred hundreds thousand thousands million millions
    billion billions trillion trillions k mn bn""".split()
)


def _decorated_number(text: str | None) -> str | None:
    """The number of a decorated number answer ("$1,234.50", "8 apples"), commas dropped; None
    for other text, including a number followed by a hedge, negation or scale word."""
    text = clean(text, sentence=True)
    if text is None:
        return None
    match = _DECORATED_NUMBER.match(text)
    if match is None:
        return None
    unit = match.group("unit")
    if unit and _NOT_A_UNIT.intersection(re.split(r"[\s\-]+", unit.casefold())):
        return None
    return match.group("num").replace(",", "")


_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}


def number_text(text: str | None) -> str | None:
    """The bare number a decorated answer writes ("$1,234.50" → "1234.50", "8 apples" → "8",
    "2e-6" → "2e-6"), else None."""
    cleaned = clean(text, sentence=True)
    if cleaned is not None and _SCIENTIFIC.fullmatch(cleaned):
        return cleaned
    return _decorated_number(cleaned)


def parse_quantity(text: str | None) -> Fraction | None:
    """A number as prose writes it, exactly: thousands commas, sign, fraction, currency, unit or
    percent sign, or a number word; else None. ("1,234" → 1234, "-3.50" → -7/2, "$12" → 12,
    "8 apples" → 8, "1/2" → 1/2, "eight" → 8.) `parse_number` is the strict form for puzzles.
    """
    text = clean(text, sentence=True)
    if text is None:
        return None
    word = _NUMBER_WORDS.get(text.casefold())
    if word is not None:
        return Fraction(word)
    number = _decorated_number(text)
    if number is None:
        return None
    try:
        return Fraction(number)
    except (ValueError, ZeroDivisionError):
        return None


def parse_grid(text: str | None) -> list[list[str]] | None:
    """Rows of cell strings from a nested list literal or from lines of separated cells.

    A flat answer (one line, or a flat list) comes back as a single row; callers decide whether
    a flattened grid is acceptable.
    """
    text = clean(text)
    if not text:
        return None
    literal = parse_literal(text)
    if isinstance(literal, (list, tuple)) and literal:
        if all(isinstance(row, (list, tuple)) for row in literal):
            return [[_cell(c) for c in row] for row in literal]
        if not any(isinstance(c, (list, tuple, dict)) for c in literal):
            return [[_cell(c) for c in literal]]
    lines = [line for line in text.splitlines() if line.strip(" []\t")]
    rows = [split_list(line) or [] for line in lines]
    rows = [row for row in rows if row]
    return rows or None


def _cell(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def grid_cells(rows: list[list[str]] | None, n_rows: int, n_cols: int) -> list[str] | None:
    """Row-major cells when `rows` has the expected shape or is one flat row of n_rows*n_cols."""
    if not rows:
        return None
    if len(rows) == 1 and len(rows[0]) == n_rows * n_cols:
        return list(rows[0])
    if len(rows) == n_rows and all(len(row) == n_cols for row in rows):
        return [cell for row in rows for cell in row]
    return None


def parse_pairs(text: str | None) -> list[tuple[int, int]] | None:
    """Integer pairs written as ``0 3, 1 0``, ``(0,3), (1,0)`` or ``[[0, 3], [1, 0]]``."""
    text = clean(text)
    if not text:
        return None
    literal = parse_literal(text)
    if isinstance(literal, (list, tuple)) and all(isinstance(p, (list, tuple)) for p in literal):
        pairs = literal
    elif re.search(r"[\[(]", text):
        pairs = [re.split(r"[,\s]+", m.strip()) for m in re.findall(r"[\[(]([^\[\]()]*)[\])]", text)]
    else:
        pairs = [part.split() for part in re.split(r"[,;\n]", text) if part.strip()]
    result = []
    for pair in pairs:
        if len(pair) != 2:
            return None
        first, second = (parse_int(str(v)) for v in pair)
        if first is None or second is None:
            return None
        result.append((first, second))
    return result


class Evaluated:
    """An exact arithmetic result and the numbers it used, in source order."""

    __slots__ = ("value", "numbers")

    def __init__(self, value: Fraction, numbers: list[Fraction]):
        self.value = value
        self.numbers = numbers


_BINARY_OPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def evaluate_arithmetic(expression: str, *, allow_unary: bool = True, allow_float: bool = True) -> Evaluated:
    """Exactly evaluate numbers with + - * / and parentheses; raise ValueError for anything else.

    Also accepts the typographic operators ×, ÷ and −. Division by zero raises ValueError.
    `allow_unary`: signs such as ``-4``; `allow_float`: constants such as ``2.5`` (else integers only).
    """
    if not isinstance(expression, str) or len(expression) > MAX_ANSWER_CHARS:
        raise ValueError("expression missing or too long")
    text = expression.replace("×", "*").replace("÷", "/").replace("−", "-").replace("x", "*")
    if "#" in text:  # Python drops comments: "0  # or 1" would read as 0
        raise ValueError(f"a comment is not arithmetic: {expression!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # model text such as "1if" warns
            tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_EXPRESSION_NODES:
        raise ValueError("expression too long")
    numbers: list[Fraction] = []

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and (type(node.value) is int or (allow_float and type(node.value) is float)):
            number = Fraction(str(node.value)) if isinstance(node.value, float) else Fraction(node.value)
            numbers.append(number)
            return number
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError("division by zero")
            return _BINARY_OPS[type(node.op)](left, right)
        if allow_unary and isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = walk(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        raise ValueError(f"unsupported syntax in arithmetic: {type(node).__name__}")

    return Evaluated(walk(tree), numbers)


# --- options, yes/no, words -------------------------------------------------------------------

# "(B)", "B", "B)", "B.", "B:", "(B) circle", "B) circle", "Option B", "answer: (B)".
_OPTION = re.compile(
    r"""^(?:(?:the\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:\-]?\s*)?   # optional lead-in
        (?:\((?P<paren>[A-Za-z])\)(?P<paren_text>\s+.*)?                    # (B) or (B) circle
          |(?P<bare>[A-Z])(?:[).:](?P<bare_text>\s+.*)?)?)                  # B, B), B. circle
        $""",
    re.VERBOSE | re.DOTALL | re.IGNORECASE,
)
_OPTION_MARK = re.compile(r"\(([A-Z])\)")
# In the text after the chosen option: another option named as an option is ("C)", "C.", or a
# letter after "or"/"and"), which makes the answer a hedge such as "B) or C)" or "(B) or C".
# "A" and "I" after "or"/"and" inside a sentence are read as English words ("or a", "Jim or I
# went"), not as options; at the end of the text or before punctuation they are options.
_OTHER_OPTION = re.compile(
    r"""(?<![\w'’])\(?(?P<marked>[A-Z])(?:\)|[.:](?=\s|$))
      |(?i:\b(?:or|and|nor|vs\.?|versus)\s+(?:option\s+|choice\s+)?)
       (?:\((?P<paren>[A-Za-z])\)|(?P<bare>[B-HJ-Z](?![\w'’])|[b-hj-z](?![\w'’.])|[AI](?=\s*$|[,;:)])))""",
    re.VERBOSE,
)
# The whole text after "B." in "B. A." (read before sentence cleaning drops the final "."); a
# bare "I" without a mark is a word (one BBH option is the film "I").
_LONE_OPTION = re.compile(r"\((?P<paren>[A-Z])\)[.:]?|(?P<bare>[A-HJ-Z])[).:]?|(?P<marked_i>I)[).:]")
# ... or a statement that the chosen option is not the answer: "(B) is wrong", "B) is not it".
_NEGATED_OPTION = re.compile(
    r"\s*(?:is|was)(?:\s+not|n[’']t|\s+wrong|\s+incorrect|\s+false)"
    r"(?:\s+(?:the\s+)?(?:answer|correct|right|it|one|option|choice))?\s*",
    re.IGNORECASE,
)
_YES = frozenset({"yes", "y", "true"})
_NO = frozenset({"no", "n", "false"})


def text_equal(answer: str, expected: str) -> bool:
    """Case-insensitive equality after sentence cleaning."""
    given = clean(answer, sentence=True)
    return given is not None and given.casefold() == (clean(expected, sentence=True) or "").casefold()


def option_letter(text: str, letters: str | None = None) -> str | None:
    """The option letter an answer picks ("(B)", "B", "B) text", "Option B" → "B"), else None.

    A bare lower-case letter is not an option ("a" is also a word); "(b)" is. `letters`: the
    option letters the question offers (``"ABCD"``); when given, any other of them standing
    alone after the chosen option makes the answer a hedge, however it is joined ("(B) / C",
    "(B) & C", "(B) Wait, C"), except "A" and "I" followed by a word ("(B) A New Hope").
    """
    raw = clean(text)
    text = clean(text, sentence=True)
    if text is None or raw is None:
        return None
    match = _OPTION.match(text)
    if match is None or len(set(_OPTION_MARK.findall(text.upper()))) > 1:
        return None  # no option, or a hedge such as "(B) or (C)"
    if match.group("paren"):
        letter = match.group("paren").upper()
    elif match.group("bare").isupper():
        letter = match.group("bare")
    else:
        return None
    rest = _option_text(match)
    if _NEGATED_OPTION.fullmatch(rest):
        return None
    raw_match = _OPTION.match(_SPACES.sub(" ", raw))
    raw_rest = _option_text(raw_match) if raw_match else rest
    if _options_named_in(rest, raw_rest, bare_choice=bool(match.group("bare"))) - {letter}:
        return None  # a hedge such as "B) or C)", "B. A." or "(B) or C"
    if letters and {m.group(1) for m in _STANDALONE_CAPITAL.finditer(rest)} & (set(letters) - {letter}):
        return None  # a hedge such as "(B) / C" or "(B) or maybe C"
    return letter


# A capital letter on its own ("C" in "(B) / C", not in "O-line" or "Boyz N"... the caller's
# `letters` decide which count); "A" and "I" before a word are English ("A New Hope", "I think").
_STANDALONE_CAPITAL = re.compile(r"(?<![\w'’\-])([B-HJ-Z]|[AI](?!\s+\w))(?![\w'’\-])")


def _option_text(match: re.Match[str]) -> str:
    """What follows the chosen option: "circle" in "(B) circle"."""
    return match.group("paren_text") or match.group("bare_text") or ""


def _options_named_in(rest: str, raw_rest: str, *, bare_choice: bool) -> set[str]:
    """Option letters the text after the chosen option names (`raw_rest`: the same text before
    sentence cleaning dropped its final punctuation)."""
    named = {(m.group("marked") or m.group("paren") or m.group("bare")).upper() for m in _OTHER_OPTION.finditer(rest)}
    lone = _LONE_OPTION.fullmatch(raw_rest.strip())
    if lone:
        # "K. I." hedges; "(A) I." is option A, the film "I"
        other = lone.group("paren") or lone.group("bare") or (lone.group("marked_i") if bare_choice else None)
        named.update({other} if other else set())
    return named


def yes_no(text: str) -> bool | None:
    """True for yes/true, False for no/false (any case, quotes, trailing period), else None."""
    word = (clean(text, sentence=True) or "").casefold()
    if word in _YES:
        return True
    if word in _NO:
        return False
    return None


def choice_word(text: str, choices: tuple[str, ...]) -> str | None:
    """The one of `choices` the answer names (case-insensitive, decoration stripped), else None."""
    word = (clean(text, sentence=True) or "").casefold()
    for choice in choices:
        if word == choice.casefold():
            return choice
    return None


# --- mathematical equivalence (LaTeX answers) ------------------------------------------------

MAX_MATH_ANSWER_CHARS = 1_000  # MATH answers are short; longer text is not handed to the parser
_MATH_DELIMITERS = ("$", "\\(", "\\[")


def _as_latex_math(text: str) -> str:
    """Wrap bare text as ``$...$``: math-verify then reads ``(18,-18)``, ``\\sqrt{12}`` and
    ``8,\\!424,\\!000`` as maths; passed bare, it misreads them (measured with 0.9.0)."""
    text = text.replace("\\$", "").strip()  # a currency sign (``\\$675``) math-verify cannot read
    if text.count("$") % 2:
        text = text.replace("$", "")  # "$675": a currency sign, not a delimiter
    if any(mark in text for mark in _MATH_DELIMITERS) or "\\boxed" in text:
        return text
    return f"${text}$"


class _WithoutTimeoutNotice(logging.Filter):
    """math-verify warns once per process that its timeouts are off; they are off on purpose
    (see math_equivalent), and every verifier worker process would repeat the notice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_WithoutTimeoutNotice())


class UnreadableReference(ValueError):
    """math-verify cannot read the reference answer: a data problem, not a wrong answer."""


def math_equivalent(answer: str | None, gold: str) -> bool:
    """Whether `answer` is mathematically equal to the LaTeX `gold` (``\\frac{1}{2}`` = ``0.5``
    = ``1/2``; ``2\\sqrt{3}`` = ``\\sqrt{12}``), by math-verify.

    Order matters where the reference has one: a pair or interval (``(-4,1)``), or a bare list
    (``12,9``: "first BP, then a comma, then QT"), which math-verify reads as a set, so ``9,12``
    would score. Such a reference is compared as a tuple, a bare-list answer likewise, and an
    answer that is a set (``\\{9, 12\\}``, equal to ``\\{12, 9\\}``) is wrong.

    math-verify's own timeouts use SIGALRM, which fails outside the main thread and clobbers
    other alarms, so they are off here: callers bound the time (see reward_fns.scoring).
    """
    text = clean(answer)
    if not text or len(text) > MAX_MATH_ANSWER_CHARS:
        return False
    if sum(text.count(mark) for mark in ("\\(", "\\[")) > 1:
        return False  # "\(5\) or \(6\)": math-verify reads the first of several
    text = text.rstrip(".").rstrip()  # a full stop: math-verify misreads "\frac{3}{5}." (409 of 1,000 golds)
    expected = _parsed_reference(gold)
    if not expected:
        raise UnreadableReference(f"math-verify cannot read the reference answer {gold!r}")
    given = _parse_math(text)
    if _is_bare_list(gold, expected):
        expected = _parsed_reference(f"({gold.strip()})")
    if isinstance(expected[0], (Tuple, Interval)):
        if _is_bare_list(text, given):
            given = _parse_math(f"({_math_body(text)})")
        if any(isinstance(value, FiniteSet) for value in given):
            return False
    return bool(given) and verify(expected, given, timeout_seconds=None)


_SET_BRACES = re.compile(r"\\\{|\\lbrace|\\set")
_MATH_WRAPPERS = (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("\\boxed{", "}"))


def _math_body(text: str) -> str:
    """``12,9`` from ``$12,9$``, ``\\boxed{12,9}`` or ``\\(12,9\\)``: what to put in parentheses."""
    previous = None
    while text != previous:
        previous = text
        for opening, closing in _MATH_WRAPPERS:
            if len(text) > len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing):
                text = text[len(opening) : -len(closing)].strip()
    return text


def _is_bare_list(text: str, parsed: list) -> bool:
    """A comma list without braces that math-verify read as a set (``12,9``; ``31,250`` is a number)."""
    return bool(parsed) and isinstance(parsed[0], FiniteSet) and not _SET_BRACES.search(text)


def _parse_math(text: str) -> list:
    return parse(_as_latex_math(text), extraction_config=_MATH_EXTRACTION, parsing_timeout=None)


_MATH_EXTRACTION = [LatexExtractionConfig(), ExprExtractionConfig()]


@functools.lru_cache(maxsize=4096)
def _parsed_reference(gold: str) -> list:
    """A reference is parsed once per process (it is about half of a comparison's cost), not per answer."""
    return _parse_math(gold)
