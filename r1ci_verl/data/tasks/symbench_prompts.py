"""Questions for the six SymBench tasks that store no question text, rendered from `meta`,
and the answer-format line for stored questions that name no format (GSM-Hard, MATH).

CodeSteer builds these prompts in code; the wording here is our own, but each asks for the
answer format the SymBench verifiers parse (see the data README).
"""

from __future__ import annotations

from typing import Any, Callable

PromptRenderer = Callable[[dict[str, Any]], str]


def _stack_lines(stacks: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}: {' '.join(blocks)}".rstrip() for name, blocks in stacks.items())


def blocksworld_prompt(meta: dict[str, Any]) -> str:
    initial, goal = meta["derived_initial_state"], meta["derived_goal_state"]
    return (
        "Blocksworld planning. Blocks sit in stacks; each stack is listed from bottom to top.\n"
        "A move takes the top block of one stack and puts it on top of another existing stack.\n"
        "Only the top block of a stack can move.\n\n"
        f"Initial state:\n{_stack_lines(initial)}\n\n"
        f"Goal state:\n{_stack_lines(goal)}\n\n"
        "Find a sequence of moves that reaches the goal state. Every stack listed in the goal must "
        "hold exactly the blocks shown; stacks not listed in the goal must end empty.\n"
        "Write one move per line as `Move <block> from <source stack> to <destination stack>` "
        "and put the whole plan inside <<< >>>, for example:\n"
        "<<<\nMove B from stack1 to stack3\nMove A from stack2 to stack1\n>>>"
    )


def boxlift_prompt(meta: dict[str, Any]) -> str:
    boxes, lifters, steps = meta["boxes"], meta["lifters"], meta["derived_estimated_steps"]
    return (
        f"There are {len(boxes)} boxes with weights {boxes} and {len(lifters)} lifters with "
        f"capacities {lifters}. Lifters are numbered from 0 in the order listed.\n"
        "In each step every lifter can be used at most once. One lifter, or several lifters "
        "together, can lift a box if their combined capacity is at least the box's weight. "
        "A lifted box is removed.\n"
        f"Lift all boxes in at most {steps} steps.\n"
        "Write one line per step as `Step k: [(box_weight, [lifter indices]), ...]` and put all "
        "steps inside <<< >>>, for example:\n"
        "<<<\nStep 1: [(43, [0]), (88, [1, 2])]\nStep 2: [(20, [1])]\n>>>"
    )


def _square(key: str) -> str:
    row, col = key.split("_")
    return f"square[{row}, {col}]"


def boxnet_prompt(meta: dict[str, Any]) -> str:
    state: dict[str, list[str]] = meta["state"]
    squares = "\n".join(f"{_square(key)}: {items}" for key, items in state.items())
    agents = ", ".join(f"Agent[{key.replace('_', ', ')}]" for key in state)
    return (
        "Boxes must be moved onto targets of the same colour on a grid. The squares and what "
        "they hold:\n"
        f"{squares}\n\n"
        f"There is one agent in every square: {agents}.\n"
        "In one step each agent may do at most one action, on a box in its own square:\n"
        "- move(box_<colour>, square[x, y]) moves the box to a horizontally or vertically "
        "adjacent square;\n"
        "- move(box_<colour>, target_<colour>) puts the box on a target of the same colour in "
        "the same square; box and target both disappear.\n"
        "All actions of one step happen at the same time: a box moved into a square can be "
        "acted on there from the next step on.\n"
        "Plan the actions so that no box is left. Give the plan as a JSON list with one dict per "
        "step, mapping each acting agent to its action, inside <<< >>>, for example:\n"
        '<<<[{"Agent[0.5, 0.5]": "move(box_blue, square[0.5, 1.5])"}, '
        '{"Agent[0.5, 1.5]": "move(box_blue, target_blue)"}]>>>'
    )


def game24_prompt(meta: dict[str, Any]) -> str:
    numbers = meta["derived_numbers"]
    target = meta.get("derived_target", 24)
    return (
        f"Use the numbers {', '.join(str(n) for n in numbers)} to make {target}. Use each number "
        "exactly once, combined with +, -, *, / and parentheses.\n"
        f"Put the expression inside <<< >>>, for example <<<(1 + 2 + 3) * 4>>> for 1, 2, 3, 4."
    )


def letters_prompt(meta: dict[str, Any]) -> str:
    word, letter = meta["word"], meta["derived_letter"]
    return (
        f"How many times does the letter '{letter}' appear in the word '{word}', and at which "
        "positions? Count positions from 1.\n"
        "Answer in the format <<<Count: X, Positions: [Y, Z, ...]>>>."
    )


def _point(point: list[float]) -> str:
    return f"({point[0]}, {point[1]})"


def _rectangle(bounds: list[float]) -> str:
    x0, x1, y0, y1 = bounds
    return f"x from {x0} to {x1}, y from {y0} to {y1}"


def path_plan_prompt(meta: dict[str, Any]) -> str:
    walls = "\n".join(f"- {_rectangle(wall)}" for wall in meta["walls"])
    boxes = "\n".join(f"- {colour}: {_rectangle(bounds)}" for colour, bounds in meta["boxes"].items())
    return (
        "Plan a path for a robot moving in a plane. Every wall and every coloured box is an "
        "axis-aligned rectangle.\n\n"
        f"Walls:\n{walls}\n\n"
        f"Coloured boxes (rooms, areas):\n{boxes}\n\n"
        f"The robot starts at {_point(meta['start'])} and must end at {_point(meta['end'])}.\n"
        f"Instruction: {meta['instruction']}\n\n"
        "The robot moves in straight lines between consecutive waypoints. No segment may touch a "
        "wall. A box counts as entered when a segment passes through it; a box to avoid must not be "
        "touched at all, its boundary included. Boxes to be visited in order must be entered in "
        "that order.\n"
        "Give the waypoints, the start point first and the end point last, as a list of (x, y) "
        "pairs inside <<< >>>, for example:\n"
        "<<<[(-1.3, -1.3), (0.0, -1.0), (1.3, 1.3)]>>>"
    )


# Stored questions that name no answer format: the line appended to them.
ANSWER_FORMATS: dict[str, str] = {
    "gsm_hard": "Give the final answer as a number, without units, inside <<< >>>, for example <<<42>>>.",
    "math_geometry": (
        "Give the final answer in its simplest exact form (LaTeX is fine) inside <<< >>>, "
        "for example <<<\\frac{3}{4}>>> or <<<2\\sqrt{3}>>>."
    ),
    "math_counting_and_probability": (
        "Give the final answer in its simplest exact form (LaTeX is fine) inside <<< >>>, "
        "for example <<<\\frac{3}{4}>>> or <<<120>>>."
    ),
}


PROMPT_RENDERERS: dict[str, PromptRenderer] = {
    "blocksworld": blocksworld_prompt,
    "boxlift": boxlift_prompt,
    "boxnet": boxnet_prompt,
    "game24": game24_prompt,
    "letters": letters_prompt,
    "path_plan": path_plan_prompt,
}
