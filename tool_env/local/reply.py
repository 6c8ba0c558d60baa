"""Host side of a run's reply: raw stream bytes and the child's status frame become text.

The zygote sends each stream's first and last bytes and its character count
(`capture.StreamBuffer`); the text and truncation notice come out exactly as
`tool_env.truncate.HeadTailText` makes them from the whole stream.
"""

from __future__ import annotations

import codecs
import json
import struct
from typing import Any

from tool_env.local.wire import HEADER
from tool_env.truncate import HeadTailText, truncate_text, truncation_notice

CORRUPT_STATUS = {"name": "WorkerCrashed", "message": "the run corrupted its status channel", "traceback": ""}
ERROR_FIELDS = frozenset({"name", "message", "traceback"})


def assemble(header: dict[str, Any], payload: bytes, max_output_chars: int) -> dict[str, Any]:
    """The reply the sandbox expects (stdout, stderr, flags, error, exit_code, ...)."""
    reply = dict(header)
    offset = 0
    for name in ("stdout", "stderr"):
        meta = header[name]
        kept = meta["head"] + meta["tail"]
        reply[name], reply[f"{name}_truncated"] = stream_text(
            payload[offset : offset + meta["head"]],
            payload[offset + meta["head"] : offset + kept],
            meta,
            max_output_chars,
        )
        offset += kept
    if header.get("status") == "frame":
        reply["error"], reply["exit_code"] = parse_status(payload[offset:], max_output_chars)
        if reply["error"] == CORRUPT_STATUS:
            reply["crash_cause"] = "code"
    reply.pop("status", None)
    return reply


def stream_text(head: bytes, tail: bytes, meta: dict[str, int], limit: int) -> tuple[str, bool]:
    if meta["head"] + meta["tail"] == meta["bytes"]:  # nothing was dropped: the whole stream
        buffer = HeadTailText(limit)
        buffer.feed_bytes(head + tail, final=True)
        return buffer.text(), buffer.truncated
    probe = HeadTailText(limit)  # the same split of the limit into head and tail
    head_text = codecs.utf_8_decode(head, "replace", False)[0][: probe.head_limit]
    tail_text = codecs.utf_8_decode(tail, "replace", True)[0][-probe.tail_limit :]
    dropped = meta["chars"] - len(head_text) - len(tail_text)
    return head_text + truncation_notice(dropped) + tail_text, True


def parse_status(frame: bytes, max_chars: int) -> tuple[dict[str, str] | None, int | None]:
    """The child's ``{"error": None | {name, message, traceback}, "exit_code": int}``.

    Run code can write the status pipe itself, so the frame is checked as untrusted input:
    anything but exactly that shape (an error that is a string or lacks its name, fields that
    are not strings, a nesting deep enough to exhaust the parser's recursion) is a corrupt
    channel, never an exception in the caller, and the text is capped like the child caps it.
    """
    try:
        (length,) = HEADER.unpack_from(frame)
        status = json.loads(frame[HEADER.size : HEADER.size + length])
    except (ValueError, RecursionError, struct.error):
        return dict(CORRUPT_STATUS), None
    if not isinstance(status, dict) or type(status.get("exit_code")) is not int:
        return dict(CORRUPT_STATUS), None
    error = status.get("error")
    if error is None:
        return None, status["exit_code"]
    if not isinstance(error, dict) or set(error) != ERROR_FIELDS or any(type(v) is not str for v in error.values()):
        return dict(CORRUPT_STATUS), None
    return {key: error_text(value, max_chars) for key, value in error.items()}, status["exit_code"]


def error_text(value: str, max_chars: int) -> str:
    """A field of an error record as text the caller can use: capped, and encodable.

    A Python string may hold a lone surrogate (``ValueError('\\udcff')``), which JSON
    carries but no UTF-8 consumer accepts (a tokenizer raised on the model's next turn): it
    is written as ``\\udcff``, as the child's stderr writes the same traceback.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return truncate_text(value, max_chars)[0]
