"""The benchmark's fork-per-call floor runs code for real, under rlimits, from many threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tool_env.fork_floor import ForkFloor


@pytest.fixture(scope="module")
def floor():
    with ForkFloor(slots=2, preload=("math",)) as pool:
        yield pool


def test_runs_code_and_returns_its_output(floor: ForkFloor) -> None:
    assert floor.run("import math\nprint(math.factorial(5))") == "120\n"
    assert floor.run("import sys\nprint('err', file=sys.stderr)") == "err\n"


def test_each_call_is_a_fresh_fork(floor: ForkFloor) -> None:
    floor.run("import builtins\nbuiltins.leak = 1")
    assert floor.run("print(hasattr(__import__('builtins'), 'leak'))") == "False\n"
    pids = {floor.run("import os\nprint(os.getpid())") for _ in range(4)}
    assert len(pids) == 4


def test_a_failing_run_leaves_the_slot_usable(floor: ForkFloor) -> None:
    assert floor.run("1 / 0") == ""
    assert floor.run("import os\nos._exit(3)") == ""
    assert floor.run("print(2)") == "2\n"


def test_the_address_space_limit_applies(floor: ForkFloor) -> None:
    code = "try:\n    b = bytearray(4 << 30)\nexcept MemoryError:\n    print('refused')"
    assert floor.run(code) == "refused\n"


def test_concurrent_callers_share_the_slots(floor: ForkFloor) -> None:
    with ThreadPoolExecutor(8) as pool:
        outputs = list(pool.map(lambda i: floor.run(f"print({i} * 2)"), range(40)))
    assert outputs == [f"{i * 2}\n" for i in range(40)]


def test_the_floor_benchmark_prints_every_preload_set(capsys) -> None:
    """`benchmarks/bench_fork_floor.py` must keep running; timings are not asserted."""
    import runpy
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fork_floor.py"
    bench = runpy.run_path(str(script))
    assert bench["main"](["--runs", "3", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for preload in bench["PRELOAD_SETS"]:
        assert any(line.startswith(f"fork floor, {preload} ") for line in lines)
        assert any(line.startswith("local-") and f", {preload} " in line for line in lines)
