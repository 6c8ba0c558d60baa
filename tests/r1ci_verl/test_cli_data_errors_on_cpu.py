"""`r1ci data ...` on bad input: one line naming what and where, exit status 2, no file written or changed.

Table-driven: each row is a command line (``{tmp}`` is the row's scratch directory, prepared
with an earlier build's outputs and a few input files) and the text the one error line must
hold. After each row every file under the scratch directory is byte-for-byte what it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from r1ci_verl.cli import main as cli_main
from r1ci_verl.data.assets import SPLITS_DIR
from r1ci_verl.data.splits import BBH_HELDOUT_PRESET, DEFAULT_PRESET, preset_path
from r1ci_verl.data.tasks.records import sha256_file


def trajectory(**overrides) -> dict:
    record = {
        "question_id": "symbench/pooling/sample_0",
        "task": "symbench/pooling",
        "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
        "steps": [{"reasoning": "Compute it.\n", "code": "print(2 + 2)", "output": "4"}],
        "final": "The answer is ",
        "answer": "4",
    }
    return {**record, **overrides}


def prepare(tmp: Path) -> None:
    """An earlier build in out/, input files the rows point at, and a plain file to misuse as a directory."""
    out = tmp / "out"
    out.mkdir()
    for name, data in (("train.parquet", b"earlier train"), ("test.parquet", b"earlier test"),
                       ("sft.parquet", b"earlier sft"), ("manifest.json", b"{}")):  # fmt: skip
        (out / name).write_bytes(data)
    (tmp / "a_file").write_text("not a directory")
    (tmp / "dir_out").mkdir()
    (tmp / "dir_out" / "train.parquet").mkdir()
    (tmp / "empty_layout").mkdir()
    (tmp / "empty_layout" / "gsmhardv2.jsonl").write_text("")
    (tmp / "typo_split.yaml").write_text("version: 1\nseed: 0\ntrain: [symbench/pooing]\ntest: [bbh/navigate]\n")
    (tmp / "taken.yaml").write_text("existing split")
    (tmp / "latin1.jsonl").write_bytes('{"question_id": "caf\u00e9"}\n'.encode("latin-1"))
    (tmp / "empty.jsonl").write_text("")
    rows = {
        "steps_int.jsonl": trajectory(steps=5),
        "step_code_int.jsonl": trajectory(steps=[{"reasoning": "", "code": 5, "output": "4"}]),
        "qid_int.jsonl": trajectory(question_id=5),
        "prompt_str.jsonl": trajectory(prompt="hello"),
        "answer_int.jsonl": trajectory(answer=4),
        "unknown_task.jsonl": trajectory(task="symbench/nope"),
        "test_task.jsonl": trajectory(task="bbh/web_of_lies", question_id="bbh/web_of_lies/0"),
    }
    for name, record in rows.items():
        (tmp / name).write_text(json.dumps(record) + "\n")
    held_out = tmp / "built_bbh_heldout"  # an RL build made with another split than the default
    held_out.mkdir()
    write_manifest(held_out, BBH_HELDOUT_PRESET)


def write_manifest(out: Path, preset: str) -> None:
    split = {"name": preset, "sha256": sha256_file(preset_path(preset))}
    (out / "manifest.json").write_text(json.dumps({"split": split}))


BUILD = ["data", "build", "--quiet", "--max-per-task", "1"]
SFT = ["data", "sft", "--out", "{tmp}/out"]

# (id, argv, text the error line must contain)
CASES = [
    # r1ci data build
    ("build-empty-task-file", [*BUILD, "--out", "{tmp}/out", "--source", "{tmp}/empty_layout",
                               "--tasks", "symbench/gsm_hard"], "gsmhardv2.jsonl: no samples of symbench/gsm_hard"),
    ("build-out-is-a-file", [*BUILD, "--out", "{tmp}/a_file", "--tasks", "symbench/pooling"],
     "--out {tmp}/a_file: exists and is not a directory"),
    ("build-out-under-a-file", [*BUILD, "--out", "{tmp}/a_file/sub", "--tasks", "symbench/pooling"],
     "{tmp}/a_file is not a writable directory"),
    ("build-out-holds-a-directory-named-like-an-output", [*BUILD, "--out", "{tmp}/dir_out", "--tasks", "symbench/pooling"],
     "{tmp}/dir_out/train.parquet is a directory"),
    ("build-unknown-task", [*BUILD, "--out", "{tmp}/out", "--tasks", "symbench/nope"],
     "--tasks: unknown task(s) ['symbench/nope']"),
    ("build-unknown-preset", [*BUILD, "--out", "{tmp}/out", "--split", "paper"], "unknown split preset 'paper'"),
    ("build-split-file-typo", [*BUILD, "--out", "{tmp}/out", "--split-file", "{tmp}/typo_split.yaml"],
     "typo_split.yaml: unknown task(s) symbench/pooing"),
    ("build-split-file-missing", [*BUILD, "--out", "{tmp}/out", "--split-file", "{tmp}/nope.yaml"],
     "split file not found: {tmp}/nope.yaml"),
    ("build-max-per-task-0", [*BUILD[:-2], "--max-per-task", "0", "--out", "{tmp}/out"], "--max-per-task must be >= 1"),
    ("build-workers-0", [*BUILD, "--workers", "0", "--out", "{tmp}/out"], "--workers must be >= 1"),
    ("build-source-missing", [*BUILD, "--out", "{tmp}/out", "--source", "{tmp}/nowhere", "--tasks", "symbench/pooling"],
     "source {tmp}/nowhere: not a directory"),
    ("build-source-bad-hub-name", [*BUILD, "--out", "{tmp}/out", "--source", "hf:nobody", "--tasks", "symbench/pooling"],
     "expected hf:OWNER/NAME"),
    ("build-split-and-split-file", [*BUILD, "--out", "{tmp}/out", "--split", "paper_random_v1",
                                    "--split-file", "{tmp}/typo_split.yaml"], "not allowed with argument"),
    # r1ci data sft
    ("sft-steps-not-a-list", [*SFT, "--trajectories", "{tmp}/steps_int.jsonl"],
     "steps_int.jsonl:1, field 'steps': expected a list of steps, got int 5"),
    ("sft-step-code-not-a-string", [*SFT, "--trajectories", "{tmp}/step_code_int.jsonl"],
     "step_code_int.jsonl:1, field 'steps[0].code': expected a string, got int 5"),
    ("sft-question-id-int", [*SFT, "--trajectories", "{tmp}/qid_int.jsonl"],
     "qid_int.jsonl:1, field 'question_id': expected a non-empty string, got int 5"),
    ("sft-prompt-not-a-list", [*SFT, "--trajectories", "{tmp}/prompt_str.jsonl"],
     "prompt_str.jsonl:1, field 'prompt': expected a non-empty list of chat messages, got str"),
    ("sft-answer-int", [*SFT, "--trajectories", "{tmp}/answer_int.jsonl"],
     "answer_int.jsonl:1, field 'answer': expected a string or null, got int 4"),
    ("sft-unknown-task", [*SFT, "--trajectories", "{tmp}/unknown_task.jsonl"],
     "unknown_task.jsonl:1, field 'task': unknown task 'symbench/nope'; see `r1ci data list`"),
    ("sft-test-side-task", [*SFT, "--trajectories", "{tmp}/test_task.jsonl"],
     "test_task.jsonl:1, field 'task': 'bbh/web_of_lies' is on the test side of split paper_random_v1"),
    ("sft-missing-file", [*SFT, "--trajectories", "{tmp}/nope.jsonl"], "--trajectories {tmp}/nope.jsonl: no such file"),
    ("sft-directory-as-file", [*SFT, "--trajectories", "{tmp}/out"], "--trajectories {tmp}/out: not a file"),
    ("sft-not-utf8", [*SFT, "--trajectories", "{tmp}/latin1.jsonl"], "latin1.jsonl: not UTF-8 text"),
    ("sft-empty-file", [*SFT, "--trajectories", "{tmp}/empty.jsonl"], "empty.jsonl: no trajectories"),
    ("sft-out-under-a-file", ["data", "sft", "--out", "{tmp}/a_file/x", "--trajectories", "{tmp}/steps_int.jsonl"],
     "{tmp}/a_file is not a writable directory"),
    ("sft-split-differs-from-the-builds", ["data", "sft", "--out", "{tmp}/built_bbh_heldout", "--split",
                                           "paper_random_v1", "--trajectories", "{tmp}/steps_int.jsonl"],
     "holds a build made with split 'bbh_heldout_v2', not 'paper_random_v1'"),
    ("sft-split-file-typo", [*SFT, "--trajectories", "{tmp}/steps_int.jsonl", "--split-file", "{tmp}/typo_split.yaml"],
     "unknown task(s) symbench/pooing"),
    # r1ci data split
    ("split-into-the-package", ["data", "split", "--out", str(SPLITS_DIR / "mine.yaml")], "inside the installed package"),
    ("split-existing-file", ["data", "split", "--out", "{tmp}/taken.yaml"], "{tmp}/taken.yaml: already exists"),
    ("split-bad-suffix", ["data", "split", "--out", "{tmp}/split.txt"], "expected a file ending in .yaml or .yml"),
    ("split-under-a-file", ["data", "split", "--out", "{tmp}/a_file/split.yaml"], "{tmp}/a_file is not a writable directory"),
    ("split-unknown-exclude", ["data", "split", "--out", "{tmp}/new.yaml", "--exclude", "reasoning_gym/nope"],
     "--exclude: unknown task(s) ['reasoning_gym/nope']"),
    ("split-no-out", ["data", "split"], "the following arguments are required: --out"),
    # r1ci data list
    ("list-unknown-family", ["data", "list", "--families", "gsm8k"], "--families: unknown task families ['gsm8k']"),
]  # fmt: skip


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def run(argv: list[str]) -> int:
    try:
        return cli_main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code)


@pytest.mark.parametrize("argv, message", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_with_exit_status_2_and_writes_nothing(argv, message, tmp_path, capsys):
    prepare(tmp_path)
    package_before = snapshot(SPLITS_DIR)
    before = snapshot(tmp_path)
    code = run([arg.replace("{tmp}", str(tmp_path)) for arg in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    expected = message.replace("{tmp}", str(tmp_path))
    error_lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(error_lines) == 1 and expected in error_lines[0], err
    assert error_lines[0].startswith("r1ci data ")  # our one line, or argparse's ("r1ci data build: error: ...")
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before, "an output file appeared or changed"
    assert snapshot(SPLITS_DIR) == package_before


def test_every_data_subcommand_shows_its_defaults_in_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # no line wrapping inside a default
    for command, defaults in (("build", ["(default: data/r1ci)", "(default: 200)", "(default: paper_random_v1"]),
                              ("sft", ["(default: data/r1ci)", "(default: paper_random_v1"]),
                              ("split", ["(default: random-by-task)", "(default: 37)"])):  # fmt: skip
        assert run(["data", command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for default in defaults:
            assert default in text, (command, default)


def test_sft_follows_the_split_of_the_build_in_its_output_directory(tmp_path, capsys):
    """reasoning_gym/acre is a test task of the default split but trains under bbh_heldout_v2."""
    record = trajectory(task="reasoning_gym/acre", question_id="reasoning_gym/acre/seed1/0")
    (tmp_path / "acre.jsonl").write_text(json.dumps(record) + "\n")
    args = ["data", "sft", "--trajectories", str(tmp_path / "acre.jsonl")]
    (tmp_path / "fresh").mkdir()
    assert run([*args, "--out", str(tmp_path / "fresh")]) == 2  # no build there: the default split
    assert f"test side of split {DEFAULT_PRESET}" in capsys.readouterr().err
    (tmp_path / "built").mkdir()
    write_manifest(tmp_path / "built", BBH_HELDOUT_PRESET)
    assert run([*args, "--out", str(tmp_path / "built")]) == 0, capsys.readouterr().err
    assert (tmp_path / "built" / "sft.parquet").is_file()
