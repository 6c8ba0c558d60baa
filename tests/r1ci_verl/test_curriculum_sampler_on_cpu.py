"""CurriculumSampler: stage schedule, cumulative pools, exact resume, online regrouping."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from r1ci_verl.training.curriculum import CurriculumConfig, CurriculumSampler, load_pass_rates
from r1ci_verl.potential import partition, write_table

# 12 questions with ids 100..111 at dataset rows 0..11. Π = 4p(1-p): p=0.5 -> 1.0, p=0 or 1 -> 0.
IDS = list(range(100, 112))
P = {100: 0.5, 101: 0.0, 102: 1.0, 103: 0.4, 104: 0.9, 105: 0.6, 106: 0.1, 107: 0.5, 108: 0.3, 109: 0.0, 110: 0.7, 111: 0.2}


def make_sampler(mode="static", steps_per_stage=2, batch_size=3, num_stages=4, seed=0, ids=IDS, p=P, **kw):
    config = CurriculumConfig(potential_file="potential.jsonl", num_stages=num_stages,
                              steps_per_stage=steps_per_stage, mode=mode, seed=seed, **kw)
    return CurriculumSampler(ids, p, config, batch_size=batch_size)


def take(sampler_iter, n):
    return list(itertools.islice(sampler_iter, n))


def test_groups_follow_potential_with_index_tie_break():
    groups = partition(P, 4)
    # Π: 100,107 -> 1.0; 103,105 -> 0.96; 108,110 -> 0.84; 111 -> .64; 106,104 -> .36; 101,102,109 -> 0
    assert groups == [[100, 107, 103], [105, 108, 110], [111, 104, 106], [101, 102, 109]]
    assert partition(P, 4, mode="difficulty")[0] == [102, 104, 110]  # easiest (highest p) first


def test_stage_schedule_and_cumulative_pools():
    sampler = make_sampler()
    it = iter(sampler)
    stage_len = 2 * 3  # steps_per_stage × batch_size
    groups = partition(P, 4)
    seen_pools = []
    for stage in range(4):
        draws = take(it, stage_len)
        allowed = {IDS.index(q) for g in groups[: stage + 1] for q in g}
        assert set(draws) <= allowed, f"stage {stage + 1} drew outside its pool"
        assert sampler.stage == stage
        seen_pools.append(len(sampler.pool()))
    assert seen_pools == [3, 6, 9, 12]
    # stage 1 (pool of 3) covers its pool every pass
    first = make_sampler()
    assert sorted(take(iter(first), 3)) == sorted(IDS.index(q) for q in groups[0])
    # the last stage never ends and keeps covering all data
    tail = take(it, 12 * 3)
    assert sampler.stage == 3 and set(tail) == set(range(12))
    assert sampler.metrics()["curriculum/stage_transitions"] == 3


def test_shuffle_is_seeded():
    a, b, c = make_sampler(seed=1), make_sampler(seed=1), make_sampler(seed=2)
    assert take(iter(a), 40) == take(iter(b), 40)
    assert take(iter(a), 40) != take(iter(c), 40)


@pytest.mark.parametrize("mode", ["static", "online"])
@pytest.mark.parametrize("cut", [1, 4, 7, 13, 30])
def test_state_dict_round_trip_resumes_exactly(mode, cut):
    reference = make_sampler(mode)
    expected = take(iter(reference), 60)

    first = make_sampler(mode)
    head = take(iter(first), cut)
    if mode == "online":
        first.update([IDS[i] for i in head], [1.0] * len(head))
    state = first.state_dict()
    resumed = make_sampler(mode)
    resumed.load_state_dict(state)
    tail = take(iter(resumed), 60 - cut)
    if mode == "static":
        assert head + tail == expected
    continued = take(iter(first), 60 - cut)
    assert tail == continued  # a resumed run continues exactly like the uninterrupted one


def test_state_belongs_to_its_data_and_settings():
    state = make_sampler().state_dict()
    with pytest.raises(ValueError, match="other data or settings"):
        make_sampler(steps_per_stage=3).load_state_dict(state)
    with pytest.raises(ValueError, match="other data or settings"):
        make_sampler(ids=list(reversed(IDS))).load_state_dict(state)


class _Rows(Dataset):
    def __len__(self):
        return len(IDS)

    def __getitem__(self, i):
        return {"row": i}


def _loader(sampler, batch_size=3):
    return StatefulDataLoader(_Rows(), batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=0,
                              collate_fn=lambda items: [x["row"] for x in items])


@pytest.mark.parametrize("mode", ["static", "online"])
def test_resume_through_stateful_dataloader(tmp_path, mode):
    """verl saves `train_dataloader.state_dict()` in data.pt and loads it on resume."""

    def feed(sampler, batch):  # deterministic feedback: even question ids solved, odd ones not
        ids = [IDS[i] for i in batch]
        sampler.update(ids, [1.0 if q % 2 == 0 else 0.0 for q in ids])

    sampler = make_sampler(mode)
    loader = _loader(sampler)
    it = iter(loader)
    for _ in range(5):  # mid-stage 3; stage 4 (a regroup in online mode) starts after the resume
        feed(sampler, next(it))
    torch.save(loader.state_dict(), tmp_path / "data.pt")
    expected = []
    for _ in range(9):
        expected.append(next(it))
        feed(sampler, expected[-1])

    fresh_sampler = make_sampler(mode)
    fresh = _loader(fresh_sampler)
    fresh.load_state_dict(torch.load(tmp_path / "data.pt", weights_only=False))
    it = iter(fresh)
    tail = []
    for _ in range(9):
        tail.append(next(it))
        feed(fresh_sampler, tail[-1])
    assert tail == expected
    assert fresh_sampler.state_dict() == sampler.state_dict()


def test_online_updates_move_questions_between_groups():
    sampler = make_sampler("online", online_ema=1.0)
    it = iter(sampler)
    take(it, 6)  # stage 1
    assert sampler.stage == 0
    # question 100 (Π=1, group 1) turns out always solved; 101 (p=0, last group) solved half the time
    assert sampler.update([100, 100, 101, 101], [1.0, 1.0, 1.0, 0.0]) == 2
    assert sampler.p[100] == 1.0 and sampler.p[101] == 0.5
    take(it, 1)  # crossing into stage 2 re-ranks
    assert sampler.stage == 1
    assert 101 in sampler.groups[0] and 100 in sampler.groups[3]
    assert sampler.metrics()["curriculum/moved_at_last_regroup"] >= 2


def test_static_mode_ignores_feedback():
    sampler = make_sampler("static")
    assert sampler.update([100], [0.0]) == 0
    assert sampler.p[100] == P[100]


def test_missing_potential_is_a_clear_error():
    with pytest.raises(ValueError, match="no entry in the potential file"):
        make_sampler(p={q: v for q, v in P.items() if q != 105})


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown curriculum config keys"):
        CurriculumConfig.from_mapping({"potential_file": "x", "stages": 3})
    with pytest.raises(ValueError, match="mode"):
        CurriculumConfig(potential_file="x", mode="sometimes")


def test_load_pass_rates_from_written_table(tmp_path):
    path = tmp_path / "potential.parquet"
    write_table([{"index": q, "p": p} for q, p in P.items()], path)
    assert load_pass_rates(str(path)) == P
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"index": 1, "p": 0.5}\n{"index": 2}\n')
    with pytest.raises(ValueError, match="row 1: field 'p' is missing"):
        load_pass_rates(str(bad))


def test_checkpoint_of_a_run_without_curriculum_is_rejected():
    from torchdata.stateful_dataloader.sampler import RandomSampler

    plain = _loader(RandomSampler(_Rows(), generator=torch.Generator().manual_seed(0)))
    next(iter(plain))
    loader = _loader(make_sampler())
    loader.load_state_dict(plain.state_dict())
    with pytest.raises(ValueError, match="not a curriculum state"):
        next(iter(loader))
