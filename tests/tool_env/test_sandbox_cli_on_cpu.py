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
    from tool_env.benchmark import Plan, format_report, run_benchmark
    from tool_env.local.isolation import resolve_isolation

    plan = Plan(latency_runs=2, naive_latency_runs=2, concurrency=(2,), throughput_runs=lambda c: 2,
                levels=(resolve_isolation("auto"),), throughput_snippets=("trivial",),
                pool_sizes=(1,), saturation_runs=2, tail_concurrency=4, tail_runs=4)
    report = run_benchmark(plan, log=lambda _: None)
    assert all(samples and min(samples) > 0 for samples in report.latency_s.values())
    assert {(name, snippet, "subprocess") for name in ("plain", "venv") for snippet in ("trivial", "numpy")} <= set(report.latency_s)
    assert {("fork-floor", snippet, "stateless") for snippet in ("trivial", "numpy")} <= set(report.latency_s)
    assert report.throughput[("fork-floor", "trivial", 2)].runs == 2
    assert len(report.tail["latency"]) == len(report.tail["queue_wait"]) == 4
    text = format_report(report, plan)
    assert "plain throughput" in text and "CPU per stateless run" in text and "projected for a 64-core" in text
    assert "the fork floor" in text and "; fork floor" in text


def test_cpu_accounting_sees_what_live_descendants_burn() -> None:
    """CPU per run is read from /proc as well as rusage: the sandbox's workers are never reaped
    during a measurement, so CPU burnt by a live grandchild must be counted."""
    import subprocess
    import sys

    from tool_env.benchmark import process_tree_cpu_s

    burn = "import time, sys\nwhile time.process_time() < 0.3: pass\nprint('burnt', flush=True)\nsys.stdin.read()"
    spawn = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"
    before = process_tree_cpu_s()
    with subprocess.Popen([sys.executable, "-I", "-S", "-c", spawn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout.readline() == "burnt\n"
        after = process_tree_cpu_s()  # both processes still alive: nothing reaped yet
        proc.stdin.close()
    assert after[1] - before[1] >= 0.25
