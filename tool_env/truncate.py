"""Bounded output capture: keep the head and the tail of a stream, drop the middle.

The model needs the beginning (what the program printed first) and the end (the final
answer or the traceback); the middle of a huge output is noise that would blow the context
and the parent's memory. Text is fed incrementally, so memory stays O(limit).
"""

from __future__ import annotations

import codecs
from collections import deque


def truncation_notice(dropped_chars: int) -> str:
    """The marker the model sees where output was cut."""
    return f"\n... [truncated {dropped_chars} characters] ...\n"


class HeadTailText:
    """Accumulates decoded text, keeping at most `limit` characters (half head, half tail)."""

    def __init__(self, limit: int) -> None:
        if limit < 2:
            raise ValueError(f"limit must be >= 2, got {limit}")
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.total_chars = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed_bytes(self, data: bytes, final: bool = False) -> None:
        self.feed(self._decoder.decode(data, final))

    def feed(self, text: str) -> None:
        if not text:
            return
        self.total_chars += len(text)
        room = self.head_limit - self._head_len
        if room > 0:
            self._head.append(text[:room])
            self._head_len += min(room, len(text))
            text = text[room:]
            if not text:
                return
        self._tail.append(text)
        self._tail_len += len(text)
        while self._tail_len - len(self._tail[0]) >= self.tail_limit:
            self._tail_len -= len(self._tail.popleft())

    @property
    def truncated(self) -> bool:
        return self.total_chars > self.head_limit + self.tail_limit

    def text(self) -> str:
        """The kept text, with a notice naming how many characters were dropped."""
        self.feed(self._decoder.decode(b"", True))
        head = "".join(self._head)
        tail = "".join(self._tail)
        if not self.truncated:
            return head + tail
        tail = tail[len(tail) - self.tail_limit :]
        return head + truncation_notice(self.total_chars - len(head) - len(tail)) + tail


def truncate_text(text: str, limit: int) -> tuple[str, bool]:
    """Head+tail truncation of an already complete string; returns (text, truncated)."""
    buffer = HeadTailText(limit)
    buffer.feed(text)
    return buffer.text(), buffer.truncated
