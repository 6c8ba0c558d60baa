"""verl's multi-turn SFT dataset, with code-execution results masked out of the loss.

The paper trains only on what the model writes: the ``Code Execution Results:`` blocks that the
agent loop inserts (response_mask 0 in RL) must not be trained on in SFT either. verl's
`MultiTurnSFTDataset` trains on the whole assistant message, so this subclass keeps everything it
does (chat template, truncation, padding modes, position ids, item format) and only zeroes
`loss_mask` on the tokens of each results block.

Where the blocks are comes from the parquet's `results_spans` column (written by `r1ci data sft`
through `sft_render.render_sft_row`): a block's end cannot be found from text alone, because
program output and the model's next words run together. Spans are checked against the protocol
(`reward_fns.protocol.check_results_spans`) when the dataset loads, with every row of every file:
a malformed row stops the load in one line naming the file, the row (1-based) and the field.

Character spans become token positions through the fast tokenizer's offset mapping of the
rendered message. Rule: a token is masked only if it lies entirely inside a block; a token that
straddles a block boundary (e.g. a merged run of newlines) stays trained, so nothing the model
wrote is ever masked.

Use with verl's SFT trainer:
``data.custom_cls.path=pkg://r1ci_verl.training.sft_dataset data.custom_cls.name=CodeInterpreterSFTDataset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import torch
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.py_functional import convert_nested_value_to_list_recursive

from reward_fns import protocol

RESULTS_SPANS_KEY = "results_spans"

Spans = dict[int, list[tuple[int, int]]]  # message index -> character spans in its content


def _spans_by_message(raw: list[dict[str, int]] | None) -> Spans:
    """A row's `results_spans` entries grouped by message (a checked row: see `_check_row`)."""
    spans: Spans = {}
    for entry in raw or []:
        spans.setdefault(int(entry["message"]), []).append((int(entry["start"]), int(entry["end"])))
    return spans


def token_positions_inside(offsets: torch.Tensor, spans: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Boolean mask over tokens with character `offsets` (n, 2): True where a token lies wholly in a span."""
    inside = torch.zeros(offsets.shape[0], dtype=torch.bool)
    for start, end in spans:
        inside |= (offsets[:, 0] >= start) & (offsets[:, 1] <= end)
    return inside


class CodeInterpreterSFTDataset(MultiTurnSFTDataset):
    """`MultiTurnSFTDataset` whose loss mask is 0 on every code-execution results block.

    Same constructor as verl's class (verl's `create_sft_dataset` calls it by keyword). The
    data config may name the spans column with `results_spans_key` (default ``results_spans``).
    """

    def __init__(
        self,
        parquet_files: str | list[str],
        tokenizer: Any,
        config: Any,
        processor: Any | None = None,
        max_samples: int = -1,
    ):
        self.results_spans_key = (config or {}).get("results_spans_key", RESULTS_SPANS_KEY)
        self._item_spans: Spans = {}
        super().__init__(parquet_files, tokenizer, config, processor=processor, max_samples=max_samples)

    def _read_files_and_process(self) -> None:
        for parquet_file in self.parquet_files:  # every row, before verl concatenates and samples them
            self._check_file(parquet_file)
        super()._read_files_and_process()
        if self.results_spans_key in self.dataframe.columns:
            column = self.dataframe[self.results_spans_key].apply(convert_nested_value_to_list_recursive).tolist()
        else:
            column = [None] * len(self.messages)
        self.results_spans: list[Spans] = [_spans_by_message(raw) for raw in column]
        if any(self.results_spans) and not getattr(self.tokenizer, "is_fast", False):
            raise ValueError("masking code-execution results needs a fast tokenizer (offset mapping)")

    def _check_file(self, path: str) -> None:
        """Refuse a file with a malformed row in one line naming the file, row (1-based) and field."""
        names = pq.read_schema(path).names
        if self.messages_key not in names:
            raise ValueError(f"{path}: no '{self.messages_key}' column (columns: {', '.join(names)})")
        columns = [self.messages_key] + ([self.results_spans_key] if self.results_spans_key in names else [])
        frame = pd.read_parquet(path, columns=columns, dtype_backend="pyarrow")
        messages = frame[self.messages_key].apply(convert_nested_value_to_list_recursive).tolist()
        if self.results_spans_key in names:
            spans = frame[self.results_spans_key].apply(convert_nested_value_to_list_recursive).tolist()
        else:
            spans = [None] * len(messages)
        for row, (row_messages, row_spans) in enumerate(zip(messages, spans), start=1):
            self._check_row(f"{path}, row {row}", row_messages, row_spans, has_column=self.results_spans_key in names)

    def _check_row(self, where: str, messages: Any, raw: Any, has_column: bool) -> None:
        """The row's messages are chat messages and its spans are exactly its results blocks."""
        key = self.results_spans_key
        if not isinstance(messages, list) or not messages:
            raise ValueError(f"{where}, field '{self.messages_key}': expected a non-empty list of messages, got {messages!r}")
        for index, message in enumerate(messages):
            field = f"{self.messages_key}[{index}]"
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise ValueError(f"{where}, field '{field}.role': expected a string, got {message!r}")
            content = message.get("content")
            if not isinstance(content, (str, list)) and not (content is None and message.get("tool_calls")):
                raise ValueError(f"{where}, field '{field}.content': expected a string, got {content!r}")
        if raw is not None and not isinstance(raw, list):
            raise ValueError(f"{where}, field '{key}': expected a list of {{message, start, end}}, got {raw!r}")
        for number, entry in enumerate(raw or []):
            for name in ("message", "start", "end"):
                value = entry.get(name) if isinstance(entry, dict) else None
                if not isinstance(value, Integral) or isinstance(value, bool):
                    raise ValueError(f"{where}, field '{key}[{number}].{name}': expected an integer, got {value!r}")
            message = entry["message"]
            if not 0 <= message < len(messages) or messages[message]["role"] != "assistant":
                raise ValueError(f"{where}, field '{key}[{number}].message': message {message} is not an assistant turn")
        spans = _spans_by_message(raw)
        for index, message in enumerate(messages):
            content = message["content"]
            if message["role"] != "assistant" or not isinstance(content, str):
                continue
            if index not in spans and protocol.count_results_blocks(content) == 0:
                continue
            if not has_column:
                raise ValueError(
                    f"{where}: message {index} has code-execution results but the data has no "
                    f"'{key}' column; write it with `r1ci data sft`"
                )
            try:
                protocol.check_results_spans(content, spans.get(index, []))
            except ValueError as exc:
                raise ValueError(f"{where}, message {index}: {exc}") from None

    def __getitem__(self, item: int) -> dict[str, Any]:
        # verl tokenizes message by message without passing the row on; hand its spans over here.
        self._item_spans = self.results_spans[item]
        try:
            return super().__getitem__(item)
        finally:
            self._item_spans = {}

    def _process_single_message(
        self,
        index: int,
        message: dict[str, Any],
        full_message: list,
        tools: list[dict[str, Any]] | None = None,
        enable_thinking: bool | None = None,
    ):
        input_ids, loss_mask, attention_mask, inputs = super()._process_single_message(
            index, message, full_message, tools=tools, enable_thinking=enable_thinking
        )
        spans = self._item_spans.get(index)
        if spans:
            loss_mask = loss_mask.clone()
            loss_mask[self._tokens_in_spans(message, spans, input_ids, tools, enable_thinking)] = 0
        return input_ids, loss_mask, attention_mask, inputs

    def _tokens_in_spans(
        self,
        message: dict[str, Any],
        spans: list[tuple[int, int]],
        input_ids: torch.Tensor,
        tools: list[dict[str, Any]] | None,
        enable_thinking: bool | None,
    ) -> torch.Tensor:
        """Mask over this message's `input_ids` of the tokens wholly inside `spans` (offsets into its content)."""
        content = message["content"]
        if not isinstance(content, str):
            raise TypeError("results masking supports text messages only (no processor / multimodal content)")
        kwargs = dict(self.apply_chat_template_kwargs)
        if enable_thinking is not None:
            kwargs["enable_thinking"] = enable_thinking
        rendered = self.tokenizer.apply_chat_template(
            [message], tools=tools, add_generation_prompt=False, tokenize=False, **kwargs
        )
        encoding = self.tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
        skipped = len(encoding["input_ids"]) - len(input_ids)  # the system prompt verl strips
        if skipped < 0 or encoding["input_ids"][skipped:] != input_ids.tolist():
            raise ValueError("tokenizing the rendered message does not reproduce the chat template's token ids")
        base = rendered.rfind(content)
        if base < 0:
            raise ValueError("the chat template changes the assistant text, so results spans cannot be placed")
        offsets = torch.tensor(encoding["offset_mapping"][skipped:], dtype=torch.long).reshape(-1, 2)
        return token_positions_inside(offsets, [(base + start, base + end) for start, end in spans])
