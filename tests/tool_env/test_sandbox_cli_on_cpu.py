"""`r1ci sandbox run`: code from a file or stdin, output passed through, exit status kept."""

from __future__ import annotations

import io
import json

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


def test_missing_file_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["sandbox", "run", "--preload", "math", str(tmp_path / "absent.py")]) == 2
    assert capsys.readouterr().err == f"r1ci sandbox run: error: {tmp_path / 'absent.py'}: no such file\n"


def test_benchmark_smoke() -> None:
    """The README's main job (`r1ci sandbox bench`) must keep working; timings are not asserted."""
    from tool_env.bench import Plan, format_report, run_benchmark
    from tool_env.local.isolation import resolve_isolation

    plan = Plan(2, 1, (2,), lambda c: 2, (resolve_isolation("auto"),), ("trivial",))
    report = run_benchmark(plan, log=lambda _: None)
    assert all(p50 > 0 for p50, _ in report.latency_ms.values())
    assert set(report.latency_ms) >= {("naive", "trivial", "subprocess"), ("naive", "numpy", "subprocess")}
    text = format_report(report, plan)
    assert "Throughput (runs/s)" in text and "x the naive throughput" in text
