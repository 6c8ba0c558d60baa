"""Head+tail truncation: bounded memory and size, nothing lost below the limit, exact counts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tool_env.truncate import HeadTailText, truncate_text, truncation_notice


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.text(max_size=50), max_size=30), limit=st.integers(2, 120))
def test_fed_in_chunks_equals_truncating_the_whole(chunks: list[str], limit: int) -> None:
    whole = "".join(chunks)
    buffer = HeadTailText(limit)
    for chunk in chunks:
        buffer.feed(chunk)
    expected, truncated = truncate_text(whole, limit)
    assert buffer.text() == expected and buffer.truncated == truncated
    if len(whole) <= limit:
        assert expected == whole and not truncated
    else:
        head, tail = limit // 2, limit - limit // 2
        assert truncated
        assert expected == whole[:head] + truncation_notice(len(whole) - limit) + whole[len(whole) - tail :]


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200), limit=st.integers(2, 64), cut=st.integers(1, 7))
def test_utf8_split_across_chunks_decodes_exactly(text: str, limit: int, cut: int) -> None:
    data = text.encode()
    buffer = HeadTailText(limit)
    for start in range(0, len(data), cut):
        buffer.feed_bytes(data[start : start + cut])
    assert buffer.text() == truncate_text(text, limit)[0]


def test_memory_stays_bounded_for_a_huge_stream() -> None:
    buffer = HeadTailText(100)
    for _ in range(10_000):
        buffer.feed("x" * 1000)
    assert buffer.total_chars == 10_000_000
    assert sum(len(piece) for piece in buffer._tail) < 100 + 1000  # at most one chunk beyond the tail
    assert "[truncated 9999900 characters]" in buffer.text()


def test_invalid_utf8_is_replaced_not_raised() -> None:
    buffer = HeadTailText(100)
    buffer.feed_bytes(b"ok\xff\xfe")
    assert buffer.text() == "ok\ufffd\ufffd"


def test_limit_must_be_sane() -> None:
    with pytest.raises(ValueError, match="limit"):
        HeadTailText(1)
