"""Tolerant answer normalisation shared by exact-match verifiers.

Models decorate answers: ``<<< (B) >>>``, ``<<<"yes".>>>``, ``<<<1,234 apples>>>``. These helpers
strip the decoration a grader would ignore and nothing more, so a wrong answer stays wrong.
Each returns None when the text does not have the expected shape; callers score None as 0.
"""

from __future__ import annotations

import re
from fractions import Fraction

_QUOTES = "\"'`“”‘’"
_TRAILING_PUNCT = ".!;:,"
_SPACES = re.compile(r"\s+")

# "(B)", "B", "B)", "B.", "B:", "(B) circle", "B) circle", "Option B", "answer: (B)".
_OPTION = re.compile(
    r"""^(?:(?:the\s+)?(?:answer|option|choice)(?:\s+is)?\s*[:\-]?\s*)?   # optional lead-in
        (?:\((?P<paren>[A-Za-z])\)(?:\s+.*)?                              # (B) or (B) circle
          |(?P<bare>[A-Z])(?:[).:](?:\s+.*)?)?)                          # B, B), B. circle
        $""",
    re.VERBOSE | re.DOTALL | re.IGNORECASE,
)
_OPTION_MARK = re.compile(r"\(([A-Z])\)")
_NUMBER = re.compile(
    r"""^(?:[$€£¥~≈=]\s*)?                  # optional currency, "about" or "=" sign
        (?P<num>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|[-+]?\.\d+)
        (?:\s*%|\s*[A-Za-z][A-Za-z\s\-]*)?$   # optional percent sign or a unit / noun
    """,
    re.VERBOSE,
)
_SCIENTIFIC = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)[eE][-+]?\d+")
_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_YES = frozenset({"yes", "y", "true"})
_NO = frozenset({"no", "n", "false"})


def clean_text(text: str) -> str:
    """Collapse whitespace, drop wrapping quotes/backticks and trailing sentence punctuation."""
    text = _SPACES.sub(" ", text).strip()
    previous = None
    while text != previous:
        previous = text
        text = text.rstrip(_TRAILING_PUNCT).strip()
        if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
            text = text[1:-1].strip()
    return text


def text_equal(answer: str, expected: str) -> bool:
    """Case-insensitive equality after clean_text."""
    return clean_text(answer).casefold() == clean_text(expected).casefold()


def option_letter(text: str) -> str | None:
    """The option letter an answer picks ("(B)", "B", "B) text", "Option B" → "B"), else None.

    A bare lower-case letter is not an option ("a" is also a word); "(b)" is.
    """
    text = clean_text(text)
    match = _OPTION.match(text)
    if match is None or len(set(_OPTION_MARK.findall(text.upper()))) > 1:
        return None  # no option, or a hedge such as "(B) or (C)"
    if match.group("paren"):
        return match.group("paren").upper()
    bare = match.group("bare")
    return bare if bare.isupper() else None


def parse_number(text: str) -> Fraction | None:
    """A number with optional thousands commas, sign, fraction, unit or percent sign, else None.

    "1,234" → 1234, "-3.50" → -7/2, "$12" → 12, "8 apples" → 8, "1/2" → 1/2, "eight" → 8.
    """
    text = clean_text(text)
    word = _NUMBER_WORDS.get(text.casefold())
    if word is not None:
        return Fraction(word)
    match = _NUMBER.match(text)
    if match is None:
        return None
    try:
        return Fraction(match.group("num").replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def number_text(text: str) -> str | None:
    """The bare number a decorated answer writes ("$1,234.50" → "1234.50", "8 apples" → "8"), else None."""
    text = clean_text(text)
    if _SCIENTIFIC.fullmatch(text):
        return text
    match = _NUMBER.match(text)
    return None if match is None else match.group("num").replace(",", "")


def yes_no(text: str) -> bool | None:
    """True for yes/true, False for no/false (any case, quotes, trailing period), else None."""
    word = clean_text(text).casefold()
    if word in _YES:
        return True
    if word in _NO:
        return False
    return None


def choice_word(text: str, choices: tuple[str, ...]) -> str | None:
    """The one of `choices` the answer names (case-insensitive, decoration stripped), else None."""
    word = clean_text(text).casefold()
    for choice in choices:
        if word == choice.casefold():
            return choice
    return None


def split_list(text: str) -> list[str]:
    """Items of a list written as "a, b, c", "a b c", "[a, b, c]" or '["a", "b"]'."""
    text = clean_text(text)
    if len(text) >= 2 and text[0] + text[-1] in ("[]", "()", "{}"):
        text = text[1:-1]
    items = re.split(r"[\s,]+", text)
    return [item.strip(_QUOTES) for item in items if item.strip(_QUOTES)]
