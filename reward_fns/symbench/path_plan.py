"""SymBench path_plan: a waypoint polyline checked by exact simulation against the environment.

The answer is a list of waypoints ``[(x0, y0), (x1, y1), ...]``; the trajectory is the polyline
through them. It must start at ``meta.start``, end at ``meta.end``, and no segment may touch a
wall (``meta.walls``, each ``(x_start, x_end, y_start, y_end)``). The instruction adds which
coloured boxes (``meta.boxes``, same layout) to visit, in which order, and which to avoid:

* visit ("enter", "visit", "go to"): some segment meets the box (its boundary included);
* avoid ("do not enter", "never enter", "avoid"): no segment meets the box or its boundary;
* order ("navigate into A and go to B, and to C"): points in A, B, C occur along the path in
  that order.

Geometry is exact: coordinates become `Fraction`s of the decimals written (``0.7`` is 7/10, not
the nearest double), so touching a boundary is decided without epsilons. The instruction
sentences repeat across environments; each maps to a fixed constraint set in INSTRUCTIONS, and
`instruction_constraints` fails loudly on a sentence it does not know.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Sequence

from reward_fns.parsing import parse_literal
from reward_fns.registry import Reference
from reward_fns.symbench._common import require_meta, symbench_verifier

MAX_WAYPOINTS = 1_000  # longer answers are rejected unread (bounds simulation work)
MIN_WAYPOINTS = 2  # a path from start to end has at least two points
ENDPOINT_TOL = Fraction(1, 10**6)  # start/end may differ from meta by float-printing noise only

Point = tuple[Fraction, Fraction]
Rect = tuple[Fraction, Fraction, Fraction, Fraction]  # x_min, x_max, y_min, y_max

ALL_OTHERS = "*others*"  # avoid every box that is not to be visited
# sentence -> (boxes to visit in this order, boxes to visit in any order, boxes to avoid)
INSTRUCTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "Navigate into the green room and go to the yellow room.": (("green", "yellow"), (), ()),
    "Navigate into the yellow room, go to the purple room, and to the red room, and to the green room.": (
        ("yellow", "purple", "red", "green"),
        (),
        (),
    ),
    "Navigate into the yellow room, go to the purple room, and to the red room, and to the green room. "
    "Remember do not enter the blue area all the time.": (("yellow", "purple", "red", "green"), (), ("blue",)),
    "Visit blue region during your trajectory, but never enter all the other colored boxes.": (
        (),
        ("blue",),
        (ALL_OTHERS,),
    ),
    "Navigate into the green room and go to the yellow room. Remember do not enter the pink area all the time.": (
        ("green", "yellow"),
        (),
        ("pink",),
    ),
    "Navigate into the yellow room and go to the orange room. "
    "Remember do not enter the blue, purple, and red areas all the time.": (
        ("yellow", "orange"),
        (),
        ("blue", "purple", "red"),
    ),
    "Navigate into the green room and go to the yellow room and go to the red room. "
    "Remember do not enter the blue area all the time.": (("green", "yellow", "red"), (), ("blue",)),
    "Visit purple, orange, and pink areas, but remember never enter all the other colored areas.": (
        (),
        ("purple", "orange", "pink"),
        (ALL_OTHERS,),
    ),
    "At some point go to the yellow box, and at some point go to the red box, and enter the green box, "
    "and always do not enter the blue area.": ((), ("yellow", "red", "green"), ("blue",)),
}


def instruction_constraints(instruction: str, boxes: Sequence[str]) -> dict[str, list[str]]:
    """``{"derived_order", "derived_visit", "derived_avoid"}`` for an instruction sentence.

    Raises ValueError for a sentence not in INSTRUCTIONS or a colour the environment lacks.
    """
    key = " ".join(instruction.split())
    if key not in INSTRUCTIONS:
        raise ValueError(f"unknown path_plan instruction {instruction!r}; add it to INSTRUCTIONS")
    order, visit, avoid = INSTRUCTIONS[key]
    wanted = set(order) | set(visit)
    if ALL_OTHERS in avoid:
        avoid = tuple(sorted(set(boxes) - wanted))
    missing = sorted((wanted | set(avoid)) - set(boxes))
    if missing:
        raise ValueError(f"instruction names boxes {missing} that the environment does not have")
    return {"derived_order": list(order), "derived_visit": list(visit), "derived_avoid": list(avoid)}


def _exact(value: Any) -> Fraction:
    """The decimal a JSON/Python number was written as, exactly (bools and non-finite rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"coordinate {value!r} is not a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"coordinate {value!r} is not finite")
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _point(value: Any) -> Point:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"waypoint {value!r} is not an (x, y) pair")
    return _exact(value[0]), _exact(value[1])


def _rect(value: Sequence[Any]) -> Rect:
    x0, x1, y0, y1 = (_exact(v) for v in value)
    return min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)


def parse_waypoints(answer: str) -> list[Point] | None:
    """Waypoints from ``[(x, y), ...]`` or ``[[x, y], ...]``; None when malformed or too long."""
    literal = parse_literal(answer)
    if not isinstance(literal, (list, tuple)) or not MIN_WAYPOINTS <= len(literal) <= MAX_WAYPOINTS:
        return None
    try:
        return [_point(p) for p in literal]
    except ValueError:
        return None


def segment_interval(p: Point, q: Point, rect: Rect) -> tuple[Fraction, Fraction] | None:
    """The parameters [t0, t1] ⊆ [0, 1] where segment p→q lies in the closed `rect`, else None.

    Liang–Barsky clipping in exact arithmetic: touching an edge or a corner counts.
    """
    x_min, x_max, y_min, y_max = rect
    dx, dy = q[0] - p[0], q[1] - p[1]
    t0, t1 = Fraction(0), Fraction(1)
    for direction, distance in ((-dx, p[0] - x_min), (dx, x_max - p[0]), (-dy, p[1] - y_min), (dy, y_max - p[1])):
        if direction == 0:
            if distance < 0:
                return None  # parallel to this edge and outside it
            continue
        t = distance / direction
        if direction < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return t0, t1


def _meets(path: Sequence[Point], rect: Rect) -> bool:
    return any(segment_interval(a, b, rect) is not None for a, b in zip(path, path[1:]))


def _first_visit_after(path: Sequence[Point], rect: Rect, since: tuple[int, Fraction]) -> tuple[int, Fraction] | None:
    """The earliest (segment, t) at or after `since` where the path is in `rect`."""
    first_segment, first_t = since
    for i in range(first_segment, len(path) - 1):
        interval = segment_interval(path[i], path[i + 1], rect)
        if interval is None:
            continue
        lower = max(interval[0], first_t) if i == first_segment else interval[0]
        if lower <= interval[1]:
            return i, lower
    return None


def _near(a: Point, b: Sequence[Any]) -> bool:
    target = _point(b)
    return abs(a[0] - target[0]) <= ENDPOINT_TOL and abs(a[1] - target[1]) <= ENDPOINT_TOL


def path_satisfies(path: Sequence[Point], meta: dict[str, Any]) -> bool:
    """Whether the polyline meets every rule of the environment and instruction in `meta`."""
    if not (_near(path[0], meta["start"]) and _near(path[-1], meta["end"])):
        return False
    if any(_meets(path, _rect(wall)) for wall in meta["walls"]):
        return False
    boxes = {name: _rect(box) for name, box in meta["boxes"].items()}
    if any(_meets(path, boxes[name]) for name in meta["derived_avoid"]):
        return False
    if not all(_meets(path, boxes[name]) for name in meta["derived_visit"]):
        return False
    since: tuple[int, Fraction] | None = (0, Fraction(0))
    for name in meta["derived_order"]:
        since = _first_visit_after(path, boxes[name], since)
        if since is None:
            return False
    return True


@symbench_verifier("path_plan")
def check_path_plan(answer: str, reference: Reference) -> bool:
    """Waypoints whose polyline starts and ends right, touches no wall, and obeys the instruction."""
    require_meta(reference, "walls", "boxes", "start", "end", "derived_order", "derived_visit", "derived_avoid")
    path = parse_waypoints(answer)
    return path is not None and path_satisfies(path, reference.meta)
