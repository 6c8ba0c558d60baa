"""`r1ci potential` takes bad input like a well-kept CLI: one line, exit status 2 (1 for a dead
server), nothing written, and every check runs before any sampling (no server is asked)."""

from __future__ import annotations

import json
import os
import socket

import pandas as pd
import pytest

from r1ci_verl.cli import main

GOOD_ROW = {"prompt": [{"role": "user", "content": "What is 1 + 1?"}], "data_source": "bbh/multistep_arithmetic_two",
            "reward_model": {"ground_truth": json.dumps({"task": "x", "answer": "2", "meta": {}})},
            "extra_info": {"index": 1, "task": "bbh/multistep_arithmetic_two"}}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more


@pytest.fixture
def files(tmp_path, tiny_model_dir):
    good = tmp_path / "train.parquet"
    pd.DataFrame([GOOD_ROW, {**GOOD_ROW, "extra_info": {"index": 2}}]).to_parquet(good)
    dup = tmp_path / "dup.parquet"
    pd.DataFrame([GOOD_ROW, GOOD_ROW]).to_parquet(dup)
    schema = tmp_path / "schema.parquet"
    pd.DataFrame([{"question": "q"}]).to_parquet(schema)
    jsonl = tmp_path / "train.jsonl.parquet"
    jsonl.write_text(json.dumps(GOOD_ROW) + "\n")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    return {"good": good, "dup": dup, "schema": schema, "jsonl": jsonl, "model": tiny_model_dir,
            "blocker": blocker, "tmp": tmp_path}


CASES = [
    # (case, argv edits, exit status, message fragment)
    ("missing data", {"--data": "{tmp}/nope.parquet"}, 2, "nope.parquet: no such file"),
    ("wrong schema", {"--data": "{schema}"}, 2, "missing column 'prompt'"),
    ("jsonl as parquet", {"--data": "{jsonl}"}, 2, "not a parquet file (it looks like JSONL"),
    ("duplicate index", {"--data": "{dup}"}, 2, "row 2, field 'extra_info.index': duplicate index 1"),
    ("unknown strategy", {"--strategies": "text,magic"}, 2, "unknown strategy magic"),
    ("missing model", {"--backend": "transformers", "--model": "{tmp}/no_model"}, 2, "no such model directory"),
    ("served name without tokenizer", {"--model": "sft-14b", "--tokenizer": None}, 2, "pass --tokenizer"),
    ("bad out suffix", {"--out": "{tmp}/p.csv"}, 2, "expected a file ending in .parquet or .jsonl"),
    ("non-writable out", {"--out": "{blocker}/sub/p.jsonl"}, 2, "is not a writable directory"),
    ("zero stages", {"--num-stages": "0"}, 2, "--num-stages 0: must be >= 1"),
    ("limit below stages", {"--limit": "1"}, 2, "--limit 1: fewer questions than --num-stages 2"),
    ("unreachable server", {"--base-url": "{dead}"}, 1, "cannot reach the model server"),
]


@pytest.mark.parametrize("case,edits,status,fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_before_any_work(files, capsys, case, edits, status, fragment):
    values = {k: str(v) for k, v in files.items()} | {"dead": closed_port_url()}
    args = {"--data": "{good}", "--out": "{tmp}/potential.jsonl", "--model": "tiny", "--tokenizer": "{model}",
            "--num-stages": "2", "--no-progress": "", "--strategies": "text"}
    args.update(edits)
    argv = ["potential"]
    for flag, value in args.items():
        if value is None:
            continue
        argv += [flag] + ([value.format(**values)] if value else [])
    assert main(argv) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("r1ci potential: error: ") and fragment in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert not (files["tmp"] / "potential.jsonl").exists()
    assert not (files["tmp"] / "potential.jsonl.samples.jsonl").exists() or case == "unreachable server"


def test_served_name_never_tries_the_hub(files, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import huggingface_hub

    def no_network(*a, **k):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    argv = ["potential", "--data", str(files["good"]), "--out", str(files["tmp"] / "p.jsonl"), "--model", "sft-14b", "--num-stages", "2"]
    assert main(argv) == 2
    assert "pass --tokenizer" in capsys.readouterr().err
