"""Append-only store of scored samples, so a killed potential run continues where it stopped.

One JSON line per scored answer, keyed by (index, strategy, sample); see
r1ci_verl.rollout.offline.ResultStore. Nothing is ever sampled or scored twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1ci_verl.rollout.offline import ResultStore

SampleKey = tuple[int, str, int]
KEY_FIELDS = ("index", "strategy", "sample")


def sample_key(record: dict[str, Any]) -> SampleKey:
    return int(record["index"]), str(record["strategy"]), int(record["sample"])


class SampleStore(ResultStore):
    """Open (or create) `path`; `done` holds the keys already scored."""

    def __init__(self, path: str | Path, settings: dict[str, Any] | None = None):
        super().__init__(path, KEY_FIELDS, settings)
