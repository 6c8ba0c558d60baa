"""compute_score driven by verl's real reward loop: RewardLoopWorker → naive reward manager.

The worker loads our function from ``reward.custom_reward_function`` exactly as a training run
does (``pkg://r1ci_verl.reward``), decodes response token ids with the tiny tokenizer, merges the
agent loop's extra fields into ``extra_info``, and returns reward and extra info per sample.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from reward_fns.protocol import RESULTS_HEADER

PROMPT_LENGTH = 16


def reward_config(model_dir, reward_kwargs=None):
    return OmegaConf.create(
        {
            "actor_rollout_ref": {"model": {"path": str(model_dir), "tokenizer_path": None}},
            "reward": {
                "reward_manager": {"source": "register", "name": "naive"},
                "reward_model": {"enable": False},
                "custom_reward_function": {
                    "path": "pkg://r1ci_verl.reward",
                    "name": "compute_score",
                    "reward_kwargs": reward_kwargs or {},
                },
            },
        }
    )


def make_batch(tokenizer, samples):
    """A DataProto shaped like the agent loop's per-sample reward input (left-padded prompt)."""
    from verl import DataProto

    prompts, responses, masks = [], [], []
    response_length = max(len(tokenizer.encode(s["response"])) for s in samples) + 4
    for sample in samples:
        prompt_ids = tokenizer.encode("Question?")[-PROMPT_LENGTH:]
        response_ids = tokenizer.encode(sample["response"])
        pad = tokenizer.pad_token_id
        prompts.append([pad] * (PROMPT_LENGTH - len(prompt_ids)) + prompt_ids)
        responses.append(response_ids + [pad] * (response_length - len(response_ids)))
        masks.append(
            [0] * (PROMPT_LENGTH - len(prompt_ids))
            + [1] * (len(prompt_ids) + len(response_ids))
            + [0] * (response_length - len(response_ids))
        )
    return DataProto.from_dict(
        tensors={
            "prompts": torch.tensor(prompts),
            "responses": torch.tensor(responses),
            "attention_mask": torch.tensor(masks),
        },
        non_tensors={
            "data_source": np.array([s["data_source"] for s in samples], dtype=object),
            "reward_model": np.array([{"ground_truth": s["ground_truth"]} for s in samples], dtype=object),
            "extra_info": np.array([{"index": i} for i in range(len(samples))], dtype=object),
            "tool_extra_fields": np.array([s["extra_fields"] for s in samples], dtype=object),
            "__num_turns__": np.array([3] * len(samples)),
        },
    )


def code_turn(i: int) -> str:
    return f"```python\nprint({i})\n```\n{RESULTS_HEADER}\n{i}\n"


SAMPLES = [
    {  # correct, well formed, one code call reported by the agent loop
        "data_source": "bbh/navigate",
        "ground_truth": json.dumps({"task": "bbh/navigate", "answer": "No", "meta": {}}),
        "response": "Steps cancel out?\n" + code_turn(1) + "So <<<No>>>",
        "extra_fields": {"num_code_calls": 1},
        "expected": {"score": 1.1, "acc": 1.0, "format_ok": 1.0, "num_code_calls": 1},
    },
    {  # wrong option, plain-string ground truth
        "data_source": "bbh/date_understanding",
        "ground_truth": "(B)",
        "response": "It is <<<(C)>>>",
        "extra_fields": {"num_code_calls": 0},
        "expected": {"score": 0.1, "acc": 0.0, "format_ok": 1.0, "num_code_calls": 0},
    },
    {  # correct Reasoning-Gym answer but 7 code calls: excess-call penalty
        "data_source": "reasoning_gym/gcd",
        "ground_truth": json.dumps({"task": "reasoning_gym/gcd", "answer": "6", "meta": {"source_dataset": "gcd"}}),
        "response": "".join(code_turn(i) for i in range(7)) + "<<<6>>>",
        "extra_fields": {"num_code_calls": 7},
        "expected": {"score": 1.0, "acc": 1.0, "format_ok": 1.0, "num_code_calls": 7},
    },
    {  # no final answer: format broken
        "data_source": "bbh/object_counting",
        "ground_truth": "8",
        "response": "I count eight things.",
        "extra_fields": {},
        "expected": {"score": -0.1, "acc": 0.0, "format_ok": 0.0, "num_code_calls": 0},
    },
]


async def test_naive_reward_manager_scores_batch_with_our_compute_score(tiny_model_dir, tiny_tokenizer):
    from verl.experimental.reward_loop import RewardLoopWorker

    worker = RewardLoopWorker(reward_config(tiny_model_dir))
    outputs = await worker.compute_score_batch(make_batch(tiny_tokenizer, SAMPLES))

    assert len(outputs) == len(SAMPLES)
    for sample, output in zip(SAMPLES, outputs):
        info = output["reward_extra_info"]
        assert output["reward_score"] == pytest.approx(sample["expected"]["score"]), sample["data_source"]
        for key, value in sample["expected"].items():
            assert info[key] == pytest.approx(value), (sample["data_source"], key)
        assert info["task"] == sample["data_source"]
    # verl's agent loop stacks reward_extra_info by the first sample's keys: all must match.
    assert len({tuple(sorted(o["reward_extra_info"])) for o in outputs}) == 1


async def test_reward_kwargs_reach_compute_score(tiny_model_dir, tiny_tokenizer):
    from verl.experimental.reward_loop import RewardLoopWorker

    kwargs = {"shaping": {"format_bonus": 0.0, "format_penalty": 0.5}}
    worker = RewardLoopWorker(reward_config(tiny_model_dir, kwargs))
    outputs = await worker.compute_score_batch(make_batch(tiny_tokenizer, SAMPLES[:2] + SAMPLES[3:]))

    assert [o["reward_score"] for o in outputs] == pytest.approx([1.0, 0.0, -0.5])


def test_adapter_accepts_numpy_and_omegaconf_values():
    from r1ci_verl.reward import compute_score

    result = compute_score(
        np.str_("bbh/navigate"),
        "<<<No>>>",
        np.str_("No"),
        extra_info={"num_code_calls": np.int64(7), "num_turns": np.int32(9)},
        shaping=OmegaConf.create({"excess_calls_penalty": 0.5}),
        reward_modules=OmegaConf.create([]),
    )
    assert result["num_code_calls"] == 7 and type(result["num_code_calls"]) is int
    assert result["score"] == pytest.approx(1.0 + 0.1 - 0.5)


def batch_from_loop(tokenizer, outputs, data_source: str, ground_truth: str):
    """A reward-loop batch from real agent-loop outputs, shaped as verl's AgentLoopWorker builds it."""
    from verl import DataProto

    pad, length = tokenizer.pad_token_id, max(len(o.response_ids) for o in outputs)
    prompt_length = max(len(o.prompt_ids) for o in outputs)
    prompts = [[pad] * (prompt_length - len(o.prompt_ids)) + o.prompt_ids for o in outputs]
    responses = [o.response_ids + [pad] * (length - len(o.response_ids)) for o in outputs]
    attention = [
        [0] * (prompt_length - len(o.prompt_ids)) + [1] * (len(o.prompt_ids) + len(o.response_ids))
        + [0] * (length - len(o.response_ids))
        for o in outputs
    ]
    return DataProto.from_dict(
        tensors={"prompts": torch.tensor(prompts), "responses": torch.tensor(responses),
                 "attention_mask": torch.tensor(attention)},
        non_tensors={
            "data_source": np.array([data_source] * len(outputs), dtype=object),
            "reward_model": np.array([{"ground_truth": ground_truth}] * len(outputs), dtype=object),
            "extra_info": np.array([{"index": i} for i in range(len(outputs))], dtype=object),
            "tool_extra_fields": np.array([o.extra_fields for o in outputs], dtype=object),
            "__num_turns__": np.array([o.num_turns for o in outputs]),
        },
    )


# Code whose output is markdown or answer-like text; then what the model itself writes.
OUTPUT_ATTACKS = {
    "output opens a fence that would swallow the model's answer": ("print('```python')", "So <<<42>>>.", 1.0),
    "output '<<<' would pair with the model's '>>>'": ("print('a <<< b')", "So <<<42>>>.", 1.0),
    "output spells the answer the model never gives": ("print('<<<42>>>')", "I do not know.", 0.0),
}


@pytest.mark.parametrize("attack", OUTPUT_ATTACKS, ids=list(OUTPUT_ATTACKS))
async def test_program_output_neither_adds_hides_nor_changes_the_models_answer(
    attack, make_code_loop, tiny_model_dir, tiny_tokenizer, test_sandbox
):
    """The reward reads the model's words: verl's reward loop gets the agent loop's text without
    program output (protocol.SCORED_RESPONSE_KEY), while the response itself keeps the output."""
    from fakes import FakeScriptedLLMServer
    from verl.experimental.reward_loop import RewardLoopWorker

    code, final, acc = OUTPUT_ATTACKS[attack]
    server = FakeScriptedLLMServer(tiny_tokenizer, [f"Let me run it.\n```python\n{code}\n```\n", final])
    loop = make_code_loop(server, sandbox=test_sandbox)
    out = await loop.run({"logprobs": True}, raw_prompt=[{"role": "user", "content": "What is 6 * 7?"}])
    shown = tiny_tokenizer.decode(out.response_ids, skip_special_tokens=True)
    assert shown.startswith(f"Let me run it.\n```python\n{code}\n```\n{RESULTS_HEADER}\n")  # the model saw the output
    assert out.extra_fields["scored_response"] == f"Let me run it.\n```python\n{code}\n```\n{RESULTS_HEADER}\n\n{final}"

    worker = RewardLoopWorker(reward_config(tiny_model_dir))
    (output,) = await worker.compute_score_batch(batch_from_loop(tiny_tokenizer, [out], "bbh/multistep_arithmetic_two", "42"))
    info = output["reward_extra_info"]
    assert info["acc"] == acc
    assert info["format_ok"] == acc  # an answer, and every block followed by its results
    assert info["answer_extracted"] == acc
