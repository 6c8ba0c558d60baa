"""`r1ci sft synth` and `r1ci eval` end to end: real data build, real engine, sandbox and scoring,
the scripted teacher served by the OpenAI-compatible server double on loopback (the only fake),
and the tiny transformers model for eval."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from r1ci_verl.cli import main
from r1ci_verl.smoke.scripted_server import ScriptedOpenAIServer
from r1ci_verl.smoke.teacher import teacher_policy

TRAIN_TASKS = ["reasoning_gym/gcd", "reasoning_gym/lcm", "symbench/game24"]  # the teacher cannot solve game24
TEST_TASK = "bbh/multistep_arithmetic_two"
PER_TASK = 3
SPLIT = "bbh_heldout_v2"  # every BBH task on the test side, as in the smoke run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    subprocess.run([sys.executable, "-m", "r1ci_verl.cli", "data", "build", "--out", str(out), "--tasks",
                    *TRAIN_TASKS, TEST_TASK, "--max-per-task", str(PER_TASK), "--split", SPLIT, "--quiet"], check=True)
    return out


def synth_argv(data, out, server, tokenizer_dir, *extra):
    return ["sft", "synth", "--data", str(data / "train.parquet"), "--out", str(out), "--base-url", server.base_url,
            "--model", "scripted", "--tokenizer", str(tokenizer_dir), "--samples-per-question", "2",
            "--variants", "free,guided", "--code-timeout", "10", "--max-tokens", "512", "--split", SPLIT,
            "--no-progress", *extra]


def test_synth_keeps_correct_distinct_trajectories_that_data_sft_renders(data, tmp_path, tiny_model_dir, tiny_tokenizer,
                                                                         capsys):
    out = tmp_path / "traj.jsonl"
    with ScriptedOpenAIServer(teacher_policy, tiny_tokenizer, model="scripted") as server:
        assert main(synth_argv(data, out, server, tiny_model_dir, "--max-per-task", "2")) == 0
        asked = len(server.requests)
        assert main(synth_argv(data, out, server, tiny_model_dir, "--max-per-task", "2")) == 0  # resumed: nothing asked
        assert len(server.requests) == asked
    table = capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    yields = json.loads((tmp_path / "traj.yield.json").read_text())["tasks"]
    # 3 questions x 2 samples per task; the two samples of a question are the same answer (dropped), cap 2
    assert {t: y["asked"] for t, y in yields.items()} == {t: 6 for t in TRAIN_TASKS}
    assert yields["symbench/game24"]["correct"] == yields["symbench/game24"]["kept"] == 0
    assert yields["reasoning_gym/gcd"]["correct"] == 6 and yields["reasoning_gym/gcd"]["kept"] == 2
    assert len({r["question_id"] for r in records if r["task"] == "reasoning_gym/gcd"}) == 2  # spread over questions
    assert "| reasoning_gym/gcd | 6 | 6 | 6 | 2 |" in table
    assert all(r["steps"] and r["steps"][0]["code"].startswith("# ") for r in records)
    # `r1ci data sft` reads the file as written
    assert main(["data", "sft", "--trajectories", str(out), "--out", str(tmp_path / "sft"), "--split", SPLIT]) == 0
    assert (tmp_path / "sft" / "sft.parquet").exists()


def test_synth_refuses_test_side_tasks(data, tmp_path, tiny_model_dir, tiny_tokenizer, capsys):
    with ScriptedOpenAIServer(teacher_policy, tiny_tokenizer) as server:
        argv = synth_argv(data, tmp_path / "t.jsonl", server, tiny_model_dir)
        argv[argv.index("--data") + 1] = str(data / "test.parquet")
        assert main(argv) == 2
        assert not server.requests
    assert f"task {TEST_TASK} is on the test side of split" in capsys.readouterr().err
    assert not (tmp_path / "t.jsonl").exists()


def test_eval_reports_every_answer_with_code_use_and_compare(data, tmp_path, tiny_model_dir, capsys):
    argv = ["eval", "--data", str(data / "test.parquet"), "--backend", "transformers", "--model", str(tiny_model_dir),
            "--n", "2", "--max-tokens", "24", "--code-timeout", "10", "--no-progress", "--concurrency", "2"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert len(report["answers"]) == PER_TASK * 2
    assert all("transcript" in a and a["acc"] in (0.0, 1.0) for a in report["answers"])
    task = report["summary"]["tasks"][TEST_TASK]
    assert task["questions"] == PER_TASK and task["answers"] == PER_TASK * 2
    assert set(report["summary"]["code_use"]) >= {"share_ran_code", "code_calls_per_answer", "code_errors",
                                                  "code_timeouts", "share_without_answer"}
    assert report["settings"]["temperature"] == 0.6 and report["settings"]["max_code_calls"] == 8
    md = (tmp_path / "a" / "report.md").read_text()
    assert "paper: R1-CI-14B (37 test tasks) | 72.4" in md and "not directly comparable" in md
    assert (tmp_path / "a" / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert main([*argv, "--out", str(tmp_path / "b"), "--temperature", "1.0"]) == 0
    capsys.readouterr()
    assert main(["eval", "compare", str(tmp_path / "a" / "report.json"), str(tmp_path / "b" / "report.json")]) == 0
    table = capsys.readouterr().out
    assert f"| {TEST_TASK} |" in table and "**overall**" in table and "answers that ran code" in table


def test_eval_compare_rejects_a_file_that_is_not_a_report(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert main(["eval", "compare", str(bad), str(bad)]) == 2
    assert "not an `r1ci eval` report" in capsys.readouterr().err
