"""Run data in the zygote lives only in buffers that are zeroed before the next fork.

The zygote forks every run's child from its own memory, so whatever it held of an earlier
run (code, output, error text) would be readable by the next run. It therefore never turns
run data into Python objects it cannot overwrite: code, output and status travel as raw
bytes through preallocated `bytearray`s, which `wipe` zeroes in place; the only `str` it
makes (decoding output to count characters) is zeroed by `scrub_str` before it is freed.

Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import ctypes
import sys

_STATE_OFFSET = 4 * ctypes.sizeof(ctypes.c_ssize_t)  # after refcount, type, length, hash
_KIND_SHIFT, _KIND_MASK, _COMPACT_BIT = 2, 0b111, 1 << 5


def wipe(buffer: bytearray, length: int | None = None) -> None:
    """Zero the first `length` bytes (default: all) of `buffer` in place."""
    length = len(buffer) if length is None else min(length, len(buffer))
    if length:
        ctypes.memset((ctypes.c_char * length).from_buffer(buffer), 0, length)


def scrub_str(text: str) -> None:
    """Zero a compact str's characters in place, just before its last reference goes.

    Only for strings this process made and alone holds (one- and zero-character strings are
    shared singletons and are left alone: they carry no more than one character anyway).
    """
    if len(text) < 2 or sys.getrefcount(text) > 3:  # the caller's name, the argument, getrefcount's
        return
    state = ctypes.c_uint32.from_address(id(text) + _STATE_OFFSET).value
    if not state & _COMPACT_BIT:
        return
    kind = (state >> _KIND_SHIFT) & _KIND_MASK
    data_bytes = (len(text) + 1) * kind
    start = id(text) + sys.getsizeof(text) - data_bytes
    ctypes.memset(start, 0, len(text) * kind)


class GrowingBuffer:
    """An appendable byte buffer whose old storage is zeroed whenever it grows."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.data = bytearray(capacity)
        self.length = 0

    def append(self, chunk: memoryview) -> None:
        end = self.length + len(chunk)
        if end > len(self.data):
            bigger = bytearray(max(end, 2 * len(self.data)))
            bigger[: self.length] = memoryview(self.data)[: self.length]
            wipe(self.data, self.length)
            self.data = bigger
        self.data[self.length : end] = chunk
        self.length = end

    def view(self) -> memoryview:
        return memoryview(self.data)[: self.length]

    def clear(self) -> None:
        wipe(self.data, self.length)
        self.length = 0
        if len(self.data) > self.capacity:  # one large frame must not keep every later fork big
            self.data = bytearray(self.capacity)
