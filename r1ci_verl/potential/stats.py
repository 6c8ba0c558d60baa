"""Pass rate p, improvement potential Π = 4·p·(1−p), and the split of questions into stages.

Π peaks at p = 0.5: a question the model solves half of the time gives GRPO the most signal;
p = 0 or 1 gives none (every answer in a group scores alike, so advantages vanish).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

PARTITION_MODES = ("potential", "difficulty")
SORT_DECIMALS = 12  # p and 1-p have equal Π; rounding keeps float noise from breaking that tie


def improvement_potential(p: float) -> float:
    """Π = 4·p·(1−p), scaled to [0, 1]."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"pass rate must lie in [0, 1], got {p}")
    return 4.0 * p * (1.0 - p)


@dataclass(frozen=True)
class QuestionStats:
    """What one question's sampled answers say: n answers, their summed accuracy, p and Π."""

    index: int
    num_samples: int
    num_correct: float

    @property
    def p(self) -> float:
        return self.num_correct / self.num_samples if self.num_samples else 0.0

    @property
    def potential(self) -> float:
        return improvement_potential(self.p)


def summarize(samples: Iterable[Mapping]) -> dict[int, QuestionStats]:
    """Fold sample records (``index``, ``acc``) into per-question stats, keyed by index."""
    counts: dict[int, list[float]] = {}
    for record in samples:
        acc = float(record["acc"])
        if not 0.0 <= acc <= 1.0:
            raise ValueError(f"sample of question {record['index']} has acc={acc}, expected a value in [0, 1]")
        totals = counts.setdefault(int(record["index"]), [0, 0.0])
        totals[0] += 1
        totals[1] += acc
    return {index: QuestionStats(index, int(n), correct) for index, (n, correct) in counts.items()}


def stage_order(pass_rates: Mapping[int, float], mode: str = "potential") -> list[int]:
    """Question indices in curriculum order.

    ``potential``: Π descending (the paper). ``difficulty``: p descending, easiest first (the
    paper's comparison). Ties keep ascending index order, so the order is a pure function of
    the data and never depends on file or dict order (values are compared after rounding
    to SORT_DECIMALS, so p = 0.3 and p = 0.7 tie exactly).
    """
    if mode not in PARTITION_MODES:
        raise ValueError(f"partition mode {mode!r}: expected one of {PARTITION_MODES}")
    measure = improvement_potential if mode == "potential" else float
    return sorted(pass_rates, key=lambda index: (-round(measure(pass_rates[index]), SORT_DECIMALS), index))


def partition(pass_rates: Mapping[int, float], num_stages: int, mode: str = "potential") -> list[list[int]]:
    """Split questions into `num_stages` groups of (near) equal size in curriculum order.

    Group sizes differ by at most one; the earlier groups take the remainder.
    """
    if num_stages < 1:
        raise ValueError(f"num_stages must be >= 1, got {num_stages}")
    if len(pass_rates) < num_stages:
        raise ValueError(f"cannot split {len(pass_rates)} questions into {num_stages} non-empty stages")
    return split_evenly(stage_order(pass_rates, mode), num_stages)


def split_evenly(items: Sequence[int], num_groups: int) -> list[list[int]]:
    size, extra = divmod(len(items), num_groups)
    groups, start = [], 0
    for g in range(num_groups):
        end = start + size + (1 if g < extra else 0)
        groups.append(list(items[start:end]))
        start = end
    return groups
