"""Load SymBench from its upstream Hugging Face dataset (or a local copy of the same layout).

Layout assumed: one JSON-lines file per task, ``<task>.jsonl`` (see `FILE_PATTERN`), each line
a record ``{"id", "task", "question", "solution", "meta"}`` exactly like the bundled copy.
Lines are read with datasets' ``text`` builder and parsed here, so records keep their JSON
types: the ``json`` builder would merge differently shaped ``meta`` objects into one arrow
struct and add null keys to them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from r1ci_verl.data.tasks.records import parse_records

DEFAULT_REPO = "yongchao98/SymBench"
FILE_PATTERN = "{task}.jsonl"
RECORD_FIELDS = ("id", "task", "question", "solution", "meta")


def data_file_url(repo_id: str, task: str, revision: str | None = None, file_pattern: str = FILE_PATTERN) -> str:
    """Where `task`'s file lives: a local directory path, or an ``hf://datasets/…`` URL."""
    name = file_pattern.format(task=task)
    if Path(repo_id).is_dir():
        return str(Path(repo_id) / name)
    at = f"@{revision}" if revision else ""
    return f"hf://datasets/{repo_id}{at}/{name}"


def load_symbench_records(
    repo_id: str = DEFAULT_REPO,
    task: str = "",
    revision: str | None = None,
    file_pattern: str = FILE_PATTERN,
    cache_dir: str | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(origin, record)`` for one task, in file order; errors name the file and line."""
    import datasets

    if not task:
        raise ValueError("load_symbench_records needs a task name")
    url = data_file_url(repo_id, task, revision, file_pattern)
    if "://" not in url and not Path(url).is_file():
        raise FileNotFoundError(f"SymBench task file not found: {url}")
    lines = datasets.load_dataset("text", data_files={"train": url}, split="train", cache_dir=cache_dir)
    for line_no, record in parse_records((row["text"] for row in lines), url, RECORD_FIELDS):
        yield f"{url}:{line_no}", record
