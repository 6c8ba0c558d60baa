"""BBH verifiers against every bundled example: gold answers score 1, perturbations score 0."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import r1ci_verl
from reward_fns import bbh
from reward_fns.registry import Reference, get_verifier
from reward_fns.scoring import compute_score

BBH_DIR = Path(r1ci_verl.__file__).parent / "assets" / "bbh"
OPTION = re.compile(r"^\(([A-Z])\)$")


def load_rows() -> list[dict]:
    rows = []
    for path in sorted(BBH_DIR.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


ROWS = load_rows()


def score(row: dict, response: str) -> float:
    return compute_score(f"bbh/{row['task']}", response, row["answer"])["acc"]


def wrapped(answer: str) -> str:
    return f"Let me think this through step by step.\nThe answer is clear now.\n<<<{answer}>>>"


def test_every_bundled_task_is_registered():
    assert {p.stem for p in BBH_DIR.glob("*.jsonl")} == set(bbh.TASK_MATCHERS)
    assert len(bbh.TASK_MATCHERS) == 27
    for task in bbh.TASK_MATCHERS:
        assert callable(get_verifier(f"bbh/{task}"))


def test_every_stored_answer_scores_one():
    failures = [row["id"] for row in ROWS if score(row, wrapped(row["answer"])) != 1.0]
    assert len(ROWS) == 6511
    assert failures == []


def _options(row: dict) -> list[tuple[str, str]]:
    return re.findall(r"^\(([A-Z])\) (.*)$", row["question"], re.MULTILINE)


def test_option_letters_are_those_the_questions_offer():
    offered: dict[str, set[str]] = {}
    for row in ROWS:
        offered.setdefault(row["task"], set()).update(letter for letter, _ in _options(row))
    assert {task: "".join(sorted(letters)) for task, letters in offered.items() if letters} == bbh.OPTION_LETTERS


def test_every_option_written_with_its_own_text_names_that_option():
    """The hedge rules (another option letter after the chosen one) must not refuse an option's own
    text: "(D) Star Wars Episode V", "(B) A Separation", "(A) I"."""
    failures = []
    for row in ROWS:
        for letter, text in _options(row):
            for form in (f"({letter}) {text}", f"{letter}) {text}", f"{letter}. {text}"):
                if bbh.option_match(form, f"({letter})", bbh.OPTION_LETTERS[row["task"]]) is not True:
                    failures.append((row["id"], form))
    assert failures == []


def test_the_three_text_targets_are_scored_as_text():
    text_rows = {row["id"]: row for row in ROWS if row["task"] in ("movie_recommendation", "ruin_names")
                 and not OPTION.match(row["answer"])}
    assert set(text_rows) == {"movie_recommendation/163", "ruin_names/99", "ruin_names/144"}
    for row in text_rows.values():
        assert score(row, wrapped(row["answer"].upper() + ".")) == 1.0
        assert score(row, wrapped("(A)")) == 0.0
        assert score(row, wrapped(row["answer"].split(",")[0])) == 0.0


def perturbations(row: dict) -> list[str]:
    """Answers that must score 0 for this row."""
    task, answer = row["task"], row["answer"]
    wrong = ["", "(", "<<<", "I don't know", "A and B"]
    if (letter := OPTION.match(answer)) is not None:
        other = "A" if letter.group(1) != "A" else "B"
        wrong += [f"({other})", other, f"{other})", f"({letter.group(1)}", f"({letter.group(1)}) or ({other})"]
    elif answer in ("Yes", "No", "yes", "no", "True", "False"):
        flip = {"yes": "no", "no": "yes", "true": "false", "false": "true"}[answer.lower()]
        wrong += [flip, flip.capitalize(), f"{answer} and {flip}"]
    elif answer in ("valid", "invalid"):
        wrong += ["invalid" if answer == "valid" else "valid", "not valid"]
    elif re.fullmatch(r"-?\d+", answer):
        wrong += [str(int(answer) + 1), str(-int(answer) - 1), f"{answer}5"]
    elif task == "dyck_languages":
        wrong += [answer[:-1].strip() or "x", answer + " )", answer.replace(" ", "")[::-1] + "]"]
    elif task == "word_sorting":
        words = answer.split()
        if len(set(words)) > 1:
            wrong.append(" ".join(reversed(words)))
        wrong.append(" ".join(words[:-1]) if len(words) > 1 else answer + " extra")
    return [w for w in wrong if w.strip() != answer]


def test_perturbed_answers_score_zero():
    failures = []
    for row in ROWS:
        for answer in perturbations(row):
            if score(row, wrapped(answer)) != 0.0:
                failures.append((row["id"], answer))
    assert failures == []


def test_missing_or_malformed_answer_block_scores_zero():
    row = next(r for r in ROWS if r["task"] == "navigate")
    assert score(row, f"The answer is {row['answer']}") == 0.0
    assert score(row, f"<<{row['answer']}>>") == 0.0
    assert score(row, f"```python\nprint('<<<{row['answer']}>>>')\n```\n") == 0.0


@pytest.mark.parametrize(
    ("task", "target", "answer"),
    [
        ("date_understanding", "(B)", "B"),
        ("date_understanding", "(B)", "B) 12/25/1937"),
        ("date_understanding", "(B)", "(B) 12/25/1937"),
        ("date_understanding", "(B)", "Option (B)"),
        ("date_understanding", "(B)", " (b) "),
        ("causal_judgement", "Yes", "yes."),
        ("sports_understanding", "no", '"No"'),
        ("boolean_expressions", "False", "false"),
        ("formal_fallacies", "invalid", "Invalid"),
        ("object_counting", "12", "12 items"),
        ("multistep_arithmetic_two", "-1034", "-1,034"),
        ("dyck_languages", "] ) >", "])>"),
        ("dyck_languages", "] ) >", "], ), >"),
        ("word_sorting", "apple banana cherry", "apple, banana, cherry"),
        ("word_sorting", "apple banana cherry", "[apple, banana, cherry]"),
    ],
)
def test_tolerated_spellings(task, target, answer):
    verifier = get_verifier(f"bbh/{task}")
    assert verifier(answer, Reference(task=f"bbh/{task}", answer=target)) == 1.0
