"""The R1-CI transcript protocol, in one place.

The agent loop, the SFT renderer, data synthesis and evaluation all import this module, so
training, SFT and evaluation see byte-identical transcripts:

    <reasoning> ```python\\n<code>\\n``` \\nCode Execution Results:\\n<output>\\n <reasoning> <<<answer>>>

A python block is one complete script. Generation pauses when it closes; its output is
appended after the line ``Code Execution Results:``; the model continues. The final answer is
the last ``<<<...>>>`` outside code blocks. Fences in other languages never trigger execution.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol as _Protocol

RESULTS_HEADER = "Code Execution Results:"
MAX_CODE_CALLS = 8  # paper: at most 8 code calls per answer
MAX_TURNS_WITHOUT_PENALTY = 6  # paper: -0.1 beyond 6 turns/code calls
NO_OUTPUT_NOTICE = "(no output)"

# Stop strings for engines that honour them (vLLM). A python block closes on a line that
# starts with ``` ; the loop still cuts generated tokens itself (see find_python_block).
STOP_STRINGS = ("\n```\n",)

_OPEN_FENCE = re.compile(r"^```[ \t]*(?:python3?|py)[ \t]*\n", re.MULTILINE | re.IGNORECASE)
_ANY_OPEN_FENCE = re.compile(r"^```[^\n`]*\n", re.MULTILINE)
_CLOSE_FENCE = re.compile(r"^```", re.MULTILINE)
ANSWER_OPEN, ANSWER_CLOSE = "<<<", ">>>"

SYSTEM_PROMPT = (
    "You are a careful problem solver who can run Python. Think step by step. Whenever "
    "exact computation, search or simulation helps, write one complete Python script in a "
    "markdown block that starts with ```python and ends with ```. The script runs as soon as "
    "the block closes; it must print everything you need. Its output appears after the line "
    f"'{RESULTS_HEADER}', and you continue reasoning from it. Each block is a fresh script: "
    f"define what you use. You may run code at most {MAX_CODE_CALLS} times. Finish with the "
    "final answer in triple angle brackets, like <<<answer>>>."
)

ANSWER_INSTRUCTION = "Return your final answer in the format <<<answer>>>."


@dataclass(frozen=True)
class CodeBlock:
    """A closed python block found in text: `code` and the span of the whole block."""

    code: str
    start: int  # index of the opening ```
    end: int  # index just past the closing ```


def _fence_search(pattern: re.Pattern[str], text: str, pos: int) -> re.Match[str] | None:
    """``pattern.search(text, pos)`` for the line-anchored fence patterns above, but jumping
    between "```" occurrences with str.find: scoring scans every response several times and
    a regex scan over long prose is ~10x slower."""
    while (i := text.find("```", pos)) != -1:
        if i == 0 or text[i - 1] == "\n":
            match = pattern.match(text, i)
            if match is not None:
                return match
        pos = i + 1
    return None


def find_python_block(text: str, start: int = 0) -> CodeBlock | None:
    """Return the first *closed* python block that opens at or after `start`, else None.

    Blocks in other languages (```bash, ``` plain) are skipped as a whole so that a
    python-looking fence inside them does not count.
    """
    pos = start
    while True:
        opening = _fence_search(_ANY_OPEN_FENCE, text, pos)
        if opening is None:
            return None
        closing = _fence_search(_CLOSE_FENCE, text, opening.end())
        if closing is None:
            return None  # unterminated: nothing to run yet
        if _OPEN_FENCE.fullmatch(opening.group(0)):
            code = text[opening.end() : closing.start()]
            return CodeBlock(code=code, start=opening.start(), end=closing.end())
        pos = closing.end()


def find_python_blocks(text: str) -> list[CodeBlock]:
    """All closed python blocks, in order."""
    blocks: list[CodeBlock] = []
    pos = 0
    while (block := find_python_block(text, pos)) is not None:
        blocks.append(block)
        pos = block.end
    return blocks


def has_unclosed_fence(text: str) -> bool:
    """True if a ``` fence opens and never closes (an unterminated block)."""
    pos = 0
    while (opening := _fence_search(_ANY_OPEN_FENCE, text, pos)) is not None:
        closing = _fence_search(_CLOSE_FENCE, text, opening.end())
        if closing is None:
            return True
        pos = closing.end()
    return False


def _unclosed_python_start(text: str, start: int = 0) -> int | None:
    """Where a python block that never closes opens (at or after `start`), else None."""
    pos = start
    while (opening := _fence_search(_ANY_OPEN_FENCE, text, pos)) is not None:
        closing = _fence_search(_CLOSE_FENCE, text, opening.end())
        if closing is None:
            return opening.start() if _OPEN_FENCE.fullmatch(opening.group(0)) else None
        pos = closing.end()
    return None


def strip_code_blocks(text: str) -> str:
    """Text with python blocks removed, closed ones and one left open at the end (answers
    written inside code do not count, run or not: ``print('<<<42>>>')`` cut off by the token
    limit is code, not an answer)."""
    pieces, pos = [], 0
    for block in find_python_blocks(text):
        pieces.append(text[pos : block.start])
        pos = block.end
    unclosed = _unclosed_python_start(text, pos)
    pieces.append(text[pos:unclosed])
    return "".join(pieces)


def extract_answer(text: str) -> str | None:
    """The content of the last ``<<<...>>>`` outside python blocks (closed or left open), stripped;
    None if absent."""
    last = None
    for last in answer_spans(strip_code_blocks(text)):
        pass
    return None if last is None else last.strip()


def answer_spans(text: str) -> Iterator[str]:
    """The contents of ``<<<...>>>`` in order, as ``re.findall(r"<<<(.*?)>>>(?!>)", text, re.DOTALL)``
    reads them (an answer ends at the last ``>`` of a run: ``<<<x>>>>`` holds ``x>``), in linear
    time: the regex rescans to the end of the text from every unclosed ``<<<``, so a degenerate
    response of repeated ``<<<`` took seconds to score."""
    pos = 0
    while (start := text.find(ANSWER_OPEN, pos)) != -1:
        close = text.find(ANSWER_CLOSE, start + len(ANSWER_OPEN))
        if close == -1:
            return  # no later opening can close either
        end = close + len(ANSWER_CLOSE)
        while end < len(text) and text[end] == ">":
            end += 1
        yield text[start + len(ANSWER_OPEN) : end - len(ANSWER_CLOSE)]
        pos = end


class _ResultLike(_Protocol):
    stdout: str
    stderr: str
    timed_out: bool


def _text(value: str) -> str:
    """`value` as text a tokenizer takes: a lone surrogate (``raise ValueError('\\ud800')``) becomes
    ``\\ud800``, as the sandbox already writes it in stdout and stderr; tokenizers refuse it."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def format_results_body(result: _ResultLike, timeout_s: float | None = None) -> str:
    """Text the model sees for one run: stdout, then stderr (tracebacks), then notices."""
    stderr = _text(result.stderr)
    parts = [s.rstrip("\n") for s in (_text(result.stdout), stderr) if s]
    error = getattr(result, "error", None)
    if error is not None and not result.timed_out:
        detail = _text(error.traceback or f"{error.name}: {error.message}")
        if detail.strip() and detail.strip() not in stderr:
            parts.append(detail.rstrip("\n"))
    if result.timed_out:
        limit = f" of {timeout_s:g} s" if timeout_s else ""
        parts.append(f"TimeoutError: execution exceeded the time limit{limit} and was stopped.")
    return visible_body("\n".join(parts))


def visible_body(body: str) -> str:
    """What the model sees for a run's output: the text itself, or ``(no output)`` when it is empty
    or only whitespace. A results block holding only blanks reads as if the run printed nothing,
    and an explicit notice tells the model (and an SFT reader) that the script ran but printed
    nothing visible. The agent loop, SFT rendering and the tests all use this one rule."""
    return body if body.strip() else NO_OUTPUT_NOTICE


def format_results_block(body: str, preceding_text: str = "") -> str:
    """The block appended after a closed python block: header line, body, trailing newline."""
    lead = "" if preceding_text.endswith("\n") else "\n"
    return f"{lead}{RESULTS_HEADER}\n{body}\n"


def results_block_span(text: str, block: str) -> tuple[int, int]:
    """Where `block` (from format_results_block) lands when appended to `text`: header line to trailing newline.

    The span leaves out the lead newline that ends the fence line, so it starts at the header.
    """
    start = len(text) + block.index(RESULTS_HEADER)
    return start, len(text) + len(block)


def check_results_spans(text: str, spans: Sequence[tuple[int, int]]) -> None:
    """Raise ValueError unless `spans` are exactly the results blocks of `text`.

    A block's end cannot be found from text alone: its body is arbitrary program output and the
    model's next words follow with no delimiter. So whoever inserts the blocks records their spans
    (see results_block_span) and this check makes them agree with the protocol: one span per closed
    python block, starting on the line after its fence, and equal to what format_results_block
    writes there.
    """
    blocks = find_python_blocks(text)
    if len(spans) != len(blocks):
        raise ValueError(f"{len(spans)} results span(s) for {len(blocks)} closed python block(s)")
    limits = [b.start for b in blocks[1:]] + [len(text)]
    for number, (block, limit, (start, end)) in enumerate(zip(blocks, limits, spans), start=1):
        where = f"results span {number} [{start}, {end})"
        if not block.end < start < end <= limit:
            raise ValueError(f"{where} is outside the text between python block {number} and the next one")
        if text[block.end : start] != "\n":
            raise ValueError(f"{where} does not start on the line after python block {number}'s closing fence")
        chunk = text[start:end]
        if not chunk.startswith(RESULTS_HEADER + "\n"):
            raise ValueError(f"{where} does not start with the '{RESULTS_HEADER}' line")
        body = chunk[len(RESULTS_HEADER) + 1 : -1]
        if format_results_block(body, text[:start]) != chunk:
            raise ValueError(f"{where} differs from format_results_block of its body")


SCORED_RESPONSE_KEY = "scored_response"
"""extra_info key of the text a reward reads instead of the decoded response, where the rollout
knows which tokens it inserted (the agent loop does): the response with every results block's
output removed (see scored_results_block). Program output is not the model's words; left in,
it can add an answer the model never wrote (``print('<<<42>>>')``), hide the model's own (an
output line "```python" opens a block that swallows the rest) or change it (an output "<<<"
pairs with the model's ">>>")."""


def scored_results_block(inserted: str, preceding_text: str = "") -> str:
    """What the reward reads in place of an inserted results block: its header line, no output.

    `inserted` is the text actually inserted (a prefix of it when the token budget cut it short).
    """
    empty = format_results_block("", preceding_text)
    if inserted.startswith(empty[: -1]):
        return empty
    return empty[: len(_common_prefix(inserted, empty))]


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def call_limit_notice(max_calls: int = MAX_CODE_CALLS) -> str:
    """Body shown instead of output when the model exceeds the code-call limit.

    It names the answer format without spelling a complete ``<<<...>>>``: the notice sits in
    the response, and a literal example would be extracted as the model's answer.
    """
    return (
        f"Code was not run: the limit of {max_calls} code executions is reached. "
        "Give your final answer now, in triple angle brackets."
    )


def count_results_blocks(text: str) -> int:
    return len(re.findall(rf"^{re.escape(RESULTS_HEADER)}$", text, re.MULTILINE))


def format_ok(text: str) -> bool:
    """Whether a whole response follows the protocol.

    Every closed python block is followed by a results block, no fence is left open, and the
    response gives an answer in ``<<<...>>>`` outside code.
    """
    if has_unclosed_fence(text) or extract_answer(text) is None:
        return False
    for block in find_python_blocks(text):
        rest = text[block.end :].lstrip("\n")
        if not rest.startswith(RESULTS_HEADER):
            return False
    return True


def user_prompt(question: str) -> str:
    """The user message for a task question (adds the answer-format instruction if missing)."""
    question = question.rstrip()
    if "<<<" in question:
        return question
    return f"{question}\n\n{ANSWER_INSTRUCTION}"
