"""The four answering strategies used to estimate p (paper: 4 strategies × 5 samples).

Each strategy is a prompt variant built on the shared protocol: its own system prompt and an
instruction appended to the question. Only the interpreter strategies get their code run.
"""

from __future__ import annotations

from dataclasses import dataclass

from reward_fns.protocol import ANSWER_INSTRUCTION, MAX_CODE_CALLS, RESULTS_HEADER, SYSTEM_PROMPT


@dataclass(frozen=True)
class Strategy:
    name: str
    system_prompt: str
    instruction: str  # appended to the user message
    runs_code: bool  # whether closed python blocks are executed


_TEXT_SYSTEM = (
    "You are a careful problem solver. Think step by step in plain text only: do not write "
    "code. Finish with the final answer in triple angle brackets, like <<<answer>>>."
)
_CODE_SYSTEM = (
    "You are a careful problem solver who answers by programming. Write one complete Python "
    "script in a markdown block that starts with ```python and ends with ```; it must compute "
    "the answer and print it. The script runs as soon as the block closes and its output "
    f"appears after the line '{RESULTS_HEADER}'. Fix and rerun the script if it fails (at most "
    f"{MAX_CODE_CALLS} runs). Finish with the final answer in triple angle brackets, like "
    "<<<answer>>>."
)
_GUIDED_SYSTEM = (
    SYSTEM_PROMPT + " First decide which parts of the problem need exact computation, search "
    "or simulation and which are easier to reason about in text. Use code for the former, "
    "check every result it prints, and reason in text for the rest."
)

STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("text", _TEXT_SYSTEM, "Reason in text only, without code.", runs_code=False),
        Strategy("code", _CODE_SYSTEM, "Solve it by writing a Python program that prints the answer.", runs_code=True),
        Strategy("free", SYSTEM_PROMPT, "", runs_code=True),
        Strategy(
            "guided",
            _GUIDED_SYSTEM,
            "Plan first: name the steps that need code, run them, then verify the result before answering.",
            runs_code=True,
        ),
    )
}
DEFAULT_STRATEGIES = tuple(STRATEGIES)


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}") from None


def build_messages(strategy: Strategy, prompt: list[dict[str, str]]) -> list[dict[str, str]]:
    """Chat messages for one strategy: the row's system message replaced, its instruction added.

    `prompt` is the RL row's chat prompt (optional system message, then user turns); the last
    user message carries the question and receives the strategy's instruction.
    """
    messages = [dict(m) for m in prompt if m.get("role") != "system"]
    user_turns = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not user_turns:
        raise ValueError("prompt has no user message")
    last = messages[user_turns[-1]]
    content = last["content"].rstrip()
    if ANSWER_INSTRUCTION not in content and "<<<" not in content:
        content = f"{content}\n\n{ANSWER_INSTRUCTION}"
    if strategy.instruction:
        content = f"{content}\n{strategy.instruction}"
    last["content"] = content
    return [{"role": "system", "content": strategy.system_prompt}, *messages]
