"""The zygote keeps raw head/tail bytes of each stream; the host must rebuild exactly the text
`HeadTailText` makes from the whole stream, for any bytes (invalid UTF-8 included) and any
way the pipe splits them."""

from __future__ import annotations

import codecs
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from tool_env.local.capture import new_capture
from tool_env.local.reply import stream_text
from tool_env.local.scrub import GrowingBuffer, scrub_str
from tool_env.local.utf8count import count_utf8_chars
from tool_env.truncate import HeadTailText

PIECES = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\xe2\x82", b"\xac", b"\xf0\x9f\x98", b"\x80\x80\x80", b"\xff", "é".encode(), "😀".encode()]),
)


def captured_text(chunks: list[bytes], limit: int) -> tuple[str, bool]:
    stream = new_capture(limit).stdout
    read_fd, write_fd = os.pipe()
    try:
        for chunk in chunks:
            if chunk:
                os.write(write_fd, chunk)
                assert stream.read_from(read_fd) == len(chunk)
        stream.finish()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    head, first, second = stream.views()
    return stream_text(bytes(head), bytes(first) + bytes(second), stream.meta(), limit)


def expected_text(chunks: list[bytes], limit: int) -> tuple[str, bool]:
    buffer = HeadTailText(limit)
    buffer.feed_bytes(b"".join(chunks), final=True)
    return buffer.text(), buffer.truncated


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.lists(PIECES, max_size=12).map(b"".join), max_size=12), limit=st.integers(2, 40))
def test_head_tail_bytes_rebuild_the_same_text_as_the_whole_stream(chunks, limit) -> None:
    assert captured_text(chunks, limit) == expected_text(chunks, limit)


def test_long_stream_with_multibyte_characters_and_garbage() -> None:
    chunks = [("é😀a".encode() + b"\xff\x80") * 997] * 5
    assert captured_text(chunks, 100) == expected_text(chunks, 100)


def test_wipe_zeroes_everything_a_run_left_in_the_capture() -> None:
    capture = new_capture(64)
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"SECRET-" * 100)
        capture.stdout.read_from(read_fd)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    capture.status.append(memoryview(b"SECRET-status"))
    capture.wipe()
    for buffer in (capture.stdout.head, capture.stdout.tail, capture.stdout.chunk, capture.status.data):
        assert not any(buffer)


def test_growing_buffer_zeroes_the_storage_it_leaves() -> None:
    buffer = GrowingBuffer(8)
    buffer.append(memoryview(b"SECRET!!"))
    old = buffer.data
    buffer.append(memoryview(b"more"))
    assert not any(old) and bytes(buffer.view()) == b"SECRET!!more"


def test_scrub_str_zeroes_a_decoded_string_in_place() -> None:
    for raw in (b"plain ascii secret", "latin é secret".encode(), "wide € secret".encode(), "astral 😀 secret".encode()):
        text = raw.decode()
        scrub_str(text)
        assert set(text) == {"\0"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=70_000), min_size=1, max_size=6), st.integers(1, 64))
def test_wipe_zeroes_every_byte_a_run_wrote(chunks: list[bytes], limit: int) -> None:
    """`wipe` zeroes only what the run wrote (for speed); nothing of the run may survive it,
    however the output filled the head, wrapped the tail ring or filled the read chunk."""
    capture = new_capture(limit)
    stream = capture.stdout
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                sent = os.write(write_fd, view[: 1 << 16])
                view = view[sent:]
                while stream.read_from(read_fd):
                    pass
    finally:
        os.close(read_fd)
        os.close(write_fd)
    stream.finish()
    capture.wipe()
    assert not any(stream.head) and not any(stream.tail) and not any(stream.chunk)


UTF8_PIECES = st.lists(
    st.one_of(st.binary(max_size=6), st.sampled_from([b"\xed\xac", b"\xed\xa0\x80", b"\xe0\x80", b"\xf4\x90", b"\xc0\xaf",
                                                      b"\xe2\x82", "\u20ac".encode(), "\U0001f600".encode()])),
    max_size=8,
).map(b"".join)


@settings(max_examples=500, deadline=None)
@given(data=UTF8_PIECES, final=st.booleans())
def test_character_count_matches_cpythons_decoder_without_decoding(data: bytes, final: bool) -> None:
    text, used = codecs.utf_8_decode(data, "replace", final)
    assert count_utf8_chars(memoryview(data), final) == (len(text), used)


def test_counting_output_builds_no_decoded_copy(monkeypatch) -> None:
    """A decoded str's intermediate buffers are freed unzeroed in the zygote, where the next
    child would inherit them: the count must come from the bytes alone."""
    def no_decoding(*args, **kwargs):
        raise AssertionError("output was decoded in the zygote")

    monkeypatch.setattr(codecs, "utf_8_decode", no_decoding)
    chunks = [("secret-" * 50 + "\u20ac" + "secret-" * 50).encode(), b"\xe2\x82", b"\xac tail \xff"]
    stream = new_capture(40).stdout
    read_fd, write_fd = os.pipe()
    try:
        for chunk in chunks:
            os.write(write_fd, chunk)
            stream.read_from(read_fd)
        stream.finish()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert stream.meta()["chars"] == len(b"".join(chunks).decode("utf-8", "replace"))


def test_growing_buffer_returns_to_its_capacity_when_cleared() -> None:
    """One huge status frame must not leave every later fork of the zygote holding its pages."""
    buffer = GrowingBuffer(16)
    buffer.append(memoryview(b"x" * 10_000))
    buffer.clear()
    assert len(buffer.data) == 16 and buffer.length == 0


def test_status_frame_past_the_cap_is_corrupt_before_it_is_read() -> None:
    from tool_env.local.capture import MAX_STATUS_BYTES, _read_status
    from tool_env.local.wire import HEADER

    capture = new_capture(40)
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, HEADER.pack(MAX_STATUS_BYTES + 1) + b"{")
        _read_status(read_fd, bytearray(4096), capture)
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert capture.status_done and capture.status_corrupt
