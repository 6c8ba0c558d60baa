"""The versioned train/test split: coverage, disjointness, BBH held out, and explicit regeneration only."""

from __future__ import annotations

import pytest

from r1ci_verl.data.splits import (
    CURRENT_VERSION,
    PAPER_TEST_TASKS,
    SplitError,
    TaskSplit,
    load_split,
    make_split,
    split_path,
    write_split,
)
from r1ci_verl.data.tasks import list_tasks


def base(name: str) -> str:
    return name.split("/", 1)[1]


def test_packaged_split_covers_every_registered_task_disjointly():
    split = load_split()
    assert split.version == CURRENT_VERSION and split.path == split_path(CURRENT_VERSION)
    registered = set(list_tasks())
    assert set(split.train) | set(split.test) == registered, "regenerate the split with `r1ci data split`"
    assert not set(split.train) & set(split.test)
    assert len(split.test) == PAPER_TEST_TASKS


def test_packaged_split_holds_out_bbh_and_every_twin_of_a_test_task():
    split = load_split()
    assert set(list_tasks(["bbh"])) <= set(split.test)
    assert not [n for n in split.train if n.startswith("bbh/")]
    train_bases = {base(n) for n in split.train}
    assert not [n for n in split.test if base(n) in train_bases], "a test task has a same-named twin in training"
    # the test side is not BBH alone: some generated and SymBench tasks are held out too
    assert {n.split("/")[0] for n in split.test} == {"bbh", "symbench", "reasoning_gym"}


def test_packaged_split_is_what_make_split_writes():
    split = load_split()
    remade = make_split(list_tasks(), version=split.version, seed=split.seed)
    assert (remade.train, remade.test) == (split.train, split.test), (
        "the task suite changed since this split was written: publish a new version with `r1ci data split`"
    )


def test_make_split_is_deterministic_and_seeded():
    names = list_tasks()
    assert make_split(names, 9, seed=1) == make_split(list(reversed(names)), 9, seed=1)
    assert make_split(names, 9, seed=1).test != make_split(names, 9, seed=2).test


def test_make_split_rule_on_a_small_suite():
    names = ["bbh/a", "bbh/word_sorting", "symbench/s1", "symbench/s2", "symbench/sudoku",
             "reasoning_gym/r1", "reasoning_gym/r2", "reasoning_gym/r3", "reasoning_gym/r4",
             "reasoning_gym/sudoku", "reasoning_gym/word_sorting"]  # fmt: skip
    split = make_split(names, version=5, n_test=5)
    assert {"bbh/a", "bbh/word_sorting", "reasoning_gym/word_sorting"} <= set(split.test)
    assert len(split.test) == 5
    assert not {"symbench/sudoku", "reasoning_gym/sudoku"} & set(split.test)  # twins are never picked
    assert set(split.train) | set(split.test) == set(names)


def test_unknown_task_is_an_error_not_a_guess():
    with pytest.raises(SplitError, match=r"'symbench/brand_new' is not in .*r1ci data split"):
        load_split().split_of("symbench/brand_new")


def test_inconsistent_splits_are_refused(tmp_path):
    with pytest.raises(SplitError, match="both sides"):
        TaskSplit(version=1, seed=0, train=("symbench/a",), test=("symbench/a",))
    with pytest.raises(SplitError, match="test-only"):
        TaskSplit(version=1, seed=0, train=("bbh/navigate",), test=())
    with pytest.raises(SplitError, match="twice"):
        TaskSplit(version=1, seed=0, train=("symbench/a", "symbench/a"), test=())
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nseed: 0\ntrain: [symbench/a]\n", encoding="utf-8")
    with pytest.raises(SplitError, match=r"bad\.yaml: missing field\(s\) \['test'\]"):
        load_split(path=bad)
    with pytest.raises(SplitError, match="split file not found"):
        load_split(version=999)


def test_write_split_round_trips_and_never_overwrites(tmp_path):
    split = make_split(["bbh/a", "symbench/b", "symbench/c"], version=2, n_test=2)
    path = write_split(split, tmp_path / "task_split_v2.yaml")
    loaded = load_split(path=path)
    assert (loaded.version, loaded.train, loaded.test) == (2, split.train, split.test)
    with pytest.raises(SplitError, match="already exists"):
        write_split(split, path)
