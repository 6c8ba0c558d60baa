"""Fast CPU tests of the smoke run's own parts (no vLLM needed): the CPU platform's answers,
the backend fix, the scripted teacher in the real sandbox, and the checks on synthetic dumps."""

from __future__ import annotations

import json
import pytest
import torch

from reward_fns.protocol import RESULTS_HEADER
from r1ci_verl.cpu_platform.patches import collapse_backend
from r1ci_verl.smoke import checks
from r1ci_verl.smoke.teacher import TEACHERS, plan_chain_sum, plan_gcd, plan_lcm, teacher_policy


@pytest.mark.parametrize(
    "given, expected",
    [
        ("cpu:gloo,cpu:gloo", "gloo"),
        ("cpu:gloo,cuda:nccl", "cpu:gloo,cuda:nccl"),
        ("gloo", "gloo"),
        (None, None),
        ("cpu:gloo,cpu:nccl", "cpu:gloo,cpu:nccl"),  # conflicting names are torch's to reject
    ],
)
def test_collapse_backend(given, expected):
    assert collapse_backend(given) == expected


def test_cpu_platform_answers_like_a_cpu_device():
    from verl.plugin.platform import PlatformRegistry

    import r1ci_verl.cpu_platform  # noqa: F401  (registers the platform)

    platform = PlatformRegistry.get("cpu")()
    assert platform.device_name == "cpu" and platform.communication_backend_name() == "gloo"
    assert not platform.is_ipc_supported() and platform.ray_resource_name() == "GPU"
    module = platform.device_module
    tensor = torch.ones(2).to(platform.current_device())  # verl's `.to(get_device_id())` stays on CPU
    assert tensor.device.type == "cpu"
    assert module.memory_allocated() == 0 and module.max_memory_reserved() == 0
    free, total = module.mem_get_info()
    assert 0 < free <= total
    state = module.get_rng_state()
    first = torch.rand(3)
    module.set_rng_state(state)
    assert torch.equal(first, torch.rand(3))


def test_teacher_plans_parse_questions():
    assert plan_chain_sum("State the final answer to the following arithmetic problem: 12 + 7 - 3 =").code == "print(12 + 7 - 3)"
    assert "math.gcd(944, 238)" in plan_gcd("Find the GCD of these numbers: 944, 238. Give only the GCD.").code
    assert "math.lcm(48, 86)" in plan_lcm("Find the Least Common Multiple (LCM) of these numbers: 48, 86").code
    assert plan_chain_sum("What is the capital of France?") is None
    assert plan_chain_sum("problem: __import__('os') =") is None  # only arithmetic is copied into code


def test_teacher_policy_writes_code_then_answers_from_the_results():
    prompt = ("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nFind the GCD of these numbers: 12, 18.<|im_end|>\n"
              "<|im_start|>assistant\n")
    text, eos = teacher_policy(prompt)
    assert text.startswith("```python\n# ") and "math.gcd(12, 18)" in text and text.endswith("```\n")
    text, _ = teacher_policy(prompt + text + "Code Execution Results:\n6\n")
    assert text.endswith("<<<6>>>")  # what the code printed, never a looked-up answer
    assert teacher_policy(prompt.replace("GCD", "capital"))[0].endswith("<<<unknown>>>")
    assert set(TEACHERS) >= {"reasoning_gym/gcd"}


def _tokenizer(tmp_path):
    from r1ci_verl.smoke.tiny_model import build_tiny_tokenizer

    return build_tiny_tokenizer(tmp_path / "tok")


def _trajectory(tokenizer, masked_text: str, calls: int) -> dict:
    generated = tokenizer.encode("```python\nprint(1)\n```", add_special_tokens=False)
    inserted = tokenizer.encode(masked_text, add_special_tokens=False)
    tail = tokenizer.encode("<<<1>>>", add_special_tokens=False)
    pad = [tokenizer.pad_token_id] * 3
    ids = generated + inserted + tail + pad
    mask = [1] * len(generated) + [0] * len(inserted) + [1] * len(tail) + [0] * len(pad)
    return {"uid": "u", "step": 1, "index": 7, "response_ids": ids, "response_mask": mask, "num_code_calls": calls}


def test_agent_loop_checks_accept_masked_results_blocks(tmp_path):
    tokenizer = _tokenizer(tmp_path)
    good = _trajectory(tokenizer, f"\n{RESULTS_HEADER}\n1\n", calls=1)
    found = {c.name: c.passed for c in checks.check_agent_loop([good], tokenizer)}
    assert found == {"agent_loop.code_executed": True, "agent_loop.results_blocks_inserted": True,
                     "agent_loop.only_results_masked": True}
    too_few = checks.check_agent_loop([good], tokenizer, min_code_calls=2)[0]
    assert too_few.name == "agent_loop.code_executed" and not too_few.passed and "need >= 2" in too_few.detail


def test_a_results_block_cut_by_the_response_budget_is_still_a_results_block(tmp_path):
    """The engine inserts only what fits the budget: a block at the end may be cut to its first
    token ("\\n"); that is a results block, while the same text inside the response is not."""
    tokenizer = _tokenizer(tmp_path)
    generated = tokenizer.encode("```python\nprint(1)\n```", add_special_tokens=False)
    for inserted_text in ("\n", f"\n{RESULTS_HEADER[:4]}"):
        inserted = tokenizer.encode(inserted_text, add_special_tokens=False)
        cut = {"uid": "u", "step": 1, "index": 7, "response_ids": generated + inserted,
               "response_mask": [1] * len(generated) + [0] * len(inserted), "num_code_calls": 1}
        found = {c.name: c.passed for c in checks.check_agent_loop([cut], tokenizer)}
        assert found["agent_loop.only_results_masked"] is True, inserted_text
    inside = _trajectory(tokenizer, "\n", calls=1)
    assert {c.name: c.passed for c in checks.check_agent_loop([inside], tokenizer)}["agent_loop.only_results_masked"] is False


def test_agent_loop_checks_reject_masked_model_text_and_no_calls(tmp_path):
    tokenizer = _tokenizer(tmp_path)
    bad = _trajectory(tokenizer, "the model's own words", calls=0)
    found = {c.name: c.passed for c in checks.check_agent_loop([bad], tokenizer)}
    assert found["agent_loop.code_executed"] is False
    assert found["agent_loop.only_results_masked"] is False
    assert checks.check_agent_loop([], tokenizer)[0].passed is False


def test_weight_sync_and_reward_checks():
    metrics = {s: {"training/rollout_probs_diff_max": 1e-4, "reward/acc/mean": 0.0,
                   "reward/format_ok/mean": 0.5, "reward/num_code_calls/mean": 1.0}
               for s in (1, 2)}
    assert checks.check_weight_sync(metrics, 2, 0.05).passed
    assert checks.check_rewards_logged(metrics, 2).passed
    metrics[2]["training/rollout_probs_diff_max"] = 0.5  # rollout ran stale weights
    assert not checks.check_weight_sync(metrics, 2, 0.05).passed
    del metrics[1]["reward/acc/mean"]
    assert not checks.check_rewards_logged(metrics, 2).passed


def test_agent_metrics_check():
    metrics = {s: {f"agent/{name}/mean": 0.5 for name in checks.AGENT_METRICS} for s in (1, 2)}
    assert checks.check_agent_metrics_logged(metrics, 2).passed
    del metrics[2]["agent/code_timeouts/mean"]
    found = checks.check_agent_metrics_logged(metrics, 2)
    assert not found.passed and "code_timeouts@2" in found.detail


def test_curriculum_checks_follow_the_schedule():
    groups = [[1, 2], [3, 4]]
    metrics = {s: {"curriculum/stage": float(checks.stage_of_step(s, 2, 2))} for s in range(1, 5)}
    drawn = [{"step": 1, "index": 1}, {"step": 2, "index": 2}, {"step": 3, "index": 3}, {"step": 4, "index": 1}]
    assert all(c.passed for c in checks.check_curriculum(metrics, drawn, groups, 2, 2))
    early = drawn + [{"step": 2, "index": 4}]  # a stage-2 question before the switch
    names = {c.name: c.passed for c in checks.check_curriculum(metrics, early, groups, 2, 2)}
    assert names["curriculum.pool_respected"] is False
    metrics[3]["curriculum/stage"] = 1.0  # switched late
    names = {c.name: c.passed for c in checks.check_curriculum(metrics, drawn, groups, 2, 2)}
    assert names["curriculum.stage_schedule"] is False


def test_masked_spans_ignore_trailing_padding():
    assert checks.masked_spans([1, 0, 0, 1, 0, 0], [5, 6, 7, 8, 0, 0], pad_id=0) == [(1, 3)]
    assert checks.masked_spans([1, 0, 0], [5, 6, 7], pad_id=0) == [(1, 3)]


def test_resume_check_tells_resumed_from_restarted_runs():
    assert checks.check_resume([[1, 2], [3, 4]], steps_per_stage=2).passed
    assert not checks.check_resume([[1, 2], [1, 2]], steps_per_stage=2).passed  # stage 2 started over
    assert not checks.check_resume([[1, 2, 3, 4]], steps_per_stage=2).passed  # never stopped and resumed


def test_eval_check_needs_every_answer_scored_and_code_use_stats(tmp_path):
    report = {"answers": [{"index": 1, "sample": 0, "acc": 1.0}, {"index": 2, "sample": 0, "acc": 0.0}],
              "summary": {"overall": {"mean_at_n": 50.0},
                          "code_use": {k: 0.0 for k in checks.EVAL_CODE_USE_KEYS}}}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert checks.check_eval("sft", path, {(1, 0), (2, 0)}).passed
    assert not checks.check_eval("sft", path, {(1, 0), (2, 0), (3, 0)}).passed  # a question left unscored
    del report["summary"]["code_use"]["share_ran_code"]
    path.write_text(json.dumps(report))
    assert not checks.check_eval("sft", path, {(1, 0)}).passed
    assert not checks.check_eval("final", tmp_path / "missing.json", set()).passed


def test_smoke_refuses_an_interpreter_that_imports_another_checkout(tmp_path, monkeypatch):
    """Steps run from the output folder, so they import the installed package, not the checkout:
    a stale editable install must stop the run before any step, naming what it found."""
    from r1ci_verl.smoke import run
    from r1ci_verl.smoke.config import SmokeConfig

    pipeline = run.Pipeline(SmokeConfig(out=tmp_path))
    pipeline.check_install()  # the test interpreter imports this checkout

    monkeypatch.setattr(run, "REPO_ROOT", tmp_path / "another-checkout")
    with pytest.raises(run.StepFailed, match="another-checkout.*re-point its editable install"):
        pipeline.check_install()
