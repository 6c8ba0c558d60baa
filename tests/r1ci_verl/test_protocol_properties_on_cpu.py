"""Property tests of the transcript protocol: fences, unicode, unterminated and several blocks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reward_fns import protocol

# Any unicode except surrogates; lines never start with a fence, so text stays "inside" a block.
_chars = st.characters(blacklist_categories=("Cs",))
_line = st.text(_chars, max_size=30).map(lambda s: s.replace("\n", " ")).filter(lambda s: not s.startswith("```"))
code_text = st.lists(_line, max_size=6).map("\n".join)
prose = code_text.map(lambda s: s.replace("<<<", "<< <").replace(">>>", "> >>"))
answer_text = st.text(_chars, min_size=1, max_size=20).filter(
    lambda s: "<<<" not in s and ">>>" not in s and not s.endswith(">") and s.strip()
)
other_lang = st.sampled_from(["bash", "", "text", "json", "pycon", "python-repl"])


def python_block(code: str, lang: str = "python") -> str:
    return f"```{lang}\n{code}\n```"


@given(before=prose, code=code_text, after=prose)
def test_closed_block_is_found_with_its_exact_code(before, code, after):
    text = f"{before}\n{python_block(code)}\n{after}"
    block = protocol.find_python_block(text)
    assert block is not None
    assert block.code == code + "\n"
    assert text[block.start : block.end] == python_block(code)


@given(before=prose, code=code_text)
def test_unterminated_block_is_not_run(before, code):
    text = f"{before}\n```python\n{code}"
    assert protocol.find_python_block(text) is None
    assert protocol.has_unclosed_fence(text)


@given(codes=st.lists(code_text, min_size=1, max_size=4), gap=prose)
def test_several_blocks_in_one_segment_come_in_order(codes, gap):
    text = f"\n{gap}\n".join(python_block(c) for c in codes)
    blocks = protocol.find_python_blocks(text)
    assert [b.code for b in blocks] == [c + "\n" for c in codes]
    assert protocol.find_python_block(text) == blocks[0]


@given(lang=other_lang, code=code_text, inner=code_text)
def test_other_languages_never_run_even_with_python_inside(lang, code, inner):
    text = f"{python_block(code, lang)}\nthen\n"
    assert protocol.find_python_block(text) is None
    # A python block after a foreign one is still found.
    assert protocol.find_python_block(text + python_block(inner)).code == inner + "\n"


@given(before=prose, hidden=answer_text, real=answer_text)
def test_answers_inside_code_do_not_count(before, hidden, real):
    code = f"print('<<<{hidden}>>>')"
    assert protocol.extract_answer(f"{before}\n{python_block(code)}\n") is None
    text = f"{before}\n{python_block(code)}\nSo the answer is <<<{real}>>>."
    assert protocol.extract_answer(text) == real.strip()


@given(first=answer_text, last=answer_text)
def test_last_answer_wins(first, last):
    assert protocol.extract_answer(f"<<<{first}>>> or rather <<<{last}>>>") == last.strip()


@given(body=st.text(_chars, max_size=60), preceding=st.sampled_from(["```", "```\n", ""]))
def test_results_block_is_counted_once_and_starts_on_its_own_line(body, preceding):
    block = protocol.format_results_block(body, preceding)
    text = preceding + block
    assert f"\n{protocol.RESULTS_HEADER}\n" in "\n" + text
    assert protocol.count_results_blocks(text) >= 1


@settings(max_examples=50)
@given(max_calls=st.integers(0, 50))
def test_call_limit_notice_is_not_an_answer(max_calls):
    assert protocol.extract_answer(protocol.call_limit_notice(max_calls)) is None


@given(code=code_text, answer=answer_text)
def test_well_formed_transcript_is_format_ok(code, answer):
    body = protocol.format_results_body(_Result(stdout="1\n"))
    text = python_block(code) + protocol.format_results_block(body, python_block(code)) + f"<<<{answer}>>>"
    assert protocol.format_ok(text)
    assert not protocol.format_ok(python_block(code) + f"\n<<<{answer}>>>")  # no results after code


class _Result:
    def __init__(self, stdout: str = "", stderr: str = "", timed_out: bool = False):
        self.stdout, self.stderr, self.timed_out = stdout, stderr, timed_out


@pytest.mark.parametrize("printed", ["", " ", "  \t", "\n\n"])
def test_whitespace_only_output_reads_no_output_everywhere(printed):
    """Agent loop (format_results_body) and SFT rendering show blank output the same way."""
    from r1ci_verl.data.sft_render import Step, render_trajectory
    from tool_env import ExecutionResult

    body = protocol.format_results_body(ExecutionResult(stdout=printed))
    assert body == protocol.NO_OUTPUT_NOTICE
    for output in (printed, ExecutionResult(stdout=printed)):
        text = render_trajectory([Step("", "print(' ')", output)], "So ", answer="x")
        assert f"{protocol.RESULTS_HEADER}\n{protocol.NO_OUTPUT_NOTICE}\n" in text
