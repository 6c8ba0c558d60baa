"""`--source`: the published SymBench/BBH folder layout gives exactly the bundled copy's records.

Runs on a real slice of the layout kept next to the checkout (``<checkout>/../shared/data``:
``upstream_layout/`` plus the converted ``symbench/`` and ``bbh/`` records). CI must have it;
elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from r1ci_verl.cli import main as cli_main
from r1ci_verl.data.build import BuildConfig, build
from r1ci_verl.data.layout_readers import last_boxed, natural_key
from r1ci_verl.data.published_layout import open_layout, resolve_source
from r1ci_verl.data.tasks import TaskDataError, get_task, list_tasks

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("R1CI_SHARED_DIR", REPO.parent / "shared")) / "data"
LAYOUT = SHARED_DATA / "upstream_layout"

if not LAYOUT.is_dir():
    if os.environ.get("CI"):
        raise RuntimeError(f"CI needs the published-layout slice at {LAYOUT} (shared/ next to the checkout)")
    pytest.skip(f"published-layout slice not found at {LAYOUT} (shared/ next to the checkout)", allow_module_level=True)


def converted(task: str) -> dict[str, dict]:
    family, name = task.split("/")
    lines = (SHARED_DATA / family / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return {record["id"]: record for record in map(json.loads, lines)}


def test_every_folder_of_the_slice_maps_to_a_registered_task():
    layout = open_layout(LAYOUT)
    assert layout.unrecognised == ()
    assert set(layout.tasks()) <= set(list_tasks())
    symbench_folders = {t for t in layout.tasks() if t.startswith("symbench/")}
    assert len(symbench_folders) == 32  # all 33 but path_plan, whose environments live in code upstream
    assert {"bbh/navigate", "bbh/web_of_lies"} <= set(layout.tasks())


@pytest.mark.parametrize("task", sorted(open_layout(LAYOUT).tasks()))
def test_records_equal_the_converted_records_of_the_same_samples(task):
    layout = open_layout(LAYOUT)
    records = list(layout.records(task))
    reference = converted(task)
    compared = [r for r in records if r["id"] in reference]
    assert compared, f"no sample of {task} in the converted copy"
    for record in compared:
        assert record == reference[record["id"]]
    # same order as the converted copy (which keeps the first samples in that order)
    order = list(reference)
    positions = [order.index(r["id"]) for r in compared]
    assert positions == sorted(positions)


def test_every_sample_is_read_not_only_the_first_hundred(tmp_path):
    root = tmp_path / "layout"
    shutil.copytree(LAYOUT / "pooling_dataset", root / "pooling_dataset")
    sample = root / "pooling_dataset" / "sample_2"
    for n in range(3, 250):  # more samples than the bundled copy keeps
        shutil.copytree(sample, root / "pooling_dataset" / f"sample_{n}")
    records = list(open_layout(root).records("symbench/pooling"))
    assert len(records) == 250 and records[-1]["id"] == "pooling/sample_249"
    assert [r["id"] for r in records[:12]] == [f"pooling/sample_{n}" for n in range(12)]  # natural order


def test_build_from_the_layout_writes_the_same_rows_as_the_bundled_copy(tmp_path):
    tasks = ["symbench/game24", "symbench/pooling", "symbench/gsm_hard", "bbh/web_of_lies"]  # slice = first samples
    bundled = build(BuildConfig(out=str(tmp_path / "bundled"), tasks=tasks, max_per_task=3))
    layout = build(BuildConfig(out=str(tmp_path / "layout"), tasks=tasks, max_per_task=3, source=str(LAYOUT)))
    assert layout["source"]["read"] == sorted(tasks) and layout["source"]["unrecognised"] == []
    for side in ("train", "test"):
        a = pq.read_table(tmp_path / "bundled" / f"{side}.parquet").to_pylist()
        b = pq.read_table(tmp_path / "layout" / f"{side}.parquet").to_pylist()
        for row in a + b:
            row["extra_info"].pop("source")  # file:line vs published:<id>
        assert a == b
    assert layout["tasks"]["symbench/game24"]["source"]["published_layout"] is True
    assert bundled["tasks"]["symbench/game24"]["source"]["file"] == "symbench/game24.jsonl"


def test_unknown_folders_are_reported_by_name_and_missing_tasks_fall_back_to_the_bundled_copy(tmp_path, capsys):
    root = tmp_path / "layout"
    shutil.copytree(LAYOUT / "2048_dataset", root / "2048_dataset")
    (root / "GridWorld1_dataset").mkdir()
    (root / "reasoning_gym").mkdir()
    (root / "README.md").write_text("ignored: documentation")
    out = tmp_path / "out"
    code = cli_main(["data", "build", "--out", str(out), "--source", str(root), "--tasks", "symbench/2048",
                     "symbench/pooling", "--max-per-task", "2", "--quiet"])  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "not recognised, not read: GridWorld1_dataset, reasoning_gym" in err
    assert "has no symbench/pooling; 1 task(s) read from the bundled copy" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["unrecognised"] == ["GridWorld1_dataset", "reasoning_gym"]
    assert manifest["source"]["bundled"] == ["symbench/pooling"]


def test_broken_samples_are_named(tmp_path):
    root = tmp_path / "layout"
    shutil.copytree(LAYOUT / "2048_dataset", root / "2048_dataset")
    (root / "2048_dataset" / "sample_1" / "solution.json").write_text("{not json")
    with pytest.raises(TaskDataError, match=r"sample_1/solution\.json:1: invalid JSON"):
        list(open_layout(root).records("symbench/2048"))
    (root / "gsmhardv2.jsonl").write_text("")
    with pytest.raises(TaskDataError, match=r"gsmhardv2\.jsonl: no samples of symbench/gsm_hard"):
        list(open_layout(root).records("symbench/gsm_hard"))


@pytest.mark.parametrize("folder, file, content, task", [
    ("BoxNet1_dataset", "env_pg_state_1_2/pg_state0/pg_state0.json", '{"0.5_0.5": 1}', "symbench/boxnet"),
    ("BoxNet1_dataset", "env_pg_state_1_2/pg_state0/pg_state0.json", '{"0.5_0.5": [1]}', "symbench/boxnet"),
])
def test_a_file_of_the_wrong_shape_is_named_not_a_traceback(tmp_path, folder, file, content, task):
    """Valid JSON of the wrong shape raised a bare TypeError from inside a reader."""
    root = tmp_path / "layout"
    shutil.copytree(LAYOUT / folder, root / folder)
    (root / folder / file).write_text(content)
    with pytest.raises(TaskDataError, match=rf"{file}: unexpected content for {task} \(\w+Error: "):
        list(open_layout(root).records(task))


def test_hf_source_names_are_checked_before_any_download():
    with pytest.raises(TaskDataError, match="expected hf:OWNER/NAME"):
        resolve_source("hf:no-slash")
    assert resolve_source(str(LAYOUT)) == (LAYOUT, ())


def test_hub_download_is_limited_to_what_the_loader_reads(tmp_path):
    """Every file of the slice matches a download pattern; an image folder matches none."""
    from fnmatch import fnmatch

    from r1ci_verl.data.published_layout import hub_patterns, known_top_level

    patterns = hub_patterns()
    read = [p.relative_to(LAYOUT).as_posix() for p in LAYOUT.rglob("*") if p.is_file() and p.name != "README.md"]
    assert all(any(fnmatch(path, pattern) for pattern in patterns) for path in read)
    assert not any(fnmatch("Open-images/0001.png", pattern) for pattern in patterns)
    assert not known_top_level("Open-images") and known_top_level("MATH")


def test_helpers():
    assert sorted(["sample_10", "sample_2", "sample_1"], key=natural_key) == ["sample_1", "sample_2", "sample_10"]
    assert last_boxed(r"so \boxed{1} then \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert last_boxed("no box") is None


def test_tasks_know_their_layout_source():
    task = get_task("symbench/pooling").from_layout(str(LAYOUT))
    questions = list(task.questions(2))
    assert [q.question_id for q in questions] == ["symbench/pooling/sample_0", "symbench/pooling/sample_1"]
    assert questions[0].source == "published:pooling/sample_0"
