"""`r1ci data build`: schema, determinism, split by task, verl's loaders, atomic writes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reward_fns.protocol import SYSTEM_PROMPT
from reward_fns.registry import Reference, get_verifier
from r1ci_verl.data import build as data_build
from r1ci_verl.cli import main as cli_main
from r1ci_verl.data.build import RL_SCHEMA, BuildConfig, BuildError, build, question_index, write_parquet_atomic
from r1ci_verl.data.splits import SplitError, load_split

TRAIN_TASKS = ["symbench/game24", "symbench/pooling", "reasoning_gym/gcd"]
TEST_TASKS = ["symbench/letter_logic_diagram", "bbh/navigate", "reasoning_gym/base_conversion"]
PER_TASK = 4


def small_config(out: Path, **overrides) -> BuildConfig:
    return BuildConfig(out=str(out), tasks=TRAIN_TASKS + TEST_TASKS, max_per_task=PER_TASK, seed=11, **overrides)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("built")
    return out, build(small_config(out))


def test_train_and_test_hold_their_tasks_with_counts(built):
    out, manifest = built
    split = load_split()
    for side, tasks in (("train", TRAIN_TASKS), ("test", TEST_TASKS)):
        table = pq.read_table(out / f"{side}.parquet")
        assert table.schema.equals(RL_SCHEMA)
        rows = table.to_pylist()
        assert sorted({r["data_source"] for r in rows}) == sorted(tasks)
        assert len(rows) == PER_TASK * len(tasks)
        assert all(r["extra_info"]["split"] == side == split.split_of(r["data_source"]) for r in rows)
        assert manifest["files"][f"{side}.parquet"]["rows"] == len(rows)
    assert manifest["counts"]["tasks"] == {"train": 3, "test": 3}
    assert manifest["split"]["version"] == split.version
    train_tasks = {r["data_source"] for r in pq.read_table(out / "train.parquet").to_pylist()}
    test_tasks = {r["data_source"] for r in pq.read_table(out / "test.parquet").to_pylist()}
    assert not train_tasks & test_tasks


def test_rows_follow_the_verl_contract(built):
    out, _ = built
    rows = pq.read_table(out / "train.parquet").to_pylist() + pq.read_table(out / "test.parquet").to_pylist()
    indices = [r["extra_info"]["index"] for r in rows]
    assert len(set(indices)) == len(rows)
    for row in rows:
        system, user = row["prompt"]
        assert system == {"role": "system", "content": SYSTEM_PROMPT}
        assert user["role"] == "user" and "<<<" in user["content"]
        assert row["agent_name"] == "r1ci_code_interpreter"
        assert row["reward_model"]["style"] == "rule"
        truth = json.loads(row["reward_model"]["ground_truth"])
        assert set(truth) == {"task", "answer", "meta"} and truth["task"] == row["data_source"]
        info = row["extra_info"]
        assert info["index"] == question_index(info["question_id"])
        assert info["task"] == row["data_source"] and info["family"] == row["data_source"].split("/")[0]
        assert row["ability"] == info["category"]


def test_ground_truth_reaches_the_verifier_intact(built):
    out, _ = built
    for row in pq.read_table(out / "test.parquet").to_pylist():
        if row["data_source"] in ("bbh/navigate", "reasoning_gym/base_conversion"):
            reference = Reference(**json.loads(row["reward_model"]["ground_truth"]))
            assert float(get_verifier(row["data_source"])(str(reference.answer), reference)) == 1.0


def test_same_config_gives_byte_identical_files(built, tmp_path):
    out, manifest = built
    again = build(small_config(tmp_path))
    for name in ("train.parquet", "test.parquet"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    assert (tmp_path / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()
    assert again == manifest
    other = build(
        BuildConfig(out=str(tmp_path / "seed12"), tasks=["reasoning_gym/gcd"], max_per_task=PER_TASK, seed=12)
    )
    assert other["files"]["train.parquet"]["sha256"] != manifest["files"]["train.parquet"]["sha256"]


def test_parallel_workers_write_the_same_bytes(built, tmp_path):
    out, manifest = built
    assert build(small_config(tmp_path, workers=2)) == manifest
    for name in ("train.parquet", "test.parquet", "manifest.json"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_manifest_records_hashes_sources_and_seeds(built):
    out, manifest = built
    import hashlib

    for name, info in manifest["files"].items():
        assert info["sha256"] == hashlib.sha256((out / name).read_bytes()).hexdigest()
    game24 = manifest["tasks"]["symbench/game24"]
    assert game24["source"]["file"] == "symbench/game24.jsonl" and len(game24["source"]["sha256"]) == 64
    gcd = manifest["tasks"]["reasoning_gym/gcd"]["source"]
    assert gcd["generator"].startswith("reasoning-gym==") and gcd["size"] == PER_TASK
    assert manifest["config"]["seed"] == 11 and manifest["config"]["max_per_task"] == PER_TASK
    assert len(manifest["split"]["sha256"]) == 64


def test_verl_rlhf_dataset_loads_the_parquet(built, tiny_tokenizer):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset

    out, _ = built
    config = OmegaConf.create(  # verl's defaults: overlong prompts are filtered with the chat template
        {"max_prompt_length": 100_000, "filter_overlong_prompts_workers": 1, "cache_dir": str(out / "cache")}
    )
    dataset = RLHFDataset(data_files=[str(out / "train.parquet")], tokenizer=tiny_tokenizer, config=config)
    assert len(dataset) == PER_TASK * len(TRAIN_TASKS)
    item = dataset[0]
    assert item["raw_prompt"][0]["content"] == SYSTEM_PROMPT
    assert item["agent_name"] == "r1ci_code_interpreter"
    assert item["index"] == item["extra_info"]["index"]
    assert json.loads(item["reward_model"]["ground_truth"])["task"] == item["data_source"]


def test_splits_and_families_select_what_is_written(tmp_path):
    manifest = build(BuildConfig(out=str(tmp_path), families=["bbh"], tasks=None, max_per_task=2, splits=["test"]))
    assert set(manifest["files"]) == {"test.parquet"}
    assert {info["family"] for info in manifest["tasks"].values()} == {"bbh"}
    assert manifest["counts"]["rows"]["test"] == 2 * 27
    with pytest.raises(BuildError, match="nothing to write"):
        build(BuildConfig(out=str(tmp_path / "none"), families=["bbh"], max_per_task=2, splits=["train"]))


def test_task_outside_the_split_stops_the_build(tmp_path):
    split_file = tmp_path / "split.yaml"
    split_file.write_text("version: 7\nseed: 0\ntrain: [symbench/pooling]\ntest: []\n", encoding="utf-8")
    config = BuildConfig(
        out=str(tmp_path / "out"), tasks=["symbench/pooling", "symbench/game24"], split_file=str(split_file)
    )
    with pytest.raises(SplitError, match=r"'symbench/game24' is not in .*split\.yaml"):
        build(config)
    assert not (tmp_path / "out" / "train.parquet").exists()


def test_bad_config_is_refused(tmp_path):
    with pytest.raises(BuildError, match="unknown task"):
        build(BuildConfig(out=str(tmp_path), tasks=["symbench/nope"]))
    with pytest.raises(BuildError, match="max_per_task"):
        build(BuildConfig(out=str(tmp_path), max_per_task=0))
    with pytest.raises(BuildError, match="workers"):
        build(BuildConfig(out=str(tmp_path), workers=0))
    with pytest.raises(BuildError, match="unknown families"):
        build(BuildConfig(out=str(tmp_path), families=["gsm8k"]))


def test_duplicate_question_ids_across_tasks_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(data_build, "question_index", lambda question_id: 42)
    with pytest.raises(BuildError, match=r"task 'symbench/pooling': duplicate question id 'symbench/pooling/sample_1'"):
        build(BuildConfig(out=str(tmp_path), tasks=["symbench/pooling"], max_per_task=3))


def test_crash_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "train.parquet"
    rows = build_rows()
    write_parquet_atomic(rows, RL_SCHEMA, path)
    before = path.read_bytes()

    def crash(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(data_build.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(rows[:1], RL_SCHEMA, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["train.parquet"]  # no temp file left behind


def build_rows() -> list[dict]:
    from r1ci_verl.data.tasks import get_task

    task = get_task("symbench/pooling")
    return [data_build.rl_row(task, q, "train") for q in task.questions(2)]


def test_cli_builds_and_reports_errors(tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["data", "build", "--out", str(out), "--tasks", "symbench/pooling", "bbh/navigate",
                     "--max-per-task", "2", "--quiet"])  # fmt: skip
    assert code == 0
    assert pq.read_table(out / "train.parquet").num_rows == 2 and pq.read_table(out / "test.parquet").num_rows == 2
    assert json.loads((out / "manifest.json").read_text())["files"]["test.parquet"]["rows"] == 2
    assert cli_main(["data", "build", "--out", str(out), "--tasks", "symbench/nope", "--quiet"]) == 1
    assert "unknown task(s) ['symbench/nope']" in capsys.readouterr().err
