"""Staged curriculum sampler for GRPO (R1-CI §curriculum), usable as a torch/torchdata sampler.

Questions are split into K groups by improvement potential Π (r1ci_verl.potential). Stage k
draws from groups 1..k (cumulative pools); each stage lasts `steps_per_stage` training steps
of `batch_size` prompts; the last stage (all data) runs until training ends. Within a stage
the pool is reshuffled every pass with a generator seeded by (seed, stage, pass), so the
whole draw sequence is a pure function of the sampler's small state, which is saved and
restored with verl's dataloader checkpoint (torchdata's StatefulDataLoader calls our
`state_dict`/`load_state_dict`).

Online mode (beyond the paper, off by default): each question's p is updated from its own
training rollouts (EMA of its group's accuracy) and the groups are re-ranked by the new Π at
every stage boundary — the paper's "online regrouping" without extra sampling.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from torch.utils.data import Sampler

from r1ci_verl.potential.stats import PARTITION_MODES, improvement_potential, partition

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))  # stage starts show in verl's run log

MODES = ("static", "online")
STATE_VERSION = 1
NOT_A_CURRICULUM_STATE = (
    "the checkpoint's sampler state is not a curriculum state (was it written by a run without a "
    "curriculum?); start this run from an exported model instead of resuming"
)


@dataclass(frozen=True)
class CurriculumConfig:
    """The `curriculum.*` block of the training config."""

    potential_file: str
    num_stages: int = 4  # paper: 4 groups
    steps_per_stage: int = 150  # paper: 150 GRPO steps per stage
    mode: str = "static"  # static (paper) | online (p re-estimated from training rollouts)
    partition: str = "potential"  # potential: Π descending (paper) | difficulty: p descending
    seed: int = 0
    online_ema: float = 0.5  # weight of a new rollout group's accuracy in the running p

    def __post_init__(self) -> None:
        if not self.potential_file:
            raise ValueError("curriculum.potential_file is required (written by `r1ci potential`)")
        if self.num_stages < 1:
            raise ValueError(f"curriculum.num_stages must be >= 1, got {self.num_stages}")
        if self.steps_per_stage < 1:
            raise ValueError(f"curriculum.steps_per_stage must be >= 1, got {self.steps_per_stage}")
        if self.mode not in MODES:
            raise ValueError(f"curriculum.mode={self.mode!r}: expected one of {MODES}")
        if self.partition not in PARTITION_MODES:
            raise ValueError(f"curriculum.partition={self.partition!r}: expected one of {PARTITION_MODES}")
        if not 0.0 < self.online_ema <= 1.0:
            raise ValueError(f"curriculum.online_ema must lie in (0, 1], got {self.online_ema}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "CurriculumConfig":
        values = dict(values)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown curriculum config keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    @property
    def total_steps(self) -> int:
        """Steps until the last stage (all data) begins, plus that stage's nominal length."""
        return self.num_stages * self.steps_per_stage


class CurriculumSampler(Sampler[int]):
    """Yields dataset positions stage by stage; endless (the last stage cycles over all data).

    Args:
        question_ids: `question_ids[pos]` is the question id (extra_info.index) of dataset row pos.
        pass_rates: p per question id (from the potential file); must cover every question.
        config: the curriculum settings.
        batch_size: prompts per training step (data.train_batch_size).
    """

    def __init__(
        self,
        question_ids: Sequence[int],
        pass_rates: Mapping[int, float],
        config: CurriculumConfig,
        batch_size: int,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.config = config
        self.batch_size = batch_size
        self.stage_length = config.steps_per_stage * batch_size  # draws per stage
        self._position = {}
        for pos, qid in enumerate(question_ids):
            qid = int(qid)
            if qid in self._position:
                raise ValueError(f"question id {qid} appears at dataset rows {self._position[qid]} and {pos}")
            self._position[qid] = pos
        missing = [qid for qid in self._position if qid not in pass_rates]
        if missing:
            raise ValueError(
                f"{len(missing)} of {len(self._position)} training questions have no entry in the potential "
                f"file {config.potential_file} (e.g. index {missing[:5]}); run `r1ci potential` on the same data"
            )
        if len(self._position) < config.num_stages:
            raise ValueError(f"{len(self._position)} questions cannot fill {config.num_stages} stages")
        self.p: dict[int, float] = {qid: float(pass_rates[qid]) for qid in self._position}
        self._fingerprint = self._make_fingerprint(question_ids)
        self.groups = partition(self.p, config.num_stages, config.partition)
        self.draws = 0  # positions handed out so far
        self.stage = 0
        self.pass_no = 0  # shuffled passes over the current pool
        self.pos = 0  # position within the current pass
        self.transitions = 0
        self.moved_at_last_regroup = 0
        self._perm: np.ndarray | None = None

    # ---- iteration ------------------------------------------------------------------------
    def __iter__(self) -> Iterator[int]:
        return _Positions(self)

    def __len__(self) -> int:
        """The scheduled length (all stages); iteration itself never ends."""
        return self.config.num_stages * self.stage_length

    def _next_position(self) -> int:
        target = min(self.draws // self.stage_length, self.config.num_stages - 1)
        if target != self.stage:
            self._enter_stage(target)
        perm = self._permutation()
        if self.pos == len(perm):
            self.pass_no, self.pos, self._perm = self.pass_no + 1, 0, None
            perm = self._permutation()
        position = int(perm[self.pos])
        self.pos += 1  # state counts the position before it is handed out: a checkpoint taken now is exact
        self.draws += 1
        return position

    def _enter_stage(self, stage: int) -> None:
        if self.config.mode == "online":
            self._regroup()
        logger.info("curriculum: stage %d/%d begins after %d draws (pool %d questions)",
                    stage + 1, self.config.num_stages, self.draws, sum(len(g) for g in self.groups[: stage + 1]))
        self.stage, self.pass_no, self.pos, self._perm = stage, 0, 0, None
        self.transitions += 1

    def _permutation(self) -> np.ndarray:
        if self._perm is None:
            pool = np.array([self._position[q] for g in self.groups[: self.stage + 1] for q in g], dtype=np.int64)
            rng = np.random.default_rng([self.config.seed, self.stage, self.pass_no])
            self._perm = rng.permutation(pool)
        return self._perm

    def pool(self) -> list[int]:
        """Question ids the current stage draws from."""
        return [q for g in self.groups[: self.stage + 1] for q in g]

    # ---- online feedback ------------------------------------------------------------------
    def update(self, question_ids: Sequence[int], accuracies: Sequence[float]) -> int:
        """Fold rollout accuracies into each question's p (online mode); return questions updated.

        All rollouts of one question in the batch form its group accuracy; the running p moves
        toward it by `online_ema`. Static mode ignores feedback (the paper's fixed groups).
        """
        if self.config.mode != "online":
            return 0
        if len(question_ids) != len(accuracies):
            raise ValueError(f"{len(question_ids)} question ids but {len(accuracies)} accuracies")
        grouped: dict[int, list[float]] = defaultdict(list)
        for qid, acc in zip(question_ids, accuracies):
            grouped[int(qid)].append(min(1.0, max(0.0, float(acc))))
        alpha = self.config.online_ema
        updated = 0
        for qid, accs in grouped.items():
            if qid not in self.p:
                logger.warning("curriculum: feedback for unknown question id %d ignored", qid)
                continue
            self.p[qid] = (1 - alpha) * self.p[qid] + alpha * float(np.mean(accs))
            updated += 1
        return updated

    def _regroup(self) -> None:
        old_stage_of = {q: s for s, g in enumerate(self.groups) for q in g}
        self.groups = partition(self.p, self.config.num_stages, self.config.partition)
        self.moved_at_last_regroup = sum(old_stage_of[q] != s for s, g in enumerate(self.groups) for q in g)

    # ---- metrics --------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """Flat metrics for verl's tracker (stage is 1-based, as in the paper)."""
        pool = self.pool()
        out = {
            "curriculum/stage": float(self.stage + 1),
            "curriculum/pool_size": float(len(pool)),
            "curriculum/stage_transitions": float(self.transitions),
            "curriculum/draws": float(self.draws),
            "curriculum/pool_mean_potential": float(np.mean([improvement_potential(self.p[q]) for q in pool])),
        }
        if self.config.mode == "online":
            out["curriculum/pool_mean_p"] = float(np.mean([self.p[q] for q in pool]))
            out["curriculum/moved_at_last_regroup"] = float(self.moved_at_last_regroup)
        return out

    # ---- checkpointing --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {
            "version": STATE_VERSION,
            "fingerprint": self._fingerprint,
            "draws": self.draws,
            "stage": self.stage,
            "pass_no": self.pass_no,
            "pos": self.pos,
            "transitions": self.transitions,
            "moved_at_last_regroup": self.moved_at_last_regroup,
            "groups": [list(g) for g in self.groups],
        }
        if self.config.mode == "online":
            state["p"] = dict(self.p)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "fingerprint" not in state:
            raise ValueError(NOT_A_CURRICULUM_STATE)
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"curriculum sampler state version {state.get('version')} != {STATE_VERSION}")
        if state["fingerprint"] != self._fingerprint:
            raise ValueError(
                "the checkpoint's curriculum state belongs to other data or settings (dataset rows, potential "
                "file, num_stages, steps_per_stage, mode, partition, seed or batch size changed); start this run "
                "from an exported model instead of resuming"
            )
        self.draws, self.stage = int(state["draws"]), int(state["stage"])
        self.pass_no, self.pos = int(state["pass_no"]), int(state["pos"])
        self.transitions = int(state["transitions"])
        self.moved_at_last_regroup = int(state["moved_at_last_regroup"])
        self.groups = [[int(q) for q in g] for g in state["groups"]]
        if "p" in state:
            self.p = {int(q): float(v) for q, v in state["p"].items()}
        self._perm = None

    def _make_fingerprint(self, question_ids: Sequence[int]) -> str:
        digest = hashlib.sha256()
        settings = asdict(self.config)
        settings.pop("potential_file")  # the same data may live at another path after a move
        digest.update(repr((sorted(settings.items()), self.batch_size)).encode())
        digest.update(np.asarray([int(q) for q in question_ids], dtype=np.int64).tobytes())
        digest.update(np.asarray(sorted(self.p.items()), dtype=np.float64).tobytes())
        return digest.hexdigest()


class _Positions(Iterator[int]):
    """The sampler's iterator. It is Stateful only so that torchdata hands it the iterator state of
    a checkpoint written with another sampler, which it rejects with a clear error."""

    def __init__(self, sampler: CurriculumSampler):
        self.sampler = sampler

    def __iter__(self) -> "_Positions":
        return self

    def __next__(self) -> int:
        return self.sampler._next_position()

    def state_dict(self) -> dict[str, Any]:
        return {"curriculum": True}  # the real state lives in the sampler's state_dict

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not state.get("curriculum"):
            raise ValueError(NOT_A_CURRICULUM_STATE)


def load_pass_rates(path: str) -> dict[int, float]:
    """p per question id from a potential file; a bad row names the file, row and field."""
    from r1ci_verl.potential.runner import read_table

    rates: dict[int, float] = {}
    for row_no, row in enumerate(read_table(path)):
        for name in ("index", "p"):
            if row.get(name) is None:
                raise ValueError(f"{path} row {row_no}: field {name!r} is missing")
        p = float(row["p"])
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{path} row {row_no}: p={p} is outside [0, 1]")
        index = int(row["index"])
        if index in rates:
            raise ValueError(f"{path} row {row_no}: index {index} appears twice")
        rates[index] = p
    return rates
