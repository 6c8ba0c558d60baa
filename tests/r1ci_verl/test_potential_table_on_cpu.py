"""Improvement potential: p and Π from scripted scores, stage split, strategies, resumable store."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from r1ci_verl.potential import (
    STRATEGIES,
    PotentialConfig,
    Question,
    SampleStore,
    build_messages,
    improvement_potential,
    load_questions,
    partition,
    potential_table,
    read_table,
    summarize,
    write_table,
)
from reward_fns.protocol import ANSWER_INSTRUCTION, SYSTEM_PROMPT


def test_potential_formula():
    assert improvement_potential(0.5) == 1.0
    assert improvement_potential(0.0) == improvement_potential(1.0) == 0.0
    assert improvement_potential(0.25) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        improvement_potential(1.5)


def _question(index, task="bbh/navigate"):
    return Question(index, task, task, [{"role": "user", "content": f"q{index}"}], "gt", {"index": index})


def test_table_from_scripted_scores():
    config = PotentialConfig(strategies=["text", "free"], samples_per_strategy=2, num_stages=2)
    # question 7: 1 of 4 right; question 3: 2 of 4; question 9: 4 of 4; question 1: partial credit 0.5 twice
    scripted = {
        7: {"text": [0, 0], "free": [1, 0]},
        3: {"text": [1, 0], "free": [1, 0]},
        9: {"text": [1, 1], "free": [1, 1]},
        1: {"text": [0.5, 0.5], "free": [0, 0]},
    }
    records = [
        {"index": q, "strategy": s, "sample": k, "acc": acc}
        for q, by_strategy in scripted.items()
        for s, accs in by_strategy.items()
        for k, acc in enumerate(accs)
    ]
    records.append({"index": 42, "strategy": "text", "sample": 0, "acc": 1.0})  # not in this data: ignored
    rows = {r["index"]: r for r in potential_table([_question(q) for q in (7, 3, 9, 1)], records, config)}
    assert rows[7]["p"] == 0.25 and rows[7]["potential"] == pytest.approx(0.75)
    assert rows[3]["p"] == 0.5 and rows[3]["potential"] == 1.0
    assert rows[9]["p"] == 1.0 and rows[9]["potential"] == 0.0
    assert rows[1]["p"] == 0.25 and rows[1]["num_samples"] == 4
    assert rows[7]["p_text"] == 0.0 and rows[7]["p_free"] == 0.5
    # stage 1 = the two highest Π: question 3 (Π 1.0), then 1 and 7 tie at 0.75 -> lower index first
    assert [rows[q]["stage"] for q in (3, 1, 7, 9)] == [0, 0, 1, 1]


def test_table_needs_every_question():
    config = PotentialConfig(strategies=["text"], samples_per_strategy=1, num_stages=1)
    with pytest.raises(ValueError, match="no scored sample yet"):
        potential_table([_question(1), _question(2)], [{"index": 1, "strategy": "text", "sample": 0, "acc": 1}], config)


def test_summarize_rejects_out_of_range_accuracy():
    with pytest.raises(ValueError, match="acc=2.0"):
        summarize([{"index": 1, "acc": 2.0}])


@pytest.mark.parametrize("n, k", [(12, 4), (13, 4), (5, 5), (7, 3)])
def test_partition_sizes_are_even_and_cover_everything(n, k):
    groups = partition({i: (i % 7) / 6 for i in range(n)}, k)
    sizes = [len(g) for g in groups]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert sorted(q for g in groups for q in g) == list(range(n))


def test_partition_orders():
    rates = {10: 0.9, 11: 0.5, 12: 0.1, 13: 0.0, 14: 0.3, 15: 0.7}
    assert partition(rates, 3) == [[11, 14], [15, 10], [12, 13]]  # 14 and 15 tie (Π .84): lower index first
    assert partition(rates, 3, mode="difficulty") == [[10, 15], [11, 14], [12, 13]]
    with pytest.raises(ValueError, match="cannot split"):
        partition(rates, 7)


def test_strategies_build_distinct_prompts():
    prompt = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "What is 2+2?"}]
    built = {name: build_messages(s, prompt) for name, s in STRATEGIES.items()}
    assert set(built) == {"text", "code", "free", "guided"}
    rendered = {name: json.dumps(m) for name, m in built.items()}
    assert len(set(rendered.values())) == 4
    for name, messages in built.items():
        assert [m["role"] for m in messages] == ["system", "user"]
        assert messages[1]["content"].startswith("What is 2+2?")
        assert ANSWER_INSTRUCTION in messages[1]["content"]
        assert "<<<answer>>>" in messages[0]["content"]
    assert built["free"][0]["content"] == SYSTEM_PROMPT
    assert "do not write code" in built["text"][0]["content"]
    assert not STRATEGIES["text"].runs_code and all(STRATEGIES[s].runs_code for s in ("code", "free", "guided"))
    assert prompt[1]["content"] == "What is 2+2?"  # the row itself is not modified


def test_store_resumes_and_repairs_a_half_written_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    with SampleStore(path) as store:
        store.append({"index": 1, "strategy": "text", "sample": 0, "acc": 1.0})
        store.append({"index": 1, "strategy": "text", "sample": 1, "acc": 0.0})
        with pytest.raises(ValueError, match="already recorded"):
            store.append({"index": 1, "strategy": "text", "sample": 1, "acc": 1.0})
    with path.open("a") as f:
        f.write('{"index": 1, "strategy": "text", "sam')  # killed mid-write
    with SampleStore(path) as store:
        assert store.done == {(1, "text", 0), (1, "text", 1)}
        store.append({"index": 2, "strategy": "free", "sample": 0, "acc": 1.0})
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)


def test_store_rejects_duplicates_on_disk(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"index": 1, "strategy": "text", "sample": 0, "acc": 1}\n' * 2)
    with pytest.raises(ValueError, match="samples.jsonl:2: record .* recorded twice"):
        SampleStore(path)


def test_load_questions_names_bad_rows(tmp_path):
    good = {"prompt": [{"role": "user", "content": "q"}], "data_source": "bbh/navigate",
            "reward_model": {"ground_truth": "{}"}, "extra_info": {"index": 5, "task": "bbh/navigate"}}
    path = tmp_path / "train.parquet"
    pd.DataFrame([good, {**good, "extra_info": {"index": 5}}]).to_parquet(path)
    with pytest.raises(ValueError, match="row 2, field .extra_info.index.: duplicate index 5 .first in row 1."):
        load_questions(path)
    pd.DataFrame([good]).to_parquet(path)
    (question,) = load_questions(path)
    assert question.index == 5 and question.task == "bbh/navigate" and question.ground_truth == "{}"


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_table_round_trip(tmp_path, suffix):
    rows = [{"index": 1, "p": 0.5, "potential": 1.0, "stage": 0, "p_text": None}]
    write_table(rows, tmp_path / f"potential{suffix}")
    back = read_table(tmp_path / f"potential{suffix}")
    assert back[0]["index"] == 1 and back[0]["p"] == 0.5
