"""The curriculum inside verl: real hydra config, RLHFDataset, trainer dataloader, TQ-shaped feedback."""

from __future__ import annotations

import pandas as pd
import pytest
from hydra import compose, initialize_config_module

from r1ci_verl.training.curriculum import CurriculumSampler
from r1ci_verl.training.main_grpo import (
    as_list,
    build_curriculum_dataloader,
    check_config,
    curriculum_config,
    feedback_from_fields,
    with_curriculum,
)
from r1ci_verl.potential import partition, write_table
from r1ci_verl.smoke.tiny_model import build_tiny_tokenizer

NUM_QUESTIONS = 16
QIDS = [1000 + 7 * i for i in range(NUM_QUESTIONS)]  # ids unrelated to row positions
PASS_RATES = {q: (i % 5) / 4 for i, q in enumerate(QIDS)}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return build_tiny_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture()
def run_files(tmp_path):
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {i} + {i}? Return <<<answer>>>."}],
            "data_source": "symbench/number_multiply",
            "reward_model": {"style": "rule", "ground_truth": str(2 * i)},
            "extra_info": {"index": q, "task": "symbench/number_multiply"},
        }
        for i, q in enumerate(QIDS)
    ]
    pd.DataFrame(rows).to_parquet(tmp_path / "train.parquet")
    pd.DataFrame(rows[:2]).to_parquet(tmp_path / "val.parquet")
    write_table([{"index": q, "p": p} for q, p in PASS_RATES.items()], tmp_path / "potential.parquet")
    return tmp_path


def verl_config(files, *extra):
    """verl's own ppo_trainer config, composed with the overrides a user would pass."""
    with initialize_config_module("verl.trainer.config", version_base=None):
        return compose(
            "ppo_trainer",
            overrides=[
                f"data.train_files={files / 'train.parquet'}",
                f"data.val_files={files / 'val.parquet'}",
                "data.train_batch_size=4",
                "data.dataloader_num_workers=0",
                f"+curriculum.potential_file={files / 'potential.parquet'}",
                "+curriculum.steps_per_stage=1",
                *extra,
            ],
        )


def make_trainer(config, tokenizer):
    """verl's sync trainer with our mixin, set up only as far as its dataloader."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    trainer = object.__new__(with_curriculum(get_trainer_cls("sync")))
    trainer.config, trainer.tokenizer, trainer.processor = config, tokenizer, None
    trainer.trainer_mode, trainer.parameter_sync_step = "sync", 1
    trainer._init_dataloader()
    return trainer


def test_trainer_dataloader_yields_stage_one_first(run_files, tokenizer):
    config = verl_config(run_files)
    assert check_config(config).steps_per_stage == 1
    trainer = make_trainer(config, tokenizer)
    assert isinstance(trainer.curriculum, CurriculumSampler)
    assert trainer.total_training_steps == 4  # defaulted to num_stages × steps_per_stage
    groups = partition(PASS_RATES, 4)

    first = trainer._fetch_one_gen_batch()  # verl's own fetch: RLHFDataset rows, collated
    assert sorted(as_list(first["index"])) == sorted(groups[0])
    second = trainer._fetch_one_gen_batch()
    assert set(as_list(second["index"])) <= set(groups[0] + groups[1])
    assert trainer.curriculum.metrics()["curriculum/pool_size"] == 8


def test_dataloader_state_resumes_in_a_new_trainer(run_files, tokenizer):
    config = verl_config(run_files, "+curriculum.seed=3")
    trainer = make_trainer(config, tokenizer)
    for _ in range(3):
        trainer._fetch_one_gen_batch()
    state = trainer.train_dataloader.state_dict()  # what verl writes to data.pt
    expected = [as_list(trainer._fetch_one_gen_batch()["index"]) for _ in range(3)]

    resumed = make_trainer(verl_config(run_files, "+curriculum.seed=3"), tokenizer)
    resumed.train_dataloader.load_state_dict(state)  # what verl's _load_checkpoint does
    assert [as_list(resumed._fetch_one_gen_batch()["index"]) for _ in range(3)] == expected


def test_build_function_matches_verl_loader_settings(run_files, tokenizer):
    from verl.trainer.ppo.utils import create_rl_dataset

    config = verl_config(run_files, "data.gen_batch_size=2")
    dataset = create_rl_dataset(config.data.train_files, config.data, tokenizer, None)
    loader, sampler = build_curriculum_dataloader(config, dataset)
    assert loader.batch_size == 2 and loader.drop_last and sampler.batch_size == 4
    assert sampler.stage_length == 4  # steps count train_batch_size prompts, not gen_batch_size


def test_config_checks(run_files):
    with pytest.raises(ValueError, match="dataloader_num_workers=0"):
        check_config(verl_config(run_files, "+curriculum.mode=online", "data.dataloader_num_workers=2"))
    with pytest.raises(ValueError, match="unknown curriculum config keys"):
        curriculum_config(verl_config(run_files, "+curriculum.stage_steps=3"))
    with pytest.raises(FileNotFoundError):
        check_config(verl_config(run_files, "curriculum.potential_file=/nonexistent/potential.parquet"))


def test_feedback_reads_trajectory_fields_as_transfer_queue_returns_them():
    """Fields are stored per trajectory by verl's AgentLoopWorkerTQ via list_of_dict_to_tensordict."""
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    fields = [
        {"index": q, "extra_fields": {"reward_extra_info": {"acc": acc, "score": acc + 0.1}}}
        for q, acc in [(1000, 1.0), (1000, 0.0), (1007, 1.0), (1007, 1.0)]
    ]
    data = list_of_dict_to_tensordict(fields)
    qids, accs = feedback_from_fields(as_list(data["index"]), as_list(data["extra_fields"]), [False, False, False, True])
    assert qids == [1000, 1000, 1007] and accs == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="must return a dict with 'acc'"):
        feedback_from_fields([1000], [{"reward_extra_info": {"score": 1.0}}], [False])
