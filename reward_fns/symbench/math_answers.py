"""SymBench's maths word problems: GSM-Hard (numbers) and MATH (LaTeX answers).

gsm_hard answers are floats computed by a reference program, so some are negative or have
long fractions on purpose; a number counts when it equals the stored one up to float noise or
is the stored one correctly rounded. MATH answers are checked for mathematical equivalence with
math-verify, not as strings, and under a time budget: its parser can be driven into slow paths
by adversarial text, and scoring runs budgeted verifiers where they can be killed.
"""

from __future__ import annotations

import math

from reward_fns.parsing import (
    NUMERIC_ABS_TOL,
    UnreadableReference,
    math_equivalent,
    number_matches,
    number_text,
    parse_number,
)
from reward_fns.registry import Reference
from reward_fns.symbench._common import ReferenceDataError, symbench_verifier

GSM_HARD_REL_TOL = 1e-14  # float noise of the reference programs (~1e-16); answers reach 1e13
GSM_HARD_ROUNDED_REL_TOL = 5e-3  # a rounded answer keeps ~3 significant digits ("0.00" is not 2e-6)
MATH_TIME_BUDGET_S = 5.0  # a MATH answer takes milliseconds to verify (benchmarks/bench_rewards.py)
MATH_TASKS = ("math_geometry", "math_counting_and_probability")


@symbench_verifier("gsm_hard")
def check_gsm_hard(answer: str, reference: Reference) -> bool:
    """A number (``-9867630``, ``$1,234.50``, ``4.67 dollars``, ``7/2``) equal to the stored float,
    up to GSM_HARD_REL_TOL or as the stored value correctly rounded to 2 or more decimals and
    GSM_HARD_ROUNDED_REL_TOL."""
    written = number_text(answer)
    expected = float(reference.answer)
    if written is None or not number_matches(written, expected, rel_tol=GSM_HARD_REL_TOL):
        return False
    return math.isclose(float(parse_number(written)), expected, rel_tol=GSM_HARD_ROUNDED_REL_TOL, abs_tol=NUMERIC_ABS_TOL)


def check_math(answer: str, reference: Reference) -> bool:
    """Mathematically equal to the stored ``\\boxed{...}`` content (LaTeX)."""
    gold = reference.answer
    if not isinstance(gold, str) or not gold.strip():
        raise ReferenceDataError(f"{reference.task}: the reference answer must be LaTeX text, got {gold!r}")
    try:
        return math_equivalent(answer, gold)
    except UnreadableReference as exc:
        raise ReferenceDataError(f"{reference.task}: {exc}") from None


for _task in MATH_TASKS:
    symbench_verifier(_task, time_budget_s=MATH_TIME_BUDGET_S)(check_math)
