"""Improvement potential Π = 4·p·(1−p) of each training question (R1-CI curriculum, offline step).

p is the fraction of correct answers among samples drawn with four prompting strategies;
questions are then split into stages by Π for the curriculum sampler (r1ci_verl.training.curriculum).
"""

from r1ci_verl.potential.runner import (
    PotentialConfig,
    Question,
    load_questions,
    potential_table,
    read_table,
    sample_potential,
    write_table,
)
from r1ci_verl.potential.stats import QuestionStats, improvement_potential, partition, stage_order, summarize
from r1ci_verl.potential.store import SampleStore
from r1ci_verl.potential.strategies import STRATEGIES, Strategy, build_messages

__all__ = [
    "STRATEGIES",
    "PotentialConfig",
    "Question",
    "QuestionStats",
    "SampleStore",
    "Strategy",
    "build_messages",
    "improvement_potential",
    "load_questions",
    "partition",
    "potential_table",
    "read_table",
    "sample_potential",
    "stage_order",
    "summarize",
    "write_table",
]
