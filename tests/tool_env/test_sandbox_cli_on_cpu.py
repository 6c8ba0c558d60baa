"""`r1ci sandbox run`: code from a file or stdin, output passed through, exit status kept."""

from __future__ import annotations

import io
import json

import pytest

from r1ci_verl.cli import main


def test_run_file_passes_output_and_exit_status(tmp_path, capsys) -> None:
    script = tmp_path / "solve.py"
    script.write_text("import sys\nprint('answer', 6 * 7)\nprint('note', file=sys.stderr)\nsys.exit(3)\n")
    assert main(["sandbox", "run", "--preload", "math", "--isolation", "rlimit", str(script)]) == 3
    out, err = capsys.readouterr()
    assert out == "answer 42\n"
    assert "note" in err


def test_run_stdin_as_json(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("1/0"))
    assert main(["sandbox", "run", "--preload", "math", "--json", "-"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["error"]["name"] == "ZeroDivisionError" and result["exit_code"] == 1


def test_timeout_exits_124(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("while True:\n    pass"))
    assert main(["sandbox", "run", "--preload", "math", "--timeout", "0.5", "-"]) == 124
    assert "TimeoutError" in capsys.readouterr().err


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(SystemExit, match="no such file"):
        main(["sandbox", "run", "--preload", "math", str(tmp_path / "absent.py")])
