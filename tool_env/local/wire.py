"""Length-prefixed JSON frames over pipes: the only language host, zygote and child speak.

Stdlib only, because this module is imported inside the sandbox before anything else.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 256 * 1024 * 1024  # a corrupt length prefix must not allocate the world


class FrameError(RuntimeError):
    """The peer closed the pipe mid-frame or sent something that is not a frame."""


def encode_frame(obj: Any) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def write_frame(fd: int, obj: Any) -> None:
    data = memoryview(encode_frame(obj))
    while data:
        data = data[os.write(fd, data) :]


def read_exact(fd: int, size: int) -> bytes | None:
    """Blocking read of exactly `size` bytes; None on a clean EOF before the first byte."""
    chunks = []
    remaining = size
    while remaining:
        chunk = os.read(fd, remaining)
        if not chunk:
            if remaining == size:
                return None
            raise FrameError(f"pipe closed after {size - remaining} of {size} bytes")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_body(fd: int) -> bytes | None:
    """Blocking read of one length-prefixed body; None when the peer closed before the header."""
    header = read_exact(fd, HEADER.size)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
    body = read_exact(fd, length) if length else b""
    if body is None:
        raise FrameError("pipe closed between header and body")
    return body


def read_code(fd: int) -> str | None:
    """Blocking read of one code frame (length prefix, raw UTF-8); None when the peer closed."""
    body = _read_body(fd)
    return None if body is None else body.decode("utf-8", "surrogatepass")


def read_frame(fd: int) -> Any | None:
    """Blocking read of one frame; None when the peer closed the pipe cleanly."""
    body = _read_body(fd)
    return None if body is None else json.loads(body)


PAYLOAD_KEY = "payload_bytes"  # a frame with this key is followed by that many raw bytes


def read_payload_into(fd: int, buffer: bytearray) -> None:
    """Blocking read filling `buffer` (a frame's raw payload) in place: no copy is left behind."""
    view = memoryview(buffer)
    while view:
        got = os.readv(fd, [view])
        if not got:
            raise FrameError("pipe closed inside a payload")
        view = view[got:]


class FrameReader:
    """Incremental frame parser for non-blocking pipes (fed whatever `os.read` returned).

    A frame whose object has `PAYLOAD_KEY` is returned once its raw payload has arrived,
    with the bytes under ``"payload"``.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiting: dict[str, Any] | None = None  # a header whose payload is still arriving

    def feed(self, data: bytes) -> list[Any]:
        self._buffer += data
        frames = []
        while True:
            if self._waiting is not None:
                size = int(self._waiting[PAYLOAD_KEY])
                if len(self._buffer) < size:
                    break
                frame, self._waiting = self._waiting, None
                frame["payload"] = bytes(self._buffer[:size])
                del self._buffer[:size]
                frames.append(frame)
                continue
            if len(self._buffer) < HEADER.size:
                break
            (length,) = HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME_BYTES:
                raise FrameError(f"frame of {length} bytes exceeds {MAX_FRAME_BYTES}")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frame = json.loads(bytes(self._buffer[HEADER.size : end]))
            del self._buffer[:end]
            if isinstance(frame, dict) and frame.get(PAYLOAD_KEY):
                if int(frame[PAYLOAD_KEY]) > MAX_FRAME_BYTES:
                    raise FrameError(f"payload of {frame[PAYLOAD_KEY]} bytes exceeds {MAX_FRAME_BYTES}")
                self._waiting = frame
                continue
            frames.append(frame)
        return frames
