"""SymBench planning tasks, scored by simulation: a plan is correct when it legally reaches the goal.

Plans are not unique, so nothing is compared with a stored plan. Any illegal action (a block
that is not on top, an overloaded lifter, a box that is not there) makes the whole plan wrong.
"""

from __future__ import annotations

import re
from collections import Counter

from reward_fns.parsing import clean, parse_literal
from reward_fns.registry import Reference
from reward_fns.symbench._common import symbench_verifier

MAX_PLAN_STEPS = 1_000  # longer plans are rejected unread (bounds simulation work)

# --- blocksworld ----------------------------------------------------------------------------

_BLOCK_MOVE = re.compile(
    r"(?:(?:step\s*)?\d+\s*[.):]\s*)?move\s+(\S+)\s+from\s+(?:stack\s*)?(\w+)\s+to\s+(?:stack\s*)?(\w+)\s*\.?",
    re.IGNORECASE,
)


def _stack_name(label: str) -> str:
    """Prompts name stacks ``stack2``; answers may say ``2``."""
    return label if label.lower().startswith("stack") else f"stack{label}"


@symbench_verifier("blocksworld")
def check_blocksworld(answer: str, reference: Reference) -> bool:
    """One ``Move <block> from <src> to <dst>`` per line; only a top block moves between existing
    stacks; the final non-empty stacks must equal the goal's non-empty stacks (an empty plan is
    right only when the start already is the goal)."""
    text = clean(answer)
    if text is None:
        return False
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_PLAN_STEPS:
        return False
    stacks = {name: list(blocks) for name, blocks in reference.meta["derived_initial_state"].items()}
    for line in lines:
        move = _BLOCK_MOVE.fullmatch(line)
        if move is None:
            return False
        block, source, target = move.group(1), _stack_name(move.group(2)), _stack_name(move.group(3))
        if source not in stacks or target not in stacks or not stacks[source] or stacks[source][-1] != block:
            return False
        stacks[target].append(stacks[source].pop())
    goal = {name: blocks for name, blocks in reference.meta["derived_goal_state"].items() if blocks}
    return {name: blocks for name, blocks in stacks.items() if blocks} == goal


# --- boxlift --------------------------------------------------------------------------------

_STEP_HEADER = re.compile(r"step\s*\d+\s*:", re.IGNORECASE)


@symbench_verifier("boxlift")
def check_boxlift(answer: str, reference: Reference) -> bool:
    """Lines ``Step k: [(weight, [lifter indices]), ...]``; every box lifted within the step bound.

    Per step each lifter (0-based into meta.lifters) works at most once, each weight names a box
    still on the ground, and the lifters' summed capacity must reach the weight.
    """
    text = clean(answer) or ""
    chunks = _STEP_HEADER.split(text)
    if chunks[0].strip() or len(chunks) < 2:
        return False
    steps = chunks[1:]
    if len(steps) > int(reference.meta["derived_estimated_steps"]):
        return False
    lifters = [int(c) for c in reference.meta["lifters"]]
    remaining = Counter(int(w) for w in reference.meta["boxes"])
    for step in steps:
        assignments = parse_literal(step.strip())
        if not isinstance(assignments, (list, tuple)):
            return False
        used: set[int] = set()
        for assignment in assignments:
            if not isinstance(assignment, (list, tuple)) or len(assignment) != 2:
                return False
            weight, team = assignment
            if not isinstance(weight, int) or remaining[weight] <= 0:
                return False
            if not isinstance(team, (list, tuple)) or not team:
                return False
            if not all(isinstance(i, int) and 0 <= i < len(lifters) for i in team):
                return False
            if len(set(team)) != len(team) or used & set(team):
                return False
            if sum(lifters[i] for i in team) < weight:
                return False
            used.update(team)
            remaining[weight] -= 1
    return sum(remaining.values()) == 0


# --- boxnet ---------------------------------------------------------------------------------

_NUM = r"(-?\d+(?:\.\d+)?)"
_AGENT = re.compile(rf"agent\s*\[\s*{_NUM}\s*,\s*{_NUM}\s*\]", re.IGNORECASE)
_ACTION = re.compile(
    rf"move\(\s*(box_\w+)\s*,\s*(?:(target_\w+)|square\s*\[\s*{_NUM}\s*,\s*{_NUM}\s*\])\s*\)", re.IGNORECASE
)


def _square_index(state: dict[str, list[str]]) -> dict[tuple[float, float], str]:
    index = {}
    for key in state:
        row, col = key.split("_")
        index[(float(row), float(col))] = key
    return index


@symbench_verifier("boxnet")
def check_boxnet(answer: str, reference: Reference) -> bool:
    """A JSON list of steps ``{"Agent[r, c]": "move(box_x, square[r, c'])" | "move(box_x, target_x)"}``.

    Agents act simultaneously, each at most once per step (``Agent[0.5, 0.5]`` and
    ``Agent[0.5,0.5]`` are one agent, whatever the JSON keys say): each acts only on what its
    square held when the step began (a box moved in arrives at the end of the step). A box goes to
    a 4-adjacent square or onto a same-colour target in its square, which removes both. Success:
    no box is left.
    """
    plan = parse_literal(answer)
    if isinstance(plan, dict):
        plan = [plan]
    if not isinstance(plan, list) or not plan or len(plan) > MAX_PLAN_STEPS:
        return False
    state = {key: Counter(items) for key, items in reference.meta["state"].items()}
    squares = _square_index(reference.meta["state"])
    for step in plan:
        if not isinstance(step, dict):
            return False
        available = {key: Counter(items) for key, items in state.items()}
        arriving: list[tuple[str, str]] = []
        acted: set[str] = set()
        for agent, action in step.items():
            agent_match = _AGENT.fullmatch(str(agent).strip())
            action_match = _ACTION.fullmatch(str(action).strip())
            if agent_match is None or action_match is None:
                return False
            here = squares.get((float(agent_match.group(1)), float(agent_match.group(2))))
            box, target, row, col = action_match.groups()
            if here is None or here in acted or available[here][box] <= 0:
                return False
            acted.add(here)
            available[here][box] -= 1
            state[here][box] -= 1
            if target is not None:
                if target[len("target_") :] != box[len("box_") :] or available[here][target] <= 0:
                    return False
                available[here][target] -= 1
                state[here][target] -= 1
                continue
            r0, c0 = (float(agent_match.group(1)), float(agent_match.group(2)))
            destination = squares.get((float(row), float(col)))
            if destination is None or abs(float(row) - r0) + abs(float(col) - c0) != 1:
                return False
            arriving.append((destination, box))
        for destination, box in arriving:
            state[destination][box] += 1
    return not any(
        count > 0 for items in state.values() for item, count in items.items() if item.startswith("box_")
    )
