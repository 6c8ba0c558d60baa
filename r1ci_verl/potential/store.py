"""Append-only store of scored samples, so a killed potential run continues where it stopped.

One JSON line per scored answer, keyed by (index, strategy, sample). A line is written and
flushed only after its answer is scored, so every key on disk is complete; a half-written
last line (the process died mid-write) is cut off on open. Nothing is ever scored twice.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

logger = logging.getLogger(__name__)

SampleKey = tuple[int, str, int]


def sample_key(record: dict[str, Any]) -> SampleKey:
    return int(record["index"]), str(record["strategy"]), int(record["sample"])


class SampleStore:
    """Open (or create) `path`; `done` holds the keys already scored."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = list(self._read_and_repair())
        self.done: set[SampleKey] = {sample_key(r) for r in self.records}
        self._file = self.path.open("a", encoding="utf-8")

    def _read_and_repair(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            logger.warning("%s: dropping a half-written last line (%d bytes) from an interrupted run",
                           self.path, len(data) - complete)
            with self.path.open("r+b") as f:
                f.truncate(complete)
        seen: set[SampleKey] = set()
        for line_no, line in enumerate(data[:complete].decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key = sample_key(record)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{self.path}:{line_no}: not a sample record ({exc})") from None
            if key in seen:
                raise ValueError(f"{self.path}:{line_no}: sample {key} recorded twice")
            seen.add(key)
            yield record

    def append(self, record: dict[str, Any]) -> None:
        key = sample_key(record)
        if key in self.done:
            raise ValueError(f"sample {key} is already recorded in {self.path}")
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done.add(key)
        self.records.append(record)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "SampleStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
