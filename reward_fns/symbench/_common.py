"""Shared registration for SymBench verifiers: names, the 0/1 result, the never-raise guard."""

from __future__ import annotations

import functools
import logging
from typing import Callable

from reward_fns.parsing import strip_markup
from reward_fns.registry import Reference, register_verifier

logger = logging.getLogger(__name__)

FAMILY = "symbench"
CORRECT, WRONG = 1.0, 0.0

# task -> verifier, for this family only (the registry holds them as "symbench/<task>").
TASK_VERIFIERS: dict[str, Callable[[str, Reference], float]] = {}

# Errors that malformed model text can provoke deep inside a check; they mean "wrong answer".
_ANSWER_ERRORS = (ValueError, TypeError, KeyError, IndexError, ArithmeticError, RecursionError)


class ReferenceDataError(Exception):
    """The reference lacks data a verifier needs: a setup bug, so it is raised, never scored 0."""


def require_meta(reference: Reference, *keys: str) -> None:
    """Fail loudly when `reference.meta` lacks keys that `reference_from_record` derives."""
    missing = [key for key in keys if key not in reference.meta]
    if missing:
        raise ReferenceDataError(
            f"{reference.task}: reference meta lacks {missing}; build references with "
            "reward_fns.symbench.reference_from_record"
        )


def symbench_verifier(
    task: str, *, time_budget_s: float | None = None, markup: bool = True
) -> Callable[[Callable[[str, Reference], bool]], Callable[[str, Reference], float]]:
    """Register a ``check(answer, reference) -> bool`` as ``symbench/<task>`` returning 1.0 / 0.0.

    The wrapper turns a missing answer and any parse error into 0.0, so model text never raises;
    a `ReferenceDataError` (bad ground truth, not bad text) still propagates. `time_budget_s`:
    see `register_verifier` (for checks whose cost the answer text controls). `markup`: strip
    decoration around the whole answer first (`strip_markup`); off where ``*`` or ``$`` are content.
    """

    def decorator(check: Callable[[str, Reference], bool]) -> Callable[[str, Reference], float]:
        @functools.wraps(check)
        def verifier(answer: str, reference: Reference) -> float:
            if not isinstance(answer, str):
                return WRONG
            if markup:
                answer = strip_markup(answer)
            try:
                return CORRECT if check(answer, reference) is True else WRONG
            except _ANSWER_ERRORS as exc:
                logger.debug("%s/%s: answer rejected: %r", FAMILY, task, exc)
                return WRONG

        register_verifier(f"{FAMILY}/{task}", verifier, time_budget_s=time_budget_s)
        TASK_VERIFIERS[task] = verifier
        return verifier

    return decorator
