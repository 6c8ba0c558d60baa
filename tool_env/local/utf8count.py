"""Count the characters UTF-8 bytes decode to, without decoding them.

Decoding output to count it would build `str` objects whose intermediate buffers CPython frees
without zeroing, so a later run forked from the zygote could find an earlier run's output in
its inherited heap. These regular expressions split bytes exactly as CPython's
``utf_8_decode(..., "replace")`` does (one character per valid sequence, one U+FFFD per
maximal ill-formed subpart), and ``subn`` counts the pieces in C without copying any of them.

Stdlib only: this runs inside the sandbox.
"""

from __future__ import annotations

import re

_CONT = rb"[\x80-\xbf]"
_VALID = (
    rb"[\x00-\x7f]|[\xc2-\xdf]" + _CONT
    + rb"|\xe0[\xa0-\xbf]" + _CONT + rb"|[\xe1-\xec\xee\xef]" + _CONT + rb"{2}|\xed[\x80-\x9f]" + _CONT
    + rb"|\xf0[\x90-\xbf]" + _CONT + rb"{2}|[\xf1-\xf3]" + _CONT + rb"{3}|\xf4[\x80-\x8f]" + _CONT + rb"{2}"
)
# A valid sequence cut short: one U+FFFD when more bytes do not complete it, carried when they may.
_PREFIX = (
    rb"[\xc2-\xdf]|\xe0(?:[\xa0-\xbf])?|[\xe1-\xec\xee\xef]" + _CONT + rb"?|\xed(?:[\x80-\x9f])?"
    + rb"|\xf0(?:[\x90-\xbf]" + _CONT + rb"?)?|[\xf1-\xf3]" + _CONT + rb"{0,2}|\xf4(?:[\x80-\x8f]" + _CONT + rb"?)?"
)
_CHARACTER = re.compile(rb"(?:" + _VALID + rb")|(?:" + _PREFIX + rb")|[\x00-\xff]")
# CPython's incremental decoder also waits after ED + any continuation byte (it judges the
# surrogate range only once the sequence is whole); the total count is the same either way.
_CARRIED = re.compile(rb"(?:" + _PREFIX.replace(rb"\xed(?:[\x80-\x9f])?", rb"\xed" + _CONT + rb"?") + rb")")
_NON_ASCII = re.compile(rb"[\x80-\xff]")
MAX_CARRY_BYTES = 3  # the longest incomplete sequence


def count_utf8_chars(data: memoryview | bytes, final: bool) -> tuple[int, int]:
    """``(characters, bytes used)``; unless `final`, an incomplete sequence at the end is not used.

    A piece always starts at a byte that is not a continuation byte, so an incomplete
    sequence at the end starts at the last such byte of the final three.
    """
    if _NON_ASCII.search(data) is None:
        return len(data), len(data)
    chars = _CHARACTER.subn(b"", data)[1]
    if final:
        return chars, len(data)
    for start in range(len(data) - 1, max(-1, len(data) - 1 - MAX_CARRY_BYTES), -1):
        if not 0x80 <= data[start] <= 0xBF:
            if _CARRIED.fullmatch(data, start):
                return chars - _CHARACTER.subn(b"", data[start:])[1], start
            break
    return chars, len(data)
