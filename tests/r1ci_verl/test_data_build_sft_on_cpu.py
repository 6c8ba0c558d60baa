"""SFT data: trajectory rendering equals the agent loop's transcript, and verl's SFT dataset reads our parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reward_fns import protocol
from r1ci_verl.data.build import SFT_SCHEMA, BuildConfig, BuildError, build, build_sft
from r1ci_verl.data.sft_render import Step, TrajectoryError, render_messages, render_trajectory
from r1ci_verl.data.splits import load_split
from tool_env.result import ExecutionError, ExecutionResult
from fakes import FakeScriptedLLMServer

EOS = "<|im_end|>"


def test_rendered_transcript_has_the_protocol_layout():
    text = render_trajectory([Step("Let me compute.", "print(6 * 7)", "42")], "So the answer is ", "42")
    assert text == (
        "Let me compute.\n```python\nprint(6 * 7)\n```\nCode Execution Results:\n42\nSo the answer is <<<42>>>"
    )


def test_rendered_transcript_parses_back_into_the_same_steps():
    steps = [
        Step("First, multiply.\n", "print(6 * 7)\n", ExecutionResult(stdout="42\n")),
        Step("", "x = 1", ExecutionResult()),
        Step(
            "Now divide by zero:\n",
            "print(1 / 0)",
            ExecutionResult(
                stderr="Traceback ...\nZeroDivisionError: division by zero\n",
                error=ExecutionError("ZeroDivisionError", "division by zero"),
            ),
        ),  # fmt: skip
        Step("Slow:", "while True: pass", ExecutionResult(timed_out=True)),
    ]
    text = render_trajectory(steps, "Done. ", "42", timeout_s=60)
    assert [b.code for b in protocol.find_python_blocks(text)] == [
        "print(6 * 7)\n", "x = 1\n", "print(1 / 0)\n", "while True: pass\n"
    ]  # fmt: skip
    assert protocol.count_results_blocks(text) == 4
    assert protocol.format_ok(text) and protocol.extract_answer(text) == "42"
    assert f"{protocol.RESULTS_HEADER}\n{protocol.NO_OUTPUT_NOTICE}\n" in text
    assert "ZeroDivisionError: division by zero" in text
    assert "TimeoutError: execution exceeded the time limit of 60 s" in text


@pytest.mark.parametrize(
    "steps, final, answer, message",
    [
        ([Step("", "print(1)\n```\nprint(2)", "1")], "", "1", "close the block early"),
        ([Step("see ```python\nx\n```\n", "print(1)", "1")], "", "1", "step 1 reasoning contains a code fence"),
        ([Step("", "   ", "")], "", "1", "code is empty"),
        ([Step("", "print(1)", "1")] * 9, "", "1", "9 code calls exceed the limit of 8"),
        ([Step("", "print(1)", "1")], "no answer", None, "does not follow the protocol"),
        ([], "", "a >>> b", "contains <<< or >>>"),
        ([], "```python\nprint(1)\n```\n", "1", "final text contains a code fence"),
        ([Step("", "print('```')", "```\n")], "", "1", "step 1: output has a line starting with ```"),
    ],
)
def test_unfaithful_trajectories_are_refused(steps, final, answer, message):
    with pytest.raises(TrajectoryError, match=message):
        render_trajectory(steps, final, answer)


async def test_sft_transcript_is_byte_identical_to_the_agent_loop(make_code_loop, tiny_tokenizer):
    """The real agent loop (scripted fake LLM, real local sandbox) produces exactly the rendered text."""
    segments = [
        "Let me compute.\n```python\nprint(6 * 7)\n```\n",
        "Now a silent script:\n```python\nx = 1\n```\n",
        "And a check:\n```python\nimport math\nprint(math.factorial(5))\nprint('done')\n```\n",
        "All agree. <<<42>>>",
    ]
    server = FakeScriptedLLMServer(tiny_tokenizer, segments)
    loop = make_code_loop(server, response_length=1024, sandbox={"timeout_s": 5.0, "pool_size": 2})
    prompt = [{"role": "system", "content": protocol.SYSTEM_PROMPT}, {"role": "user", "content": "6*7? <<<answer>>>"}]
    out = await loop.run({"temperature": 1.0, "logprobs": True}, raw_prompt=prompt)
    response = tiny_tokenizer.decode(out.response_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    steps = [
        Step("Let me compute.\n", "print(6 * 7)\n", ExecutionResult(stdout="42\n")),
        Step("Now a silent script:\n", "x = 1\n", ExecutionResult(stdout="")),
        Step("And a check:\n", "import math\nprint(math.factorial(5))\nprint('done')\n", "120\ndone"),
    ]
    assert response == render_trajectory(steps, "All agree. ", "42") + EOS


def trajectory(row: dict, **overrides) -> dict:
    record = {
        "question_id": row["extra_info"]["question_id"],
        "task": row["data_source"],
        "prompt": row["prompt"],
        "steps": [{"reasoning": "Compute it.\n", "code": "print(2 + 2)", "output": "4"}],
        "final": "The answer is ",
        "answer": "4",
    }
    return {**record, **overrides}


@pytest.fixture(scope="module")
def rl_rows(tmp_path_factory) -> dict[str, list[dict]]:
    out = tmp_path_factory.mktemp("rl")
    build(BuildConfig(out=str(out), tasks=["symbench/pooling", "bbh/web_of_lies"], max_per_task=3))  # train, test
    return {side: pq.read_table(out / f"{side}.parquet").to_pylist() for side in ("train", "test")}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_sft_parquet_from_trajectories_loads_in_verl(rl_rows, tmp_path, tiny_tokenizer):
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    records = [trajectory(row) for row in rl_rows["train"]]
    info = build_sft(write_jsonl(tmp_path / "traj.jsonl", records), tmp_path, load_split())
    assert info["rows"] == 3
    table = pq.read_table(tmp_path / "sft.parquet")
    assert table.schema.equals(SFT_SCHEMA)
    first = table.to_pylist()[0]
    assert first["messages"][:2] == rl_rows["train"][0]["prompt"]
    assert first["messages"][2] == {
        "role": "assistant",
        "content": "Compute it.\n```python\nprint(2 + 2)\n```\nCode Execution Results:\n4\nThe answer is <<<4>>>",
    }
    dataset = MultiTurnSFTDataset(
        parquet_files=[str(tmp_path / "sft.parquet")],
        tokenizer=tiny_tokenizer,
        config=OmegaConf.create({"max_length": 8192, "truncation": "error", "pad_mode": "no_padding"}),
    )
    assert len(dataset) == 3
    item = dataset[0]
    trained = [t for t, m in zip(item["input_ids"].tolist(), item["loss_mask"].tolist()) if m]
    assert "<<<4>>>" in tiny_tokenizer.decode(trained)  # the assistant turn is what SFT trains on
    assert protocol.SYSTEM_PROMPT not in tiny_tokenizer.decode(trained)


def test_sft_refuses_test_tasks_duplicates_and_broken_steps(rl_rows, tmp_path):
    split = load_split()
    train_row, test_row = rl_rows["train"][0], rl_rows["test"][0]
    bbh = write_jsonl(tmp_path / "bbh.jsonl", [trajectory(train_row), trajectory(test_row)])
    with pytest.raises(BuildError, match=r"bbh\.jsonl:2, field 'task': 'bbh/web_of_lies' is on the test side"):
        build_sft(bbh, tmp_path, split)
    twice = write_jsonl(tmp_path / "twice.jsonl", [trajectory(train_row), trajectory(train_row)])
    with pytest.raises(BuildError, match=r"twice\.jsonl:2, field 'question_id': duplicate"):
        build_sft(twice, tmp_path, split)
    broken = write_jsonl(tmp_path / "broken.jsonl", [trajectory(train_row, steps=[{"reasoning": "", "code": "x"}])])
    with pytest.raises(BuildError, match=r"broken\.jsonl:1, field 'steps\[0\]': missing 'output'"):
        build_sft(broken, tmp_path, split)
    with pytest.raises(BuildError, match="trajectory file not found"):
        build_sft(tmp_path / "missing.jsonl", tmp_path, split)
    assert not (tmp_path / "sft.parquet").exists()


def test_a_lone_surrogate_escape_is_refused_naming_line_and_field(rl_rows, tmp_path):
    """JSON can spell "\\ud800", which is no text: the build names where, instead of a
    UnicodeEncodeError from the parquet writer after the rows were rendered."""
    good = json.dumps(trajectory(rl_rows["train"][0]))
    bad = json.dumps(trajectory(rl_rows["train"][1])).replace('"output": "4"', '"output": "4 \\ud800"')
    assert "ud800" in bad
    path = tmp_path / "traj.jsonl"
    path.write_text(good + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(BuildError, match=r"traj\.jsonl:2, field 'steps\[0\]\.output': a lone surrogate escape"):
        build_sft(path, tmp_path, load_split())
    assert not (tmp_path / "sft.parquet").exists()


def test_render_messages_appends_one_assistant_turn():
    prompt = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    messages = render_messages(prompt, [], "Plainly ", "7")
    assert messages == prompt + [{"role": "assistant", "content": "Plainly <<<7>>>"}]
