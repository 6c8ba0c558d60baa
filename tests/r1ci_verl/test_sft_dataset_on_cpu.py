"""SFT loss mask: model-written assistant text is trained, code-execution results blocks are not."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

from r1ci_verl.data.build import SFT_SCHEMA, write_parquet_atomic
from r1ci_verl.training.sft_dataset import CodeInterpreterSFTDataset, token_positions_inside
from r1ci_verl.data.sft_render import Step, render_sft_row
from reward_fns import protocol
from tool_env.result import ExecutionError, ExecutionResult

PROMPT = [
    {"role": "system", "content": protocol.SYSTEM_PROMPT},
    {"role": "user", "content": protocol.user_prompt("What is 6 * 7?")},
]

TRAJECTORIES = {
    "one_call": ([Step("Let me compute.", "print(6 * 7)", "42")], "So the answer is ", "42"),
    "varied_outputs": (
        [
            Step("First, a table:\n", "for i in range(3):\n    print(i)\n    print()", "0\n\n1\n\n2\n"),
            Step("", "x = 1", ExecutionResult()),
            Step(
                "Now divide by zero:\n",
                "print(1 / 0)",
                ExecutionResult(
                    stderr="Traceback (most recent call last):\nZeroDivisionError: division by zero\n",
                    error=ExecutionError("ZeroDivisionError", "division by zero"),
                ),
            ),
            Step("Slow:", "while True: pass", ExecutionResult(timed_out=True)),
            Step("Output that looks like prose:\n", "print('So the answer is 42.')", "So the answer is 42.\n"),
        ],
        "\nDone. ",
        "42",
    ),
    "no_code": ([], "Plainly, 6 * 7 = ", "42"),
}


def write_rows(path: Path, names: list[str]) -> Path:
    rows = []
    for number, name in enumerate(names):
        steps, final, answer = TRAJECTORIES[name]
        row = render_sft_row(PROMPT, steps, final, answer, timeout_s=60)
        rows.append(
            {**row, "data_source": "test/task", "extra_info": {"index": number, "task": name, "question_id": name}}
        )
    write_parquet_atomic(rows, SFT_SCHEMA, path)
    return path


def config(**overrides) -> DictConfig:
    return OmegaConf.create({"max_length": 2048, "truncation": "error", "pad_mode": "no_padding", **overrides})


def assistant_text(item: dict, tokenizer, trained: bool) -> str:
    """Decode the assistant turn's tokens whose loss mask is 1 (trained) or 0 (masked); padding excluded."""
    ids, mask = item["input_ids"].tolist(), item["loss_mask"].tolist()
    length = int(item["attention_mask"].sum()) if "attention_mask" in item else len(ids)
    assistant = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    start = next(i for i in range(len(ids)) if ids[i : i + len(assistant)] == assistant) + len(assistant)
    chosen = [t for t, m in zip(ids[start:length], mask[start:length]) if bool(m) == trained]
    return tokenizer.decode(chosen, skip_special_tokens=False, clean_up_tokenization_spaces=False)


@pytest.fixture(scope="module")
def sft_parquet(tmp_path_factory) -> Path:
    return write_rows(tmp_path_factory.mktemp("sft") / "sft.parquet", ["one_call", "varied_outputs", "no_code"])


@pytest.mark.parametrize("pad_mode", ["no_padding", "right"])
def test_results_blocks_are_masked_and_everything_else_is_verls(sft_parquet, tiny_tokenizer, pad_mode):
    ours = CodeInterpreterSFTDataset(str(sft_parquet), tiny_tokenizer, config(pad_mode=pad_mode))
    verls = MultiTurnSFTDataset(str(sft_parquet), tiny_tokenizer, config(pad_mode=pad_mode))
    table = pq.read_table(sft_parquet).to_pylist()
    for row, expected in enumerate(table):
        item, base = ours[row], verls[row]
        assert item.keys() == base.keys()
        for key in item.keys() - {"loss_mask"}:
            assert torch.equal(item[key], base[key]), key
        content = expected["messages"][-1]["content"]
        blocks = [content[s["start"] : s["end"]] for s in expected["results_spans"]]
        assert len(blocks) == protocol.count_results_blocks(content)

        assert assistant_text(item, tiny_tokenizer, trained=False) == "".join(blocks)
        model_written = content
        for block in blocks:
            model_written = model_written.replace(block, "", 1)
        assert assistant_text(item, tiny_tokenizer, trained=True) == model_written + "<|im_end|>\n"
        # masking only removes: every token verl masks (system, user, generation prompt, padding) stays masked
        assert not (item["loss_mask"].bool() & ~base["loss_mask"].bool()).any()
        if not blocks:
            assert torch.equal(item["loss_mask"], base["loss_mask"])


@pytest.mark.parametrize("truncation", ["left", "right"])
def test_truncation_cuts_the_masked_sequence_like_verl(sft_parquet, tiny_tokenizer, truncation):
    full = CodeInterpreterSFTDataset(str(sft_parquet), tiny_tokenizer, config(pad_mode="no_padding"))[1]
    length = full["input_ids"].shape[0] - 25
    cut = CodeInterpreterSFTDataset(
        str(sft_parquet), tiny_tokenizer, config(pad_mode="right", max_length=length, truncation=truncation)
    )[1]
    window = slice(-length, None) if truncation == "left" else slice(0, length)
    assert torch.equal(cut["input_ids"], full["input_ids"][window])
    assert torch.equal(cut["loss_mask"], full["loss_mask"][window])


def test_a_token_straddling_a_block_boundary_stays_trained():
    offsets = torch.tensor([[0, 4], [4, 10], [10, 15], [15, 17], [17, 20], [20, 20]])
    # block [10, 18): token [15, 17) inside, [17, 20) straddles the end, [4, 10) ends at its start
    assert token_positions_inside(offsets, [(10, 18)]).tolist() == [False, False, True, True, False, False]
    assert token_positions_inside(offsets, [(0, 4), (17, 20)]).tolist() == [True, False, False, False, True, True]


def test_spans_that_disagree_with_the_text_are_refused(tmp_path, tiny_tokenizer):
    path = write_rows(tmp_path / "sft.parquet", ["no_code", "one_call"])
    rows = pq.read_table(path).to_pylist()
    shifted = [{**span, "end": span["end"] - 2} for span in rows[1]["results_spans"]]
    write_parquet_atomic([rows[0], {**rows[1], "results_spans": shifted}], SFT_SCHEMA, path)
    with pytest.raises(ValueError, match=r"sft.parquet, row 2, message 2: results span 1 .* differs from format_results_block"):
        CodeInterpreterSFTDataset(str(path), tiny_tokenizer, config())

    on_user = [{**span, "message": 1} for span in rows[1]["results_spans"]]
    write_parquet_atomic([rows[0], {**rows[1], "results_spans": on_user}], SFT_SCHEMA, path)
    with pytest.raises(ValueError, match=r"sft.parquet, row 2, field 'results_spans\[0\].message': message 1 is not an assistant turn"):
        CodeInterpreterSFTDataset(str(path), tiny_tokenizer, config())


MALFORMED_ROWS = {  # how a row is broken -> the field the one-line error names
    "a span without its end": (lambda row: {**row, "results_spans": [{"message": 2, "start": 5}]},
                               r"field 'results_spans\[0\].end': expected an integer, got None"),
    "a span naming its message by text": (
        lambda row: {**row, "results_spans": [{**row["results_spans"][0], "message": "2"}]},
        r"field 'results_spans\[0\].message': expected an integer, got '2'"),
    "a span on a message that does not exist": (
        lambda row: {**row, "results_spans": [{**row["results_spans"][0], "message": 9}]},
        r"field 'results_spans\[0\].message': message 9 is not an assistant turn"),
    "an assistant message without content": (
        lambda row: {**row, "messages": row["messages"][:2] + [{"role": "assistant"}]},
        r"field 'messages\[2\].content': expected a string, got None"),
    "a message without a role": (lambda row: {**row, "messages": [{"content": "hi"}] + row["messages"][1:]},
                                 r"field 'messages\[0\].role': expected a string"),
    "no messages": (lambda row: {**row, "messages": []}, r"field 'messages': expected a non-empty list of messages"),
}


@pytest.mark.parametrize("broken", MALFORMED_ROWS, ids=list(MALFORMED_ROWS))
def test_a_malformed_row_is_refused_in_one_line_naming_file_row_and_field(tmp_path, tiny_tokenizer, broken):
    import pandas as pd

    rows = pq.read_table(write_rows(tmp_path / "sft.parquet", ["no_code", "one_call", "no_code"])).to_pylist()
    breaks, field = MALFORMED_ROWS[broken]
    rows[1] = breaks(rows[1])
    pd.DataFrame(rows).to_parquet(tmp_path / "bad.parquet")  # a user's own writer, not ours
    with pytest.raises(ValueError, match=r"^\S*bad.parquet, row 2, " + field) as error:
        CodeInterpreterSFTDataset(str(tmp_path / "bad.parquet"), tiny_tokenizer, config())
    assert "\n" not in str(error.value)


def test_a_bad_row_is_named_by_its_own_file_and_row_even_when_verl_samples(tmp_path, tiny_tokenizer):
    """verl concatenates the files and may draw `max_samples` rows at random: the error still
    names the file the row is in and its row there, and rows left out of the sample are checked too."""
    good = write_rows(tmp_path / "good.parquet", ["one_call", "no_code", "one_call"])
    rows = pq.read_table(good).to_pylist()
    shifted = [{**span, "end": span["end"] - 1} for span in rows[2]["results_spans"]]
    write_parquet_atomic(rows[:2] + [{**rows[2], "results_spans": shifted}], SFT_SCHEMA, tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad.parquet, row 3, message 2: results span 1"):
        CodeInterpreterSFTDataset([str(good), str(tmp_path / "bad.parquet")], tiny_tokenizer,
                                  config(shuffle=True, seed=1), max_samples=2)


def test_results_without_a_spans_column_are_refused_but_plain_rows_load(tmp_path, tiny_tokenizer):
    table = pq.read_table(write_rows(tmp_path / "sft.parquet", ["no_code", "one_call"])).drop(["results_spans"])
    pq.write_table(table.slice(0, 1), tmp_path / "plain.parquet")
    plain = CodeInterpreterSFTDataset(str(tmp_path / "plain.parquet"), tiny_tokenizer, config())
    base = MultiTurnSFTDataset(str(tmp_path / "plain.parquet"), tiny_tokenizer, config())
    assert torch.equal(plain[0]["loss_mask"], base[0]["loss_mask"])

    pq.write_table(table, tmp_path / "legacy.parquet")
    with pytest.raises(
        ValueError, match="legacy.parquet, row 2: message 2 has code-execution results but the data has no 'results_spans'"
    ):
        CodeInterpreterSFTDataset(str(tmp_path / "legacy.parquet"), tiny_tokenizer, config())


def test_protocol_check_accepts_rendered_spans_and_rejects_others():
    steps, final, answer = TRAJECTORIES["varied_outputs"]
    row = render_sft_row(PROMPT, steps, final, answer, timeout_s=60)
    text = row["messages"][-1]["content"]
    spans = [(s["start"], s["end"]) for s in row["results_spans"]]
    protocol.check_results_spans(text, spans)
    assert all(text[s:e].startswith(protocol.RESULTS_HEADER + "\n") for s, e in spans)
    with pytest.raises(ValueError, match="4 results span"):
        protocol.check_results_spans(text, spans[:-1])
    start, end = spans[0]
    with pytest.raises(ValueError, match="does not start on the line after"):
        protocol.check_results_spans(text, [(start + 1, end)] + spans[1:])
    with pytest.raises(ValueError, match="outside the text between"):
        protocol.check_results_spans(text, [(start, spans[1][1])] + spans[1:])


def test_verl_sft_trainer_builds_our_dataset_from_custom_cls(sft_parquet, tiny_tokenizer):
    """The overrides the SFT recipe passes make verl's own dataset factory build this class."""
    from hydra import compose, initialize_config_dir
    from verl.trainer import sft_trainer

    config_dir = str(Path(sft_trainer.__file__).parent / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(
            config_name="sft_trainer_engine",
            overrides=[
                "data.custom_cls.path=pkg://r1ci_verl.training.sft_dataset",
                "data.custom_cls.name=CodeInterpreterSFTDataset",
                "data.max_length=2048",
            ],
        )
    dataset = sft_trainer.create_sft_dataset(str(sft_parquet), cfg.data, tiny_tokenizer, processor=None)
    assert type(dataset) is CodeInterpreterSFTDataset
    masked = assistant_text(dataset[0], tiny_tokenizer, trained=False)
    assert masked == f"{protocol.RESULTS_HEADER}\n42\n"
