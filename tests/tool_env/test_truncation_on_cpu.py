"""The shared head+tail output cap (tool_env.truncation)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tool_env.truncation import truncate_head_tail


def test_short_text_is_returned_unchanged() -> None:
    assert truncate_head_tail("hello\n", 64) == ("hello\n", False)
    assert truncate_head_tail("x" * 64, 64) == ("x" * 64, False)


def test_long_text_keeps_head_and_tail_and_says_how_much_was_dropped() -> None:
    text = "HEAD" + "m" * 10_000 + "TAIL"
    capped, truncated = truncate_head_tail(text, 200)
    assert truncated
    assert capped.startswith("HEAD") and capped.endswith("TAIL")
    assert len(capped) <= 200
    dropped = int(capped.split("[... ")[1].split(" characters")[0])
    head, tail = capped.split("\n[... ")[0], capped.split("truncated ...]\n")[1]
    assert len(head) + len(tail) + dropped == len(text)


@given(st.text(max_size=3000), st.integers(min_value=64, max_value=2000))
def test_cap_is_never_exceeded_and_prefix_suffix_are_original(text: str, limit: int) -> None:
    capped, truncated = truncate_head_tail(text, limit)
    assert len(capped) <= limit
    assert truncated == (len(text) > limit)
    if truncated:
        head, tail = capped.split("\n[... ", 1)[0], capped.rsplit("truncated ...]\n", 1)[1]
        assert text.startswith(head) and text.endswith(tail)


def test_negative_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        truncate_head_tail("abc", -1)
