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
from tool_env.truncate import HeadTailText, truncation_notice

CORRUPT_STATUS = {"name": "WorkerCrashed", "message": "the run corrupted its status channel", "traceback": ""}


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
        reply["error"], reply["exit_code"] = parse_status(payload[offset:])
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


def parse_status(frame: bytes) -> tuple[dict[str, str] | None, int | None]:
    try:
        (length,) = HEADER.unpack_from(frame)
        status = json.loads(frame[HEADER.size : HEADER.size + length])
        return status.get("error"), status.get("exit_code")
    except (ValueError, AttributeError, TypeError, struct.error):
        return dict(CORRUPT_STATUS), None
