"""Render a teacher trajectory into the one assistant message the agent loop would produce.

Only `reward_fns.protocol` decides how code and results look, so an SFT transcript is
byte-identical to an RL rollout with the same steps: reasoning, a ```python block, the
results block the loop inserts, ..., and the final answer in ``<<<...>>>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from reward_fns import protocol
from tool_env.result import ExecutionResult

_FENCE_LINE = re.compile(r"^```", re.MULTILINE)


class TrajectoryError(ValueError):
    """A trajectory that cannot be rendered faithfully; the message names the step."""


@dataclass(frozen=True)
class Step:
    """One code call: the text before it, the script, and what running it printed.

    `output` is either the sandbox's `ExecutionResult` or the results body already formatted
    with `protocol.format_results_body` (as stored by a data-synthesis run).
    """

    reasoning: str
    code: str
    output: ExecutionResult | str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Step":
        missing = [key for key in ("reasoning", "code", "output") if key not in data]
        if missing:
            raise TrajectoryError(f"step is missing field(s) {missing}")
        return cls(reasoning=data["reasoning"], code=data["code"], output=data["output"])


def _results_body(output: ExecutionResult | str, timeout_s: float | None) -> str:
    if isinstance(output, str):
        return protocol.visible_body(output)
    return protocol.format_results_body(output, timeout_s)


def _check_prose(text: str, where: str) -> None:
    if protocol.find_python_blocks(text) or protocol.has_unclosed_fence(text):
        raise TrajectoryError(f"{where} contains a code fence; code belongs in a step's `code`")


def render_trajectory(
    steps: Sequence[Step],
    final: str,
    answer: str | None = None,
    timeout_s: float | None = None,
    max_code_calls: int = protocol.MAX_CODE_CALLS,
) -> str:
    """The assistant message for `steps` followed by `final` text and, if given, ``<<<answer>>>``.

    Raises `TrajectoryError` when the result would not parse back into the same steps
    (a fence inside the code or the prose, too many calls, no final answer).
    """
    return render_trajectory_with_spans(steps, final, answer, timeout_s, max_code_calls)[0]


def render_trajectory_with_spans(
    steps: Sequence[Step],
    final: str,
    answer: str | None = None,
    timeout_s: float | None = None,
    max_code_calls: int = protocol.MAX_CODE_CALLS,
) -> tuple[str, list[tuple[int, int]]]:
    """`render_trajectory` plus the character spans of the results blocks it inserted.

    SFT masks those spans out of the loss; their ends cannot be recovered from the text later.
    """
    spans: list[tuple[int, int]] = []
    if len(steps) > max_code_calls:
        raise TrajectoryError(f"{len(steps)} code calls exceed the limit of {max_code_calls}")
    text = ""
    for number, step in enumerate(steps, start=1):
        _check_prose(step.reasoning, f"step {number} reasoning")
        if not step.code.strip():
            raise TrajectoryError(f"step {number}: code is empty")
        if _FENCE_LINE.search(step.code):
            raise TrajectoryError(f"step {number}: code has a line starting with ``` that would close the block early")
        text += step.reasoning
        if text and not text.endswith("\n"):
            text += "\n"  # a fence only opens at the start of a line
        code = step.code if step.code.endswith("\n") else step.code + "\n"
        text += f"```python\n{code}```"
        body = _results_body(step.output, timeout_s)
        if _FENCE_LINE.search(body):  # the results spans could not be told from a python block in the text
            raise TrajectoryError(f"step {number}: output has a line starting with ```, which reads as a code fence")
        block = protocol.format_results_block(body, text)
        spans.append(protocol.results_block_span(text, block))
        text += block
    _check_prose(final, "final text")
    text += final
    if answer is not None:
        if ">>>" in answer or "<<<" in answer:
            raise TrajectoryError(f"answer {answer!r} contains <<< or >>>")
        text += f"<<<{answer}>>>"
    if not protocol.format_ok(text):
        raise TrajectoryError("rendered trajectory does not follow the protocol (is there a final <<<answer>>>?)")
    if [block.code for block in protocol.find_python_blocks(text)] != [
        s.code if s.code.endswith("\n") else s.code + "\n" for s in steps
    ]:
        raise TrajectoryError("rendered trajectory does not parse back into the same code blocks")
    try:
        protocol.check_results_spans(text, spans)
    except ValueError as exc:
        raise TrajectoryError(f"rendered trajectory: {exc}") from None
    return text, spans


def render_messages(
    prompt: Sequence[dict[str, str]], steps: Sequence[Step], final: str, answer: str | None = None, **kwargs: Any
) -> list[dict[str, str]]:
    """Chat messages for SFT: the RL prompt (system + user) plus the rendered assistant turn."""
    return render_sft_row(prompt, steps, final, answer, **kwargs)["messages"]


def render_sft_row(
    prompt: Sequence[dict[str, str]], steps: Sequence[Step], final: str, answer: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """`messages` (as render_messages) and `results_spans`: one ``{message, start, end}`` per results block."""
    text, spans = render_trajectory_with_spans(steps, final, answer, **kwargs)
    messages = [dict(m) for m in prompt] + [{"role": "assistant", "content": text}]
    last = len(messages) - 1
    return {"messages": messages, "results_spans": [{"message": last, "start": s, "end": e} for s, e in spans]}
