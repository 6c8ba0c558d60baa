"""The four SymBench tasks without a puzzle layout: gsm_hard, the two MATH subsets and path_plan.

Stored answers (written the ways a model writes them) score 1, near misses score 0; path_plan
has no stored answer, so a grid planner here builds valid paths and the tests break them.
"""

from __future__ import annotations

import json
import math
from collections import deque
from pathlib import Path

import pytest

import r1ci_verl
from reward_fns import get_verifier
from reward_fns.registry import get_time_budget
from reward_fns.symbench import reference_from_record
from reward_fns.symbench.path_plan import INSTRUCTIONS

DATA_DIR = Path(r1ci_verl.__file__).parent / "assets" / "symbench"
MATH_TASKS = ("math_geometry", "math_counting_and_probability")


def load(task: str) -> list[dict]:
    with open(DATA_DIR / f"{task}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def score(task: str, answer: str, reference) -> float:
    return get_verifier(f"symbench/{task}")(answer, reference)


# --- gsm_hard ---------------------------------------------------------------------------------


def test_gsm_hard_every_stored_answer_scores_one_as_models_write_it() -> None:
    for record in load("gsm_hard"):
        reference = reference_from_record(record)
        value = float(record["solution"])
        written = [repr(value), f"{value:.15g}"]
        if abs(value) >= 1:
            written += [f"{value:,.2f}", f"${value:.2f}", f"{value:.4f} dollars"]
        if value.is_integer():
            written += [str(int(value)), f"{int(value):,}"]
        for text in written:
            assert score("gsm_hard", text, reference) == 1.0, (record["id"], text)


def test_gsm_hard_near_misses_score_zero() -> None:
    for record in load("gsm_hard"):
        reference = reference_from_record(record)
        value = float(record["solution"])
        wrong = [repr(value + 1), repr(value * 1.001 + 0.5), "", "no idea"]
        if abs(value) < 1e9:  # beyond, 0.005 is below a double's resolution
            wrong += [f"{value + 0.004:.3f}"]
        if value != 0:
            wrong += [repr(-value)]
        if abs(value - round(value)) > 0.01:
            wrong += [str(round(value))]  # rounded to a whole number: precision lost
        for text in wrong:
            assert score("gsm_hard", text, reference) == 0.0, (record["id"], text)


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("-425561.94", -425561.9444444444, 1.0),  # correctly rounded
        ("-425561.95", -425561.9444444444, 0.0),  # wrongly rounded
        ("-425562", -425561.9444444444, 0.0),  # to a whole number: precision lost
        ("3244047.1", 3244047.0999999996, 1.0),  # float noise of the reference program
        ("0.00168", 0.0016791648, 1.0),
        ("0.0017", 0.0016791648, 0.0),
        ("−9867630", -9867630.0, 1.0),  # a typographic minus sign is a minus sign
        ("-9,867,630", -9867630.0, 1.0),
        ("7/2", 3.5, 1.0),
        ("2.0107e-06", 2.0107e-06, 1.0),
        ("0.00", 2.0107e-06, 0.0),  # rounded to nothing
        ("0.13", 0.125, 0.0),  # rounded to 2 significant digits
        ("0.125", 0.125, 1.0),
    ],
)
def test_gsm_hard_tolerance_and_rounding(answer: str, gold: float, expected: float) -> None:
    reference = reference_from_record({"id": "gsm_hard/x", "task": "gsm_hard", "solution": gold, "meta": {}})
    assert score("gsm_hard", answer, reference) == expected


# --- MATH -------------------------------------------------------------------------------------


def math_reference(gold: str):
    return reference_from_record({"id": "math_geometry/x", "task": "math_geometry", "solution": gold, "meta": {}})


EQUIVALENT = [
    (r"\frac{1}{2}", "0.5"),
    (r"\frac{1}{2}", "1/2"),
    (r"\frac{1}{2}", r"\dfrac12"),
    ("0.5", r"\frac{1}{2}"),
    ("(18, -18)", "(18,-18)"),
    (r"2\sqrt{3}", r"\sqrt{12}"),
    (r"3\sqrt{2}", r"3\sqrt2"),
    (r"8,\!424,\!000", "8424000"),
    (r"8,\!424,\!000", "8,424,000"),
    (r"\frac{5}{16}", "0.3125"),
    (r"\frac{5}{16}", r"$\frac{5}{16}$"),
    (r"\frac{5}{16}", r"\boxed{\frac{5}{16}}"),
    (r"\pi", r"\pi"),
    (r"4\pi", r"4 \pi"),
    (r"18^\circ", "18"),
    ("1000", "1,000"),
    (r"\frac{\sqrt{3}}{2}", r"\frac{1}{2}\sqrt{3}"),
    (r"\$675", "675"),
    (r"\$675", "$675"),
    (r"\$675", r"\$675.00"),
    ("675", r"\$675"),
    (r"\frac{1}{6}", r"\frac{2}{12}"),
]

NEAR_MISSES = [
    (r"\frac{1}{3}", "0.33"),
    (r"\frac{1}{2}", r"\frac{1}{3}"),
    ("(18, -18)", "(18, 18)"),
    ("(18, -18)", "(-18, 18)"),
    (r"2\sqrt{3}", r"\sqrt{13}"),
    (r"2\sqrt{3}", r"3\sqrt{2}"),
    (r"8,\!424,\!000", "8424001"),
    (r"\frac{5}{16}", r"\frac{5}{16}\pi"),
    (r"\pi", "3.14159"),
    ("7", "7 or 8"),
    ("7", ""),
    ("7", "seventy"),
    (r"\frac{1}{2}", "50"),
]


@pytest.mark.parametrize(("gold", "answer"), EQUIVALENT)
def test_math_equivalent_forms_score_one(gold: str, answer: str) -> None:
    assert score("math_geometry", answer, math_reference(gold)) == 1.0


@pytest.mark.parametrize(("gold", "answer"), NEAR_MISSES)
def test_math_near_misses_score_zero(gold: str, answer: str) -> None:
    assert score("math_geometry", answer, math_reference(gold)) == 0.0


@pytest.mark.parametrize("task", MATH_TASKS)
def test_math_every_stored_answer_scores_one(task: str) -> None:
    records = load(task)
    assert len(records) == 500
    failures = [r["id"] for r in records if score(task, r["solution"], reference_from_record(r)) != 1.0]
    assert not failures, failures
    # ended like a sentence (math-verify misread 409 of the 1,000 with a full stop): every 5th record
    failures = [r["id"] for r in records[::5] if score(task, r["solution"] + ".", reference_from_record(r)) != 1.0]
    assert not failures, failures


def test_math_verifiers_run_under_a_time_budget() -> None:
    for task in MATH_TASKS:
        assert get_time_budget(f"symbench/{task}") is not None


def test_math_reference_without_text_is_a_data_error() -> None:
    from reward_fns.symbench import ReferenceDataError

    with pytest.raises(ReferenceDataError, match="LaTeX text"):
        score("math_geometry", "1", math_reference(""))


# --- path_plan --------------------------------------------------------------------------------

PATH_PLAN = load("path_plan")
GRID_STEP = 0.05
CLEARANCE = 0.01  # the planner keeps this far from what it avoids; the verifier checks exactly


def _segment_meets(p, q, rect, margin=0.0) -> bool:
    """Float Liang–Barsky against `rect` grown by `margin` (the test's planner only)."""
    x0, x1, y0, y1 = rect
    x0, x1, y0, y1 = min(x0, x1) - margin, max(x0, x1) + margin, min(y0, y1) - margin, max(y0, y1) + margin
    dx, dy = q[0] - p[0], q[1] - p[1]
    t0, t1 = 0.0, 1.0
    for d, dist in ((-dx, p[0] - x0), (dx, x1 - p[0]), (-dy, p[1] - y0), (dy, y1 - p[1])):
        if d == 0:
            if dist < 0:
                return False
            continue
        t = dist / d
        t0, t1 = (max(t0, t), t1) if d < 0 else (t0, min(t1, t))
        if t0 > t1:
            return False
    return True


def plan(reference) -> list[tuple[float, float]] | None:
    """BFS on a grid from start through each box to visit (in order) to the end, keeping clear
    of walls and avoided boxes; returns rounded waypoints or None."""
    meta = reference.meta
    blocked = [w for w in meta["walls"]] + [meta["boxes"][b] for b in meta["derived_avoid"]]
    n = round(3.0 / GRID_STEP)
    nodes = [(round(-1.5 + i * GRID_STEP, 4), round(-1.5 + j * GRID_STEP, 4)) for i in range(n + 1) for j in range(n + 1)]

    def clear(p, q) -> bool:
        return not any(_segment_meets(p, q, r, CLEARANCE) for r in blocked)

    def leg(src, inside) -> list | None:
        prev = {src: None}
        queue = deque([src])
        while queue:
            cur = queue.popleft()
            if inside(cur):
                path = [cur]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return path[::-1]
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    nxt = (round(cur[0] + dx * GRID_STEP, 4), round(cur[1] + dy * GRID_STEP, 4))
                    if nxt not in prev and abs(nxt[0]) <= 1.5 and abs(nxt[1]) <= 1.5 and clear(cur, nxt):
                        prev[nxt] = cur
                        queue.append(nxt)
        return None

    start, end = tuple(meta["start"]), tuple(meta["end"])
    snap = min(nodes, key=lambda v: math.dist(v, start))
    if not clear(start, snap):
        return None
    path = [start, snap]
    for name in [*meta["derived_order"], *meta["derived_visit"]]:
        box = meta["boxes"][name]
        inside = lambda v, b=box: min(b[0], b[1]) < v[0] < max(b[0], b[1]) and min(b[2], b[3]) < v[1] < max(b[2], b[3])  # noqa: E731
        piece = leg(path[-1], inside)
        if piece is None:
            return None
        path += piece[1:]
    last = min((v for v in nodes if clear(v, end)), key=lambda v: math.dist(v, end))
    piece = leg(path[-1], lambda v: v == last)
    if piece is None:
        return None
    path = path + piece[1:] + [end]
    return [p for i, p in enumerate(path) if i == 0 or p != path[i - 1]]


def as_answer(path) -> str:
    return "[" + ", ".join(f"({x}, {y})" for x, y in path) + "]"


PLANNED = [r for r in PATH_PLAN if r["meta"]["environment"] in (0, 3, 7, 12)]


@pytest.mark.parametrize("record", PLANNED, ids=lambda r: r["id"])
def test_path_plan_planned_path_scores_one(record: dict) -> None:
    reference = reference_from_record(record)
    path = plan(reference)
    if path is None:
        pytest.fail(f"{record['id']}: the test planner found no path")
    assert score("path_plan", as_answer(path), reference) == 1.0
    assert score("path_plan", json.dumps([list(p) for p in path]), reference) == 1.0
    assert score("path_plan", as_answer(path[:-1]), reference) == 0.0  # stops short of the end
    assert score("path_plan", as_answer(path[1:]), reference) == 0.0  # does not start at the start


def first(environment: int, instruction_index: int):
    record = next(
        r
        for r in PATH_PLAN
        if r["meta"]["environment"] == environment and r["meta"]["instruction_index"] == instruction_index
    )
    return reference_from_record(record)


def test_path_plan_touching_a_wall_scores_zero() -> None:
    reference = first(0, 0)  # green then yellow, start (-1.3, -1.3), end (1.3, 1.3), walls at |x|, |y| >= 1.4
    good = [(-1.3, -1.3), (0.45, 1.0), (-0.85, 0.0), (1.3, 1.3)]
    assert score("path_plan", as_answer(good), reference) == 1.0
    grazing = [(-1.3, -1.3), (-1.3, -1.4), (0.45, 1.0), (-0.85, 0.0), (1.3, 1.3)]  # ends on a wall's edge
    assert score("path_plan", as_answer(grazing), reference) == 0.0
    almost = [(-1.3, -1.3), (-1.3, -1.3999), (0.45, 1.0), (-0.85, 0.0), (1.3, 1.3)]
    assert score("path_plan", as_answer(almost), reference) == 1.0
    crossing = [(-1.3, -1.3), (-1.6, 0.0), (0.45, 1.0), (-0.85, 0.0), (1.3, 1.3)]
    assert score("path_plan", as_answer(crossing), reference) == 0.0


def test_path_plan_clipping_an_avoided_boxs_boundary_scores_zero() -> None:
    reference = first(0, 5)  # green then yellow, never pink [-1.2, 0.0] x [0.6, 0.9]
    assert reference.meta["derived_avoid"] == ["pink"]
    # green (0.45, 1.0) -> yellow (-0.85, 0.0) passes through pink: go round below it instead
    around = [(-1.3, -1.3), (0.45, 1.0), (0.1, 0.5), (-0.85, 0.0), (1.3, 1.3)]
    assert score("path_plan", as_answer(around), reference) == 1.0
    corner = [(-1.3, -1.3), (0.45, 1.0), (0.0, 0.6), (-0.85, 0.0), (1.3, 1.3)]  # touches pink's corner
    assert score("path_plan", as_answer(corner), reference) == 0.0
    edge = [(-1.3, -1.3), (0.45, 1.0), (0.1, 0.6), (-0.5, 0.6), (-0.85, 0.0), (1.3, 1.3)]  # runs along its edge
    assert score("path_plan", as_answer(edge), reference) == 0.0
    through = [(-1.3, -1.3), (0.45, 1.0), (-0.85, 0.0), (1.3, 1.3)]
    assert score("path_plan", as_answer(through), reference) == 0.0


def test_path_plan_order_matters() -> None:
    reference = first(0, 0)
    assert reference.meta["derived_order"] == ["green", "yellow"]
    wrong_order = [(-1.3, -1.3), (-0.85, 0.0), (0.45, 1.0), (1.3, 1.3)]
    assert score("path_plan", as_answer(wrong_order), reference) == 0.0
    revisit = [(-1.3, -1.3), (-0.85, 0.0), (0.45, 1.0), (-0.85, 0.0), (1.3, 1.3)]  # yellow again after green
    assert score("path_plan", as_answer(revisit), reference) == 1.0


def test_path_plan_unordered_visits_need_every_box() -> None:
    reference = first(0, 9)  # yellow, red and green in any order, never blue
    assert sorted(reference.meta["derived_visit"]) == ["green", "red", "yellow"]
    path = [(-1.3, -1.3), (0.45, -0.75), (1.3, -1.3), (1.3, 0.7), (0.45, 1.0), (-0.85, 0.55), (-0.85, 0.0),
            (-0.85, 1.3), (1.3, 1.3)]  # fmt: skip
    assert score("path_plan", as_answer(path), reference) == 1.0
    skip_red = [(-1.3, -1.3), (-0.85, 0.0), (-0.85, 1.3), (0.45, 1.0), (1.3, 1.3)]
    assert score("path_plan", as_answer(skip_red), reference) == 0.0


def test_path_plan_wrong_end_point_scores_zero() -> None:
    reference = first(0, 0)
    assert score("path_plan", as_answer([(-1.3, -1.3), (0.45, 1.0), (-0.85, 0.0), (1.3, 1.2)]), reference) == 0.0
    noise = [(-1.3, -1.3), (0.45, 1.0), (-0.85, 0.0), (1.3000000000000003, 1.3)]  # printing noise only
    assert score("path_plan", as_answer(noise), reference) == 1.0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "[(-1.3, -1.3)]",
        "[(-1.3, -1.3), (1.3)]",
        "[(-1.3, -1.3), (1.3, 1.3, 0)]",
        "[(-1.3, -1.3), ('a', 1.3)]",
        "[(-1.3, -1.3), (True, 1.3)]",
        "[(-1.3, -1.3), (nan, 1.3)]",
        "[(-1.3, -1.3), (1e999, 1.3)]",
        "(-1.3, -1.3) -> (1.3, 1.3)",
        "{'x': 1}",
        "[" + ", ".join(["(0, 0)"] * 1_001) + "]",
    ],
)
def test_path_plan_malformed_answers_score_zero(text: str) -> None:
    assert score("path_plan", text, first(0, 0)) == 0.0


def test_path_plan_instruction_sentences_all_known() -> None:
    seen = {r["meta"]["instruction"] for r in PATH_PLAN}
    assert seen == set(INSTRUCTIONS)
    indices = {(r["meta"]["instruction_index"], r["meta"]["instruction"]) for r in PATH_PLAN}
    assert len(indices) == 10  # two of the 10 instruction slots repeat a sentence


def test_path_plan_unknown_instruction_fails_loudly() -> None:
    record = dict(PATH_PLAN[0], meta={**PATH_PLAN[0]["meta"], "instruction": "Go to the moon."})
    with pytest.raises(ValueError, match=r"path_plan/sample_0_0: meta: unknown path_plan instruction"):
        reference_from_record(record)
    without_pink = {k: v for k, v in PATH_PLAN[0]["meta"]["boxes"].items() if k != "pink"}
    record = dict(
        PATH_PLAN[0],
        meta={**PATH_PLAN[0]["meta"], "boxes": without_pink, "instruction": next(iter(k for k in INSTRUCTIONS if "pink area all" in k))},
    )
    with pytest.raises(ValueError, match=r"names boxes \['pink'\]"):
        reference_from_record(record)
