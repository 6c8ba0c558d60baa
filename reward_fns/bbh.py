"""BIG-Bench-Hard verifiers: all 27 tasks, registered as ``bbh/<task>``.

Reference: ``Reference(task, answer=<target>, meta={})``. BBH targets come in a few shapes (option
letters, yes/no, True/False, valid/invalid, integers, bracket sequences, sorted words); each task
is mapped to the comparison its target needs. Three option-task rows carry a text target (their
options split a title at a comma), so option tasks fall back to text equality for such rows.
"""

from __future__ import annotations

import functools
import re
from typing import Callable

from reward_fns.parsing import (
    choice_word,
    clean,
    option_letter,
    parse_quantity,
    split_list,
    strip_markup,
    text_equal,
    yes_no,
)
from reward_fns.registry import Reference, register_verifier

FAMILY = "bbh"
_OPTION_TARGET = re.compile(r"^\(([A-Z])\)$")
_BRACKETS = frozenset("()[]{}<>")


def option_match(answer: str, target: str, letters: str | None = None) -> bool:
    """Same option letter as a "(B)" target, naming no other of the task's `letters`; text
    equality when the target is not a letter."""
    letter = _OPTION_TARGET.match(target.strip())
    if letter is None:
        return text_equal(answer, target)
    return option_letter(answer, letters) == letter.group(1)


# The option letters each option task's questions offer. Keep in sync with the bundled bbh/*.jsonl
# (tested): a letter outside them in an option's text ("John Q", "Episode V") is not an option.
OPTION_LETTERS: dict[str, str] = {
    "date_understanding": "ABCDEF",
    "disambiguation_qa": "ABCD",
    "geometric_shapes": "ABCDEFGHIJK",
    "hyperbaton": "AB",
    "logical_deduction_five_objects": "ABCDE",
    "logical_deduction_seven_objects": "ABCDEFG",
    "logical_deduction_three_objects": "ABC",
    "movie_recommendation": "ABCDE",
    "penguins_in_a_table": "ABCDE",
    "reasoning_about_colored_objects": "ABCDEFGHIJKLMNOPQR",
    "ruin_names": "ABCDEFGHIJK",
    "salient_translation_error_detection": "ABCDEF",
    "snarks": "AB",
    "temporal_sequences": "ABCD",
    "tracking_shuffled_objects_five_objects": "ABCDE",
    "tracking_shuffled_objects_seven_objects": "ABCDEFG",
    "tracking_shuffled_objects_three_objects": "ABC",
}


def yes_no_match(answer: str, target: str) -> bool:
    """yes/no and True/False targets: the answer must state the same truth value."""
    return _same_parsed(yes_no, answer, target, "yes/no or True/False")


def valid_invalid_match(answer: str, target: str) -> bool:
    """formal_fallacies: the whole answer must be the word "valid" or "invalid"."""
    return choice_word(answer, ("valid", "invalid")) == (clean(target, sentence=True) or "").casefold()


def integer_match(answer: str, target: str) -> bool:
    """Integer targets: numerically equal (commas, units, "24.0" and number words tolerated)."""
    return _same_parsed(parse_quantity, answer, target, "a number")


def _same_parsed(parse: Callable[[str], object], answer: str, target: str, kind: str) -> bool:
    """Answer and target parse to the same value; a target that does not parse is bad data, not a miss."""
    given, expected = parse(answer), parse(target)
    if expected is None:
        raise ValueError(f"target {target!r} is not {kind}")
    return given is not None and given == expected


def dyck_match(answer: str, target: str) -> bool:
    """dyck_languages: the same closing brackets in order; spaces and commas do not matter."""
    cleaned = (clean(answer, sentence=True) or "").replace(",", "")
    if any(not ch.isspace() and ch not in _BRACKETS for ch in cleaned):
        return False
    closing = "".join(cleaned.split())
    return bool(closing) and closing == "".join(target.split())


def word_list_match(answer: str, target: str) -> bool:
    """word_sorting: the same words in the same order, separated by spaces or commas."""
    return [w.casefold() for w in split_list(answer, sentence=True) or []] == [w.casefold() for w in target.split()]


Matcher = Callable[[str, str], bool]

# task → how its target is compared. Keep in sync with the bundled bbh/*.jsonl (tested).
TASK_MATCHERS: dict[str, Matcher] = {
    "boolean_expressions": yes_no_match,  # True / False
    "causal_judgement": yes_no_match,
    "date_understanding": option_match,
    "disambiguation_qa": option_match,
    "dyck_languages": dyck_match,
    "formal_fallacies": valid_invalid_match,
    "geometric_shapes": option_match,
    "hyperbaton": option_match,
    "logical_deduction_five_objects": option_match,
    "logical_deduction_seven_objects": option_match,
    "logical_deduction_three_objects": option_match,
    "movie_recommendation": option_match,  # one text target: "Monsters, Inc"
    "multistep_arithmetic_two": integer_match,
    "navigate": yes_no_match,
    "object_counting": integer_match,
    "penguins_in_a_table": option_match,
    "reasoning_about_colored_objects": option_match,
    "ruin_names": option_match,  # two text targets
    "salient_translation_error_detection": option_match,
    "snarks": option_match,
    "sports_understanding": yes_no_match,
    "temporal_sequences": option_match,
    "tracking_shuffled_objects_five_objects": option_match,
    "tracking_shuffled_objects_seven_objects": option_match,
    "tracking_shuffled_objects_three_objects": option_match,
    "web_of_lies": yes_no_match,
    "word_sorting": word_list_match,
}


def _make_verifier(task: str, matcher: Matcher):
    def verify(answer: str, reference: Reference) -> float:
        if not isinstance(reference.answer, str):
            raise TypeError(f"{FAMILY}/{task}: reference answer must be a str, got {reference.answer!r}")
        return 1.0 if matcher(strip_markup(answer), reference.answer) else 0.0

    verify.__name__ = f"verify_{task}"
    verify.__doc__ = f"BBH {task}: {matcher.__doc__}"
    return verify


for _task, _matcher in TASK_MATCHERS.items():
    if _task in OPTION_LETTERS:
        _matcher = functools.partial(option_match, letters=OPTION_LETTERS[_task])
        _matcher.__doc__ = option_match.__doc__
    register_verifier(f"{FAMILY}/{_task}", _make_verifier(_task, _matcher))
