"""The packaged split presets: the paper's kind by default, BBH held out by name, explicit regeneration only."""

from __future__ import annotations

from collections import Counter

import pytest

from r1ci_verl.data.assets import SPLITS_DIR
from r1ci_verl.data.splits import (
    BBH_HELDOUT_PRESET,
    DEFAULT_PRESET,
    PAPER_TEST_TASKS,
    SplitError,
    TaskSplit,
    list_presets,
    load_split,
    make_split,
    preset_path,
    proportional_quotas,
    split_yaml,
    write_split,
)
from r1ci_verl.data.tasks import list_tasks


def base(name: str) -> str:
    return name.split("/", 1)[1]


def family(name: str) -> str:
    return name.split("/", 1)[0]


@pytest.mark.parametrize("preset", [DEFAULT_PRESET, BBH_HELDOUT_PRESET])
def test_current_presets_cover_every_registered_task_disjointly(preset):
    split = load_split(preset)
    assert split.name == preset and split.path == preset_path(preset)
    assert set(split.train) | set(split.test) | set(split.excluded) == set(list_tasks())
    assert not set(split.train) & set(split.test)
    assert len(split.test) == PAPER_TEST_TASKS


def test_default_is_the_papers_kind_with_bbh_on_both_sides_and_families_in_proportion():
    split = load_split()
    assert split.name == DEFAULT_PRESET and split.kind == "random-by-task"
    tasks = list_tasks()
    sizes = Counter(family(n) for n in tasks)
    test = Counter(family(n) for n in split.test)
    # 37 places in proportion to the family sizes (33 SymBench, 27 BBH, 100 Reasoning-Gym -> 8 / 6 / 23)
    assert dict(test) == proportional_quotas(sizes, PAPER_TEST_TASKS) == {"symbench": 8, "bbh": 6, "reasoning_gym": 23}
    assert split.canary_tasks_in_training()  # BBH trains too: the build says so in one line


def test_bbh_heldout_preset_holds_out_every_bbh_task_and_its_twins():
    split = load_split(BBH_HELDOUT_PRESET)
    assert split.kind == "bbh-heldout"
    assert set(list_tasks(["bbh"])) <= set(split.test) and not split.canary_tasks_in_training()
    assert "reasoning_gym/word_sorting" in split.test  # same name as bbh/word_sorting


@pytest.mark.parametrize("preset", [DEFAULT_PRESET, BBH_HELDOUT_PRESET])
def test_no_test_task_has_a_same_named_twin_in_training(preset):
    split = load_split(preset)
    train_bases = {base(n) for n in split.train}
    assert not [n for n in split.test if base(n) in train_bases]


@pytest.mark.parametrize("preset", [DEFAULT_PRESET, BBH_HELDOUT_PRESET])
def test_packaged_preset_is_byte_for_byte_what_make_split_writes(preset):
    split = load_split(preset)
    remade = make_split(list_tasks(), name=split.name, kind=split.kind, version=split.version, seed=split.seed,
                        excluded=split.excluded)  # fmt: skip
    assert split_yaml(remade) == preset_path(preset).read_text(encoding="utf-8"), (
        "the task suite changed since this preset was written: publish a new one with `r1ci data split`"
    )


def test_version_one_of_the_bbh_heldout_split_still_loads():
    split = load_split("bbh_heldout_v1")
    assert split.version == 1 and split.kind == "unspecified" and set(list_tasks(["bbh"])) <= set(split.test)


def test_make_split_is_deterministic_and_seeded():
    names = list_tasks()
    assert make_split(names, "a", seed=1) == make_split(list(reversed(names)), "a", seed=1)
    assert make_split(names, "a", seed=1).test != make_split(names, "a", seed=2).test


def test_random_rule_on_a_small_suite_draws_every_family_and_never_a_twin():
    names = ["bbh/a", "bbh/b", "bbh/word_sorting", "symbench/s1", "symbench/s2", "symbench/sudoku",
             "reasoning_gym/r1", "reasoning_gym/r2", "reasoning_gym/r3", "reasoning_gym/r4",
             "reasoning_gym/sudoku", "reasoning_gym/word_sorting"]  # fmt: skip
    split = make_split(names, "small", kind="random-by-task", n_test=4)
    assert Counter(family(n) for n in split.test) == {"reasoning_gym": 2, "bbh": 1, "symbench": 1}
    assert not {"symbench/sudoku", "reasoning_gym/sudoku", "bbh/word_sorting"} & set(split.test)
    assert set(split.train) | set(split.test) == set(names)


def test_bbh_heldout_rule_on_a_small_suite():
    names = ["bbh/a", "bbh/word_sorting", "symbench/s1", "symbench/s2", "symbench/sudoku",
             "reasoning_gym/r1", "reasoning_gym/r2", "reasoning_gym/r3", "reasoning_gym/r4",
             "reasoning_gym/sudoku", "reasoning_gym/word_sorting"]  # fmt: skip
    split = make_split(names, "small", kind="bbh-heldout", n_test=5)
    assert {"bbh/a", "bbh/word_sorting", "reasoning_gym/word_sorting"} <= set(split.test)
    assert len(split.test) == 5
    assert not {"symbench/sudoku", "reasoning_gym/sudoku"} & set(split.test)
    assert set(split.train) | set(split.test) == set(names)


def test_excluded_tasks_pin_a_subset(tmp_path):
    names = list_tasks()
    dropped = {n: "not in our subset" for n in list_tasks(["reasoning_gym"])[:16]}  # 100 -> 84 datasets
    split = make_split(names, "rg84", excluded=dropped)
    assert not set(dropped) & (set(split.train) | set(split.test))
    loaded = load_split(path=write_split(split, tmp_path / "rg84.yaml"))
    assert loaded.excluded == dropped and loaded.split_of(next(iter(dropped))) == "excluded"


def test_unknown_task_is_an_error_not_a_guess():
    with pytest.raises(SplitError, match=r"'symbench/brand_new' is not in split paper_random_v1 .*--split-file"):
        load_split().split_of("symbench/brand_new")


def test_a_users_split_file_is_checked_by_name(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("version: 1\nseed: 0\ntrain: [symbench/pooling, symbench/pooing]\ntest: [bbh/navigate]\n")
    split = load_split(path=path)
    assert split.name == "mine"
    with pytest.raises(SplitError, match=r"mine\.yaml: unknown task\(s\) symbench/pooing"):
        split.check_names(list_tasks())


def test_inconsistent_or_malformed_splits_are_refused(tmp_path):
    with pytest.raises(SplitError, match="both 'train' and 'test'"):
        TaskSplit("s", "random-by-task", 1, 0, train=("symbench/a",), test=("symbench/a",))
    with pytest.raises(SplitError, match="twice"):
        TaskSplit("s", "random-by-task", 1, 0, train=("symbench/a", "symbench/a"), test=())
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nseed: 0\ntrain: [symbench/a]\n", encoding="utf-8")
    with pytest.raises(SplitError, match=r"bad\.yaml: missing field\(s\) \['test'\]"):
        load_split(path=bad)
    bad.write_text("version: one\nseed: 0\ntrain: []\ntest: []\n", encoding="utf-8")
    with pytest.raises(SplitError, match="'version' must be an integer"):
        load_split(path=bad)
    with pytest.raises(SplitError, match="unknown split preset 'nope'; presets: "):
        load_split("nope")


def test_write_split_round_trips_and_never_overwrites(tmp_path):
    split = make_split(["bbh/a", "symbench/b", "symbench/c"], "two", version=2, n_test=2)
    path = write_split(split, tmp_path / "two.yaml")
    loaded = load_split(path=path)
    assert (loaded.name, loaded.kind, loaded.version, loaded.train, loaded.test) == (
        "two", "random-by-task", 2, split.train, split.test)  # fmt: skip
    with pytest.raises(SplitError, match="already exists"):
        write_split(split, path)


def test_every_packaged_preset_loads_and_names_known_tasks_or_predates_them():
    for preset in list_presets():
        split = load_split(preset)
        assert preset_path(preset).parent == SPLITS_DIR
        known = set(list_tasks())
        assert set(split.train) | set(split.test) <= known
