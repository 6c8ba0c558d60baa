"""The upstream SymBench loader, exercised on local files of the published layout (no network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from r1ci_verl.data.build import BuildConfig, build
from r1ci_verl.data.hf_symbench import data_file_url, load_symbench_records
from r1ci_verl.data.tasks import TaskDataError, get_task

BUNDLED = Path(__file__).resolve().parents[2] / "r1ci_verl" / "assets" / "symbench"
TASKS = ("blocksworld", "pooling")  # blocksworld: meta objects of different shapes per record


@pytest.fixture
def hf_copy(tmp_path) -> Path:
    repo = tmp_path / "SymBench"
    repo.mkdir()
    for task in TASKS:
        shutil.copy(BUNDLED / f"{task}.jsonl", repo / f"{task}.jsonl")
    return repo


def bundled_records(task: str) -> list[dict]:
    return [json.loads(line) for line in (BUNDLED / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("task", TASKS)
def test_records_come_back_exactly_as_stored(hf_copy, tmp_path, task):
    loaded = list(load_symbench_records(str(hf_copy), task, cache_dir=str(tmp_path / "cache")))
    assert [record for _, record in loaded] == bundled_records(task)  # no null keys added to meta
    assert loaded[1][0] == f"{hf_copy / (task + '.jsonl')}:2"


def test_hf_task_yields_the_same_questions_as_the_bundled_copy(hf_copy):
    bundled = get_task("symbench/blocksworld")
    from_hf = bundled.from_hf(str(hf_copy))
    assert from_hf.name == bundled.name
    ours, theirs = list(bundled.questions(20)), list(from_hf.questions(20))
    assert [(q.question_id, q.prompt, q.reference) for q in ours] == [
        (q.question_id, q.prompt, q.reference) for q in theirs
    ]
    assert from_hf.source_fingerprint(20) == {"hf_repo": str(hf_copy), "hf_revision": None, "file": "blocksworld.jsonl"}


def test_build_reads_symbench_from_the_hf_layout(hf_copy, tmp_path):
    manifest = build(BuildConfig(out=str(tmp_path / "out"), tasks=["symbench/pooling"], max_per_task=5,
                                 symbench_hf_repo=str(hf_copy)))  # fmt: skip
    rows = pq.read_table(tmp_path / "out" / "train.parquet").to_pylist()
    assert [r["extra_info"]["question_id"] for r in rows] == [f"symbench/pooling/sample_{i}" for i in range(5)]
    assert manifest["tasks"]["symbench/pooling"]["source"]["hf_repo"] == str(hf_copy)


def test_hub_urls_and_bad_files_are_named(hf_copy, tmp_path):
    assert data_file_url("owner/SymBench", "game24", revision="v1") == "hf://datasets/owner/SymBench@v1/game24.jsonl"
    assert data_file_url("owner/SymBench", "game24") == "hf://datasets/owner/SymBench/game24.jsonl"
    with pytest.raises(FileNotFoundError, match=r"sudoku\.jsonl"):
        list(load_symbench_records(str(hf_copy), "sudoku"))
    lines = (hf_copy / "pooling.jsonl").read_text(encoding="utf-8").splitlines()
    (hf_copy / "pooling.jsonl").write_text("\n".join(lines[:3] + lines[:1]) + "\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"pooling\.jsonl:4: duplicate id 'pooling/sample_0'"):
        list(load_symbench_records(str(hf_copy), "pooling", cache_dir=str(tmp_path / "cache")))
