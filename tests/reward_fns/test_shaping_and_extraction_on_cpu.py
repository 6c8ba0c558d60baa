"""Property tests: reward shaping arithmetic, answer extraction and normalisation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reward_fns.parsing import clean, option_letter, parse_quantity, split_list, yes_no
from reward_fns.protocol import RESULTS_HEADER, extract_answer, format_ok
from reward_fns.shaping import ShapingConfig, shaped_score

PAPER = ShapingConfig()


@given(correct=st.booleans(), well_formed=st.booleans(), calls=st.integers(0, 50))
def test_paper_shaping(correct, well_formed, calls):
    expected = (1.0 if correct else 0.0) + (0.1 if well_formed else -0.1) - (0.1 if calls > 6 else 0.0)
    assert shaped_score(correct, well_formed, calls, PAPER) == pytest.approx(expected)


@given(
    correct_reward=st.floats(0.01, 10),
    bonus=st.floats(0, 1),
    penalty=st.floats(0, 1),
    limit=st.integers(0, 10),
    excess=st.floats(0, 1),
    calls=st.integers(0, 20),
    well_formed=st.booleans(),
)
def test_correctness_always_adds_exactly_correct_reward(correct_reward, bonus, penalty, limit, excess, calls, well_formed):
    config = ShapingConfig(correct_reward, bonus, penalty, limit, excess)
    gain = shaped_score(True, well_formed, calls, config) - shaped_score(False, well_formed, calls, config)
    assert gain == pytest.approx(correct_reward)
    assert shaped_score(True, True, calls, config) >= shaped_score(True, False, calls, config)
    assert shaped_score(True, True, limit, config) >= shaped_score(True, True, limit + 1, config)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"format_bonus": -0.1}, "format_bonus must be a number >= 0"),
        ({"correct_reward": 0}, "correct_reward must be > 0"),
        ({"max_calls_without_penalty": 2.5}, "max_calls_without_penalty must be an int"),
        ({"excess_calls_penalty": "0.1"}, "excess_calls_penalty must be a number"),
        ({"bonus": 1}, "unknown ShapingConfig keys \\['bonus'\\]"),
    ],
)
def test_shaping_config_rejects_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        ShapingConfig.from_mapping(values)


# Answers as a model writes them: no angle brackets, no fences, not only whitespace.
answers = st.text(
    alphabet=st.characters(blacklist_characters="<>`", blacklist_categories=("Cs",)), min_size=1, max_size=40
).filter(lambda s: s.strip())
prose = st.text(alphabet=st.characters(blacklist_characters="<>`", blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=200)
@given(before=prose, answer=answers, after=prose)
def test_extraction_finds_the_wrapped_answer(before, answer, after):
    assert extract_answer(f"{before}<<<{answer}>>>{after}") == answer.strip()


@settings(max_examples=100)
@given(first=answers, last=answers, code_answer=answers)
def test_last_answer_outside_code_wins(first, last, code_answer):
    text = (
        f"<<<{first}>>>\n```python\nprint('<<<{code_answer}>>>')\n```\n{RESULTS_HEADER}\nok\n"
        f"So <<<{last}>>>\n```python\nx = '<<<{code_answer}>>>'\n```\n{RESULTS_HEADER}\n\n"
    )
    assert extract_answer(text) == last.strip()
    assert format_ok(text)


@given(answer=answers)
def test_format_requires_results_after_each_block(answer):
    assert not format_ok(f"```python\nprint(1)\n```\nno results\n<<<{answer}>>>")
    assert not format_ok(f"```python\nprint(1)\n<<<{answer}>>>")  # unclosed fence


# Option texts as BBH writes them: words, digits and punctuation, no other option letter.
option_text = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789 ,;-'!?/"), max_size=60)
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQR"


@given(letter=st.sampled_from(OPTION_LETTERS), text=option_text)
def test_option_letter_forms(letter, text):
    for form in (f"({letter})", letter, f"{letter})", f" ({letter}) ", f'"({letter})".', f"({letter}) {text}",
                 f"{letter}) {text}", f"Option {letter}: {text}"):
        assert option_letter(form) == letter, form
    assert option_letter(f"({letter}) or (Z)") is None


@given(letter=st.sampled_from(OPTION_LETTERS), other=st.sampled_from(OPTION_LETTERS), text=option_text)
def test_option_hedges_name_no_option(letter, other, text):
    """Two options in one answer pick neither, however the second is written."""
    if other == letter:
        return
    hedges = [f"({letter}) or ({other})", f"{letter}) or {other})", f"({letter}) or {other}", f"{letter}. {other}.",
              f"({letter}) {text} or ({other})", f"{letter} or {other}", f"({letter}) and {other}",
              f"({letter}) vs. {other}", f"({letter})\n({other})"]
    if other != "I":  # "(A) I" is option A, the film "I" (movie_recommendation/144)
        hedges.append(f"({letter}) {other}")
    for hedge in hedges:
        assert option_letter(hedge) is None, hedge


@given(n=st.integers(-10**9, 10**9))
def test_numbers_with_commas_units_and_decimals(n):
    assert parse_quantity(f"{n:,}") == n
    assert parse_quantity(f"{n} apples") == n
    assert parse_quantity(f"{n}.0") == n
    assert parse_quantity(f"{n} or {n + 1}") is None


@given(text=prose)
def test_sentence_cleaning_is_idempotent(text):
    assert clean(clean(text, sentence=True), sentence=True) == clean(text, sentence=True)


@given(words=st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), min_size=1, max_size=8))
def test_list_forms_split_to_the_same_items(words):
    assert split_list(" ".join(words), sentence=True) == words
    assert split_list(", ".join(words), sentence=True) == words
    assert split_list("[" + ", ".join(f'"{w}"' for w in words) + "]", sentence=True) == words


def test_yes_no_forms():
    assert [yes_no(t) for t in ("Yes", "yes.", '"NO"', "True", "false", "maybe", "yes no")] == [
        True, True, False, True, False, None, None,
    ]


fence_texts = st.lists(
    st.sampled_from(["```", "```python\n", "```bash\n", "\n", "x", " ", "`", "print(1)", "<<<a>>>", RESULTS_HEADER]),
    max_size=30,
).map("".join)


@settings(max_examples=300)
@given(text=fence_texts, pos=st.integers(0, 40))
def test_fast_fence_search_equals_regex_search(text, pos):
    from reward_fns import protocol

    for pattern in (protocol._ANY_OPEN_FENCE, protocol._CLOSE_FENCE):
        fast, slow = protocol._fence_search(pattern, text, pos), pattern.search(text, pos)
        assert (fast and fast.span()) == (slow and slow.span())
