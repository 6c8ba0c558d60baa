"""SCRIPTED TEACHER for the CPU smoke run's SFT warm start — not a model, not training data.

The paper's SFT data are GPT-4o trajectories. A smoke run has no LLM, so this module writes
trajectories for a few simple training tasks with hand-written rules: parse the numbers out
of the question, write a Python script that computes the answer, run it in our sandbox, and
answer with what it printed. It never reads the reference answer. Its only purpose is to give
the tiny random model transcripts in the exact protocol format (python block, results block,
``<<<answer>>>``) so that after SFT it emits python blocks the agent loop executes.

Every transcript OPENS with the python block (the plan's reasoning is the script's first line,
as a comment): a 24-row SFT set teaches a tiny model its first tokens far more reliably than
anything later, and with prose first the SFT model opened a block in only ~9% of rollouts.

Output: the trajectory JSONL that ``r1ci data sft`` renders into sft.parquet.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

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
    numbers = _numbers(_after("numbers:", question) or "")
    if len(numbers) < 2:
        return None
    args = ", ".join(map(str, numbers))
    return Plan("I will compute the greatest common divisor with math.gcd.", f"import math\nprint(math.gcd({args}))")


def plan_lcm(question: str) -> Plan | None:
    numbers = _numbers(_after("numbers:", question) or "")
    if len(numbers) < 2:
        return None
    args = ", ".join(map(str, numbers))
    return Plan("I will compute the least common multiple with math.lcm.", f"import math\nprint(math.lcm({args}))")


# task name (as in the RL parquet's extra_info.task) -> rule
TEACHERS: dict[str, Callable[[str], Plan | None]] = {
    "reasoning_gym/chain_sum": plan_chain_sum,
    "reasoning_gym/gcd": plan_gcd,
    "reasoning_gym/lcm": plan_lcm,
}


def question_text(prompt: Iterable[Mapping[str, str]]) -> str:
    """The user turn of an RL prompt."""
    users = [m["content"] for m in prompt if m["role"] == "user"]
    if not users:
        raise ValueError("prompt has no user message")
    return users[-1]


def write_trajectories(rl_rows: Iterable[Mapping], out: Path, sandbox, limit_per_task: int) -> dict[str, int]:
    """Solve up to `limit_per_task` rows per supported task; write JSONL; return counts per task.

    A row is an RL parquet row (dict with prompt and extra_info). Code runs in `sandbox`
    (a tool_env Sandbox); a script that fails or prints nothing is dropped, as the paper drops
    wrong teacher trajectories.
    """
    counts: dict[str, int] = {}
    records = []
    for row in rl_rows:
        info = row["extra_info"]
        task = info["task"]
        rule = TEACHERS.get(task)
        if rule is None or counts.get(task, 0) >= limit_per_task:
            continue
        prompt = [dict(m) for m in row["prompt"]]
        plan = rule(question_text(prompt))
        if plan is None:
            continue
        with sandbox.session() as session:
            result = session.run(plan.code)
        printed = result.stdout.strip()
        if result.error is not None or result.timed_out or not printed:
            continue
        records.append(
            {
                "question_id": info["question_id"],
                "task": task,
                "prompt": prompt,
                "steps": [{"reasoning": "", "code": f"# {plan.reasoning}\n{plan.code}",
                           "output": protocol.format_results_body(result)}],
                "final": f"The script printed {printed}, so the answer is ",
                "answer": printed.splitlines()[-1],
                "teacher": TEACHER_LABEL,
            }
        )
        counts[task] = counts.get(task, 0) + 1
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return counts
