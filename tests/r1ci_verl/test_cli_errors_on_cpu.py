"""Bad input to `r1ci sandbox`, `r1ci reward`, `r1ci smoke` and `r1ci` itself: one line naming
file, line, row and field; exit 2 for usage, 1 for runtime; no traceback; no output written.

Other commands add their rows in their own test files with the same helper (tests/cli_cases.py).
"""

from __future__ import annotations

import json

import pytest
from cli_cases import RUNTIME, USAGE, BadInput, check_bad_input, run_cli

GOOD_ROW = {"data_source": "bbh/navigate", "ground_truth": "No", "response": "<<<No>>>"}


def jsonl(*records) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


ROWS = {"rows.jsonl": jsonl(GOOD_ROW, GOOD_ROW)}
EXISTING_OUTPUT = {"results.jsonl": "kept\n"}
CHECK = ["reward", "check", "--data", "{tmp}/rows.jsonl"]

SANDBOX = [
    BadInput("sandbox: missing file", ["sandbox", "run", "{tmp}/nope.py"], USAGE, ["{tmp}/nope.py: no such file"]),
    BadInput("sandbox: a directory", ["sandbox", "run", "{tmp}/code/"], USAGE, ["code: is a directory"],
             files={"code/": ""}),
    BadInput("sandbox: non-UTF-8 file", ["sandbox", "run", "{tmp}/bad.py"], USAGE,
             ["not UTF-8 text (byte 0xff)", "bad.py:2"], files={"bad.py": b"print(1)\n\xff\n"}),
    BadInput("sandbox: non-UTF-8 stdin", ["sandbox", "run", "-"], USAGE, ["not UTF-8", "stdin:1"], stdin=b"\xfe"),
    BadInput("sandbox: timeout 0", ["sandbox", "run", "--timeout", "0", "x.py"], USAGE,
             ["argument --timeout: must be a number > 0, got 0"]),
    BadInput("sandbox: timeout nan", ["sandbox", "run", "--timeout", "nan", "x.py"], USAGE, ["argument --timeout"]),
    BadInput("sandbox: timeout too long", ["sandbox", "run", "--timeout", "99999", "{tmp}/ok.py"], USAGE,
             ["--timeout", "outside"], files={"ok.py": "print(1)\n"}),
    BadInput("sandbox: negative output cap", ["sandbox", "run", "--max-output-chars", "-5", "x.py"], USAGE,
             ["argument --max-output-chars: must be >= 1, got -5"]),
    BadInput("sandbox: tiny output cap", ["sandbox", "run", "--max-output-chars", "5", "{tmp}/ok.py"], USAGE,
             ["--max-output-chars", "outside [64"], files={"ok.py": "print(1)\n"}),
    BadInput("sandbox: unknown preload", ["sandbox", "run", "--preload", "math,bogus_mod", "{tmp}/ok.py"], USAGE,
             ["--preload: no module named 'bogus_mod'"], files={"ok.py": "print(1)\n"}),
    BadInput("sandbox: unknown isolation", ["sandbox", "run", "--isolation", "vm", "x.py"], USAGE,
             ["argument --isolation: invalid choice: 'vm'"]),
    BadInput("sandbox: no action", ["sandbox"], USAGE, ["required: ACTION"]),
]

REWARD = [
    BadInput("reward: missing data", ["reward", "check", "--data", "{tmp}/nope.jsonl"], USAGE,
             ["--data {tmp}/nope.jsonl: no such file"]),
    BadInput("reward: data is a directory", ["reward", "check", "--data", "{tmp}/rows/"], USAGE,
             ["is a directory"], files={"rows/": ""}),
    BadInput("reward: wrong data suffix", ["reward", "check", "--data", "{tmp}/rows.csv"], USAGE,
             ["rows.csv: expected a file ending in .jsonl or .json or .parquet"], files={"rows.csv": "a,b\n"}),
    BadInput("reward: empty data", CHECK, USAGE, ["no rows", "rows.jsonl"], files={"rows.jsonl": "\n"}),
    BadInput("reward: bad JSON line", CHECK, USAGE, ["not valid JSON", "rows.jsonl:3, row 2"],
             files={"rows.jsonl": jsonl(GOOD_ROW) + "\n{oops\n"}),
    BadInput("reward: non-UTF-8 data", CHECK, USAGE, ["not UTF-8", "rows.jsonl"],
             files={"rows.jsonl": b"\xff\xfe\n"}),
    BadInput("reward: JSONL given as parquet", ["reward", "check", "--data", "{tmp}/rows.parquet"], USAGE,
             ["not a readable parquet file", "rows.parquet"], files={"rows.parquet": jsonl(GOOD_ROW)}),
    BadInput("reward: row not an object", CHECK, USAGE, ["expected a JSON object, got list", "rows.jsonl:2, row 2"],
             files={"rows.jsonl": jsonl(GOOD_ROW, [1, 2])}),
    BadInput("reward: null ground truth", CHECK, USAGE,
             ["ground truth is null", "rows.jsonl:2, row 2, field 'ground_truth'"],
             files={"rows.jsonl": jsonl(GOOD_ROW, {**GOOD_ROW, "ground_truth": None})}),
    BadInput("reward: unknown data_source", CHECK, USAGE,
             ["no verifier registered for task 'bbh/navigat'", "similar: bbh/navigate",
              "rows.jsonl:2, row 2, field 'data_source'"],
             files={"rows.jsonl": jsonl(GOOD_ROW, {**GOOD_ROW, "data_source": "bbh/navigat"})}),
    BadInput("reward: missing response", CHECK, USAGE, ["rows.jsonl:1, row 1, field 'response'"],
             files={"rows.jsonl": jsonl({"data_source": "bbh/navigate", "ground_truth": "No"})}),
    BadInput("reward: answers count", [*CHECK, "--answers", "{tmp}/answers.jsonl"], USAGE,
             ["1 responses for 2 rows", "answers.jsonl"], files={**ROWS, "answers.jsonl": jsonl("<<<No>>>")}),
    BadInput("reward: answers line not a response", [*CHECK, "--answers", "{tmp}/answers.jsonl"], USAGE,
             ["expected a JSON string or an object with a string 'response'", "answers.jsonl:2, row 2"],
             files={**ROWS, "answers.jsonl": jsonl("<<<No>>>", {"text": 1})}),
    BadInput("reward: gold and answers", [*CHECK, "--gold", "--answers", "{tmp}/answers.jsonl"], USAGE,
             ["--gold and --answers exclude each other"], files={**ROWS, "answers.jsonl": jsonl("a", "b")}),
    BadInput("reward: fail-under ambiguous", [*CHECK, "--fail-under", "0.9"], USAGE,
             ["argument --fail-under: '0.9' is ambiguous", "e.g. 90"], files=ROWS),
    BadInput("reward: fail-under above 100", [*CHECK, "--fail-under", "9000"], USAGE,
             ["expected a percentage 0-100"], files=ROWS),
    BadInput("reward: negative max-failures", [*CHECK, "--max-failures", "-1"], USAGE, ["must be >= 0"], files=ROWS),
    BadInput("reward: output parent is a file",
             [*CHECK, "--output", "{tmp}/results.jsonl/out.jsonl"], USAGE,
             ["--output", "is not a writable directory"], files={**ROWS, **EXISTING_OUTPUT}),
    BadInput("reward: output wrong suffix", [*CHECK, "--output", "{tmp}/results.csv"], USAGE,
             ["--output {tmp}/results.csv: expected a file ending in .jsonl"], files=ROWS),
    BadInput("reward: output is a directory", [*CHECK, "--output", "{tmp}/out.jsonl"], USAGE,
             ["is a directory"], files={**ROWS, "out.jsonl/": ""}),
    BadInput("reward: bad data keeps the old output", [*CHECK, "--output", "{tmp}/results.jsonl"], USAGE,
             ["ground truth is null"],
             files={"rows.jsonl": jsonl({**GOOD_ROW, "ground_truth": None}), **EXISTING_OUTPUT}),
    BadInput("reward: missing reward module", [*CHECK, "--reward", "{tmp}/nope.py"], USAGE,
             ["cannot load reward", "nope.py"], files=ROWS),
    BadInput("reward: reward function missing", [*CHECK, "--reward", "{tmp}/mine.py:score"], USAGE,
             ["has no attribute 'score'"], files={**ROWS, "mine.py": "x = 1\n"}),
    BadInput("reward: reward module syntax error", [*CHECK, "--reward", "{tmp}/mine.py"], USAGE,
             ["cannot load reward", "mine.py"], files={**ROWS, "mine.py": "def (:\n"}),
    BadInput("reward: reward function raises", [*CHECK, "--reward", "{tmp}/mine.py:compute_score"], RUNTIME,
             ["RuntimeError: verifier service down"],
             files={**ROWS, "mine.py": "def compute_score(**kw):\n    raise RuntimeError('verifier service down')\n"}),
    BadInput("reward: reward function returns no score", [*CHECK, "--reward", "{tmp}/mine.py:compute_score"], USAGE,
             ["returned a dict without 'score'", "rows.jsonl:1, row 1"],
             files={**ROWS, "mine.py": "def compute_score(**kw):\n    return {'acc': 1.0}\n"}),
    BadInput("reward: unknown family", ["reward", "list", "--family", "bhh"], USAGE,
             ["--family bhh: no such family", "bbh"]),
]

SMOKE = [
    BadInput("smoke: check-only on a missing directory", ["smoke", "--check-only", "--out", "{tmp}/runs/none"], USAGE,
             ["--out {tmp}/runs/none: no such run directory"]),
    BadInput("smoke: out is a file", ["smoke", "--out", "{tmp}/run"], USAGE, ["exists and is not a directory"],
             files={"run": "x"}),
    BadInput("smoke: zero stages", ["smoke", "--num-stages", "0"], USAGE, ["argument --num-stages: must be >= 1"]),
]

TOP = [
    BadInput("unknown command", ["trian"], USAGE, ["invalid choice: 'trian'"], command=""),
    BadInput("reward without action", ["reward"], USAGE, ["required: ACTION"]),
]


@pytest.mark.parametrize("case", SANDBOX + REWARD + SMOKE, ids=lambda case: case.id)
def test_bad_input(case, tmp_path):
    check_bad_input(case, tmp_path)


@pytest.mark.parametrize("case", TOP, ids=lambda case: case.id)
def test_bad_command(case, tmp_path):
    run = run_cli(case.argv)
    assert run.code == USAGE and len(run.err.strip().splitlines()) == 1 and case.expect[0] in run.err


def test_debug_prints_the_traceback(tmp_path):
    (tmp_path / "mine.py").write_text("def compute_score(**kw):\n    raise RuntimeError('boom')\n")
    (tmp_path / "rows.jsonl").write_text(jsonl(GOOD_ROW))
    argv = ["reward", "check", "--data", str(tmp_path / "rows.jsonl"), "--reward", f"{tmp_path}/mine.py:compute_score"]
    quiet, loud = run_cli(argv), run_cli(["--debug", *argv])
    assert quiet.code == loud.code == RUNTIME
    assert "Traceback" not in quiet.err and "r1ci --debug shows the traceback" in quiet.err
    assert "Traceback" in loud.err and "RuntimeError: boom" in loud.err


def test_every_help_shows_defaults():
    """`--help` of each command with options that have defaults names them."""
    for argv, shown in [
        (["sandbox", "run", "--help"], "(default: auto)"),
        (["reward", "check", "--help"], "(default: 10)"),
        (["smoke", "--help"], "(default: runs/smoke)"),
    ]:
        run = run_cli(argv)
        assert run.code == 0 and shown in run.out, (argv, run.out)


def _all_parsers(parser):
    import argparse

    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _all_parsers(child)


def test_help_of_every_command_shows_every_default():
    """Every option of every (nested) command with a real default names it in --help."""
    from r1ci_verl.cli import build_parser

    for parser in _all_parsers(build_parser()):
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            default = action.default
            if not action.option_strings or default is None or default is False or default == [] or action.dest == "help":
                continue
            if action.help == "==SUPPRESS==" or default == "==SUPPRESS==":
                continue
            assert f"(default: {default})" in text, f"{parser.prog} {action.option_strings[0]}: default {default!r} not shown"


def test_every_command_name_in_errors_is_the_innermost_command():
    from r1ci_verl.cli import build_parser

    for parser in _all_parsers(build_parser()):
        assert parser.get_default("prog") == parser.prog


def test_good_input_still_works(tmp_path):
    """The same commands with good input: exit 0 and the output written."""
    (tmp_path / "ok.py").write_text("print(6 * 7)\n")
    assert run_cli(["sandbox", "run", "--isolation", "rlimit", str(tmp_path / "ok.py")]).out == "42\n"
    (tmp_path / "rows.jsonl").write_text(ROWS["rows.jsonl"])
    run = run_cli([*[w.replace("{tmp}", str(tmp_path)) for w in CHECK], "--output", str(tmp_path / "r" / "out.jsonl"),
                   "--fail-under", "90"])
    assert run.code == 0, run.err
    assert len((tmp_path / "r" / "out.jsonl").read_text().splitlines()) == 2
