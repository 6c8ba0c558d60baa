"""Reading task records from JSONL files, with errors that name the file, line and field."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

from r1ci_verl.data.tasks.base import Task, TaskDataError

_T = TypeVar("_T", bound="BundledJsonlTask")


def json_lines(lines: Iterable[str], origin: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for each non-blank line; invalid JSON names `origin` and the 1-based line."""
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskDataError(f"{origin}:{line_no}: invalid JSON ({exc.msg})") from None
        field = _unencodable_field(value)
        if field is not None:  # JSON may spell a lone surrogate ("\\ud800"); parquet cannot store it
            raise TaskDataError(f"{origin}:{line_no}, field {field!r}: a lone surrogate escape is not text (not UTF-8)")
        yield line_no, value


def _unencodable_field(value: Any, where: str = "") -> str | None:
    """The path of the first string (key or value) in `value` that UTF-8 cannot encode, else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "(the record)"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _unencodable_field(key, where or "(a key)") or _unencodable_field(item, f"{where}.{key}" if where else key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for number, item in enumerate(value):
            found = _unencodable_field(item, f"{where}[{number}]")
            if found is not None:
                return found
    return None


def parse_records(lines: Iterable[str], origin: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank JSON line of `origin`.

    Refuses malformed JSON, records that are not objects, missing `required` fields and
    duplicate ``id`` values, naming `origin` and the 1-based line.
    """
    seen: dict[str, int] = {}
    for line_no, record in json_lines(lines, origin):
        if not isinstance(record, dict):
            raise TaskDataError(f"{origin}:{line_no}: expected a JSON object, got {type(record).__name__}")
        missing = [name for name in required if name not in record]
        if missing:
            raise TaskDataError(f"{origin}:{line_no}: record is missing field(s) {missing}")
        record_id = record.get("id")
        if "id" in required:
            if not isinstance(record_id, str) or not record_id:
                raise TaskDataError(f"{origin}:{line_no}: field 'id' must be a non-empty string, got {record_id!r}")
            if record_id in seen:
                raise TaskDataError(f"{origin}:{line_no}: duplicate id {record_id!r} (first on line {seen[record_id]})")
            seen[record_id] = line_no
        yield line_no, record


def read_jsonl_records(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    """`parse_records` over a file; a missing file is a clear error, not an empty task."""
    if not path.is_file():
        raise FileNotFoundError(f"task data file not found: {path}")
    count = 0
    with path.open(encoding="utf-8") as handle:
        for item in parse_records(handle, str(path), required):
            count += 1
            yield item
    if count == 0:
        raise TaskDataError(f"{path}: empty task file: no records")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class BundledJsonlTask(Task):
    """A task read from ``<data_dir>/<source_name>.jsonl`` (a bundled copy), or from a published layout.

    Subclasses give `data_dir` their bundled directory as its default.
    """

    data_dir: str = ""
    layout_root: str | None = None  # a directory in the published layout: read from it instead

    @property
    def data_file(self) -> Path:
        return Path(self.data_dir) / f"{self.source_name}.jsonl"

    def from_layout(self: _T, root: str) -> _T:
        """This task, read from a directory in the published layout instead of the bundled copy."""
        return replace(self, layout_root=root)

    def source_fingerprint(self, max_count: int, seed: int = 0) -> dict[str, Any]:
        if self.layout_root is not None:
            from r1ci_verl.data.published_layout import cached_layout

            return {"published_layout": True, "sha256": cached_layout(self.layout_root).fingerprint(self.name)}
        return {"file": f"{self.family}/{self.data_file.name}", "sha256": sha256_file(self.data_file)}
