"""SCRIPTED TEACHER for the CPU smoke run's SFT warm start — not a model, not training data.

The paper's SFT data are GPT-4o trajectories. A smoke run has no LLM, so this module answers a
few simple training tasks with hand-written rules: parse the numbers out of the question, write
a Python script that computes the answer, and once the results block is in the prompt, answer
with what the script printed. It never reads the reference answer. It is served as a scripted
OpenAI-compatible server on loopback (r1ci_verl.smoke.scripted_server) and ``r1ci sft synth``
samples it like any teacher: the same engine and sandbox run its code, reward_fns rejects its
wrong answers. Its only purpose is to give the tiny random model transcripts in the exact
protocol format (python block, results block, ``<<<answer>>>``) so that after SFT it emits
python blocks the agent loop executes.

Every transcript OPENS with the python block (the plan's reasoning is the script's first line,
as a comment): a 24-row SFT set teaches a tiny model its first tokens far more reliably than
anything later, and with prose first the SFT model opened a block in only ~9% of rollouts.

Output (through ``r1ci sft synth``): the trajectory JSONL that ``r1ci data sft`` renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from reward_fns import protocol

TEACHER_LABEL = "scripted-teacher (rule-based, smoke runs only)"


@dataclass(frozen=True)
class Plan:
    """What the teacher writes before running code: its reasoning line and the script."""

    reasoning: str
    code: str


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"-?\d+", text)]


def _after(marker: str, question: str) -> str | None:
    match = re.search(re.escape(marker) + r"(.*?)(?:\.|\n|$)", question)
    return match.group(1) if match else None


def plan_chain_sum(question: str) -> Plan | None:
    match = re.search(r"problem:\s*(.+?)\s*=", question)
    if not match or not re.fullmatch(r"[\d\s+\-*/()]+", match.group(1)):
        return None
    return Plan("Let me evaluate the expression with code.", f"print({match.group(1).strip()})")


def plan_gcd(question: str) -> Plan | None:
    return _plan_math_of_numbers(question, "gcd", "greatest common divisor")


def plan_lcm(question: str) -> Plan | None:
    return _plan_math_of_numbers(question, "lcm", "least common multiple")


def _plan_math_of_numbers(question: str, func: str, what: str) -> Plan | None:
    """``math.<func>`` of the numbers after "numbers:" (at least two), or None."""
    numbers = _numbers(_after("numbers:", question) or "")
    if len(numbers) < 2:
        return None
    args = ", ".join(map(str, numbers))
    return Plan(f"I will compute the {what} with math.{func}.", f"import math\nprint(math.{func}({args}))")


# task name (as in the RL parquet's extra_info.task) -> rule
TEACHERS: dict[str, Callable[[str], Plan | None]] = {
    "reasoning_gym/chain_sum": plan_chain_sum,
    "reasoning_gym/gcd": plan_gcd,
    "reasoning_gym/lcm": plan_lcm,
}


# question wording -> task rule (the policy sees only the prompt text, as a model would)
RULES_BY_WORDING: tuple[tuple[str, Callable[[str], Plan | None]], ...] = (
    ("Least Common Multiple", plan_lcm),
    ("LCM", plan_lcm),
    ("Greatest Common Divisor", plan_gcd),
    ("GCD", plan_gcd),
    ("arithmetic problem", plan_chain_sum),
)
USER_TURN = re.compile(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", re.DOTALL)
ASSISTANT_START = "<|im_start|>assistant\n"


def plan_for(question: str) -> Plan | None:
    for wording, rule in RULES_BY_WORDING:
        if wording in question:
            return rule(question)
    return None


def teacher_policy(prompt_text: str) -> tuple[str, bool]:
    """Reply to a rendered prompt (chat template applied, transcript so far included): (text, EOS)."""
    users = USER_TURN.findall(prompt_text)
    answer_part = prompt_text.rsplit(ASSISTANT_START, 1)[-1] if ASSISTANT_START in prompt_text else ""
    if protocol.RESULTS_HEADER in answer_part:
        printed = answer_part.rsplit(protocol.RESULTS_HEADER + "\n", 1)[-1].strip()
        last = printed.splitlines()[-1] if printed else ""
        return f"The script printed {printed}, so the answer is <<<{last}>>>", True
    plan = plan_for(users[-1]) if users else None
    if plan is None:
        return "I have no rule for this question. <<<unknown>>>", True
    return f"```python\n# {plan.reasoning}\n{plan.code}\n```\n", True
