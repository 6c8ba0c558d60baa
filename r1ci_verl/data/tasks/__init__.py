"""The task suite: SymBench, BIG-Bench-Hard and Reasoning-Gym tasks, registered by name.

A task's name (``symbench/game24``, ``bbh/navigate``, ``reasoning_gym/maze``) is also its
verifier name and its parquet ``data_source``.
"""

from r1ci_verl.data.tasks.base import (
    CATEGORIES,
    FAMILIES,
    Task,
    TaskDataError,
    TaskQuestion,
    get_task,
    list_tasks,
    register_task,
)

__all__ = [
    "CATEGORIES",
    "FAMILIES",
    "Task",
    "TaskDataError",
    "TaskQuestion",
    "get_task",
    "list_tasks",
    "register_task",
]
