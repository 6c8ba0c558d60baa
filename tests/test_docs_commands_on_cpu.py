"""Every fenced code block of README.md and docs/*.md works as written, or says why it cannot run here.

- Every ``bash`` block is checked statically: each ``r1ci ...`` command parses with the real
  argparse parser, its command's ``--help`` runs, every repository path it names exists, and
  every ``recipes/*.sh`` it names passes ``bash -n``; ``python -m X`` names an importable module.
- The ``r1ci`` lines in `RUN` also run, as written, through bash in a scratch directory holding
  small input files (`FIXTURES`); each must exit 0 within `RUN_TIMEOUT_S`.
- The GPU pipelines in `DRY_RUN` run whole, as written, with the GPU programs (pip, vllm,
  torchrun, python, r1ci) replaced by stand-ins that log their arguments: the shell glue, the
  recipes and the paths between steps are real.
- Every ``python`` block runs in a fresh interpreter, except those in `PYTHON_SKIPPED` (with why).
- Blocks in other languages (yaml, json, plain text) are checked where `check_yaml_block` can.

A block that is added to the docs is picked up automatically; a line that cannot run here is
never silently passed over: `NOT_RUN_WHY` records, per documented ``r1ci`` line that is only
parsed, why it is not run.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_TIMEOUT_S = 120  # one documented command at small scale on a busy 2-core machine
REPO_DIRS = ("recipes/", "scripts/", "r1ci_verl/", "reward_fns/", "tool_env/", "benchmarks/", "tests/", "docs/")
SHELL_OPERATORS = {";", "&&", "||", "|", "&", "(", ")", ";;"}


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the repository
    line: int  # 1-based line of the opening fence
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def fenced_blocks() -> list[Block]:
    blocks = []
    for path in DOC_FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        start, lang, body = None, "", []
        for number, line in enumerate(lines, start=1):
            fence = re.match(r"^\s*```(\w*)\s*$", line)
            if fence and start is None:
                start, lang, body = number, fence.group(1), []
            elif line.strip() == "```" and start is not None:
                blocks.append(Block(str(path.relative_to(ROOT)), start, lang, "\n".join(body)))
                start = None
            elif start is not None:
                body.append(line)
    return blocks


BLOCKS = fenced_blocks()
BASH = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell")]
PYTHON = [b for b in BLOCKS if b.lang == "python"]
YAML = [b for b in BLOCKS if b.lang == "yaml"]


def shell_commands(text: str) -> list[list[str]]:
    """Simple commands of a shell snippet (continuations joined, comments dropped), as word lists."""
    lexer = shlex.shlex(text.replace("\\\n", " "), posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current = [], []
    for token in lexer:
        if token in SHELL_OPERATORS or token == "\n":
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def documented_lines(text: str) -> list[str]:
    """The snippet's logical lines (continuations joined), comments removed."""
    lines = []
    for line in re.sub(r"\s*\\\n\s*", " ", text).splitlines():
        code = line.split(" #", 1)[0].strip()
        if code and not code.startswith("#"):
            lines.append(code)
    return lines


def r1ci_invocations(block: Block) -> list[tuple[str, list[str]]]:
    """(the documented line, the r1ci argv) for every r1ci command in a bash block."""
    found = []
    for line in documented_lines(block.text):
        for words in shell_commands(line):
            while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):  # VAR=value prefixes
                words = words[1:]
            if words and words[0] == "r1ci":
                found.append((line, [w for w in words[1:] if w not in ("...", "…")]))
    return found


# ---- what runs -----------------------------------------------------------------------------------

ROW = {"data_source": "bbh/navigate", "ground_truth": "No", "response": "Let me think. <<<No>>>"}
MY_PKG = "def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):\n" \
         "    return float(str(ground_truth) in solution_str)\n"

# Small inputs the documented commands read, written into the scratch directory.
FIXTURES: dict[str, str] = {
    "rows.jsonl": json.dumps(ROW) + "\n",
    "my_rows.jsonl": json.dumps({"data_source": "mytask/capital", "ground_truth": "Paris",
                                 "response": "The capital is <<<paris>>>"}) + "\n",
    "outputs.jsonl": json.dumps("<<<No>>>") + "\n",
    "solution.py": "print(sum(range(10)))\n",
    "my_pkg/__init__.py": "",
    "my_pkg/mod.py": MY_PKG,
}

# Documented r1ci lines that run as written (others are parsed and their --help runs).
RUN = {
    "r1ci reward check --data my_rows.jsonl --reward my_rewards.py",
    "r1ci reward check --data rows.jsonl",
    "r1ci reward check --data test.parquet --answers outputs.jsonl",
    "r1ci reward check --data rows.jsonl --reward my_rewards.py",
    "r1ci reward check --data rows.jsonl --reward my_pkg.mod:compute_score",
    "r1ci reward check --data r1ci_verl/assets/bbh/navigate.jsonl --gold",
    "r1ci reward list --family reasoning_gym",
    "r1ci sandbox run solution.py",
    "echo 'print(6 * 7)' | r1ci sandbox run --json -",
    "r1ci data list",
    "r1ci data build --out data/smoke --tasks symbench/game24 bbh/navigate reasoning_gym/maze --max-per-task 8 --seed 1",
    "r1ci data split --out splits/mine.yaml --kind random-by-task --seed 3",
    "r1ci data split --out splits/rg84.yaml --exclude reasoning_gym/codeio reasoning_gym/rearc",
    "r1ci data list --split bbh_heldout_v2",
}

# Why each other documented r1ci line is only parsed. A new documented line lands in RUN or here.
NOT_RUN_WHY = {
    "r1ci data build --out data/r1ci": "every task at 200 questions: minutes; the small build in RUN covers the path",
    "r1ci data build --families symbench reasoning_gym --splits train --workers 8": "full-size build with 8 workers",
    "r1ci data build --split bbh_heldout_v2": "every task at 200 questions: minutes; tests/r1ci_verl/test_data_build_parquet_on_cpu.py builds with it",
    "r1ci data build --split-file splits/mine.yaml": "every task at 200 questions; tests/r1ci_verl/test_data_build_parquet_on_cpu.py builds with a split file",
    "r1ci data build --source path/to/R1-Code-Interpreter-Data": "needs the full published data; tests/r1ci_verl/test_data_published_layout_on_cpu.py reads a slice",
    "r1ci data build --source hf:yongchao98/R1-Code-Interpreter-Data@main": "needs the HF hub (no network in tests)",
    "r1ci data sft --trajectories teacher.jsonl --out data/r1ci": "needs teacher trajectories (tests/r1ci_verl/test_data_build_sft_on_cpu.py renders some)",
    "r1ci sandbox bench --quick": "a timing benchmark (seconds to minutes under load); benchmarks/ own it",
    "r1ci potential": "samples from a served LLM (GPU); tests/r1ci_verl/test_potential_*_on_cpu.py cover it with a fake server",
}


def not_run_reason(line: str) -> str | None:
    for prefix, why in NOT_RUN_WHY.items():
        if line == prefix or line.startswith(prefix + " ") or (prefix == "r1ci potential" and line.startswith(prefix)):
            return why
    return None


def r1ci_lines() -> list[tuple[Block, str, list[str]]]:
    return [(block, line, argv) for block in BASH for line, argv in r1ci_invocations(block)]


# ---- static checks of every bash block ------------------------------------------------------------

@pytest.mark.parametrize(("block", "line", "argv"), r1ci_lines(), ids=lambda v: v.id if isinstance(v, Block) else None)
def test_documented_r1ci_command_parses(block, line, argv):
    from r1ci_verl.cli import build_parser

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exited:
        pytest.fail(f"{block.id}: `{line}` does not parse (exit {exited.code})")
    assert getattr(args, "func", None), f"{block.id}: `{line}` names no command"
    assert line in RUN or not_run_reason(line), f"{block.id}: `{line}`: add it to RUN or say in NOT_RUN_WHY why not"


def _expand_braces(word: str) -> list[str]:
    match = re.search(r"\{([^{}]*,[^{}]*)\}", word)
    if not match:
        return [word]
    return [v for part in match.group(1).split(",") for v in _expand_braces(word[: match.start()] + part + word[match.end():])]


def repo_paths(text: str) -> list[str]:
    """Words of a snippet that name files of this repository (after `=`, in quotes, with globs/braces)."""
    found = []
    for word in re.findall(r"[\w./{},*-]+", text):
        for candidate in _expand_braces(word):
            if candidate.startswith(REPO_DIRS) and not candidate.endswith("/"):
                found.append(candidate.rstrip(".,"))
    return found


DOC_REFERENCES = [(block, path) for block in BLOCKS if block.lang in ("bash", "sh", "shell", "python", "")
                  for path in repo_paths(block.text)]


@pytest.mark.parametrize(("block", "path"), DOC_REFERENCES, ids=lambda v: v.id if isinstance(v, Block) else v)
def test_documented_path_exists(block, path):
    if block.lang == "" and "/" in path and not path.endswith((".py", ".sh", ".yaml", ".md", ".jsonl")):
        pytest.skip("a directory tree drawing")
    assert glob.glob(str(ROOT / path)), f"{block.id}: {path} does not exist"
    if path.startswith("recipes/") and path.endswith(".sh"):
        for script in glob.glob(str(ROOT / path)):
            proc = subprocess.run(["bash", "-n", script], capture_output=True, text=True)
            assert proc.returncode == 0, f"{block.id}: bash -n {path}: {proc.stderr}"


def python_modules(block: Block) -> list[str]:
    modules = []
    for words in shell_commands(block.text):
        if len(words) > 2 and words[0] in ("python", "python3") and words[1] == "-m":
            modules.append(words[2])
    modules += re.findall(r"pkg://([\w.]+)", block.text)
    return modules


MODULE_REFERENCES = [(block, module) for block in BASH for module in python_modules(block)]


@pytest.mark.parametrize(("block", "module"), MODULE_REFERENCES, ids=lambda v: v.id if isinstance(v, Block) else v)
def test_documented_python_module_exists(block, module):
    assert importlib.util.find_spec(module) is not None, f"{block.id}: no module {module}"


@pytest.mark.parametrize("block", YAML, ids=lambda b: b.id)
def test_yaml_block_parses_and_names_real_keys(block):
    data = yaml.safe_load(block.text)
    if isinstance(data, list) and data and isinstance(data[0], dict) and data[0].get("name") == "r1ci_code_interpreter":
        from r1ci_verl.rollout.settings import AgentLoopSettings

        entry = {k: v for k, v in data[0].items() if k not in ("name", "_target_")}
        AgentLoopSettings.from_layers(entry)  # an unknown key raises, naming it
    if isinstance(data, dict) and set(data) == {"sandbox"}:
        from tool_env import SandboxConfig

        SandboxConfig.from_mapping(data["sandbox"])


# ---- running the documented commands --------------------------------------------------------------

@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A directory that looks like a checkout (repository dirs linked) plus the fixture inputs."""
    root = tmp_path_factory.mktemp("docs")
    for name in ("r1ci_verl", "recipes", "scripts", "reward_fns", "tool_env"):
        (root / name).symlink_to(ROOT / name)
    for name, content in FIXTURES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    for block in PYTHON:  # "# my_rewards.py" blocks are the documented reward modules
        first = block.text.splitlines()[0].strip()
        if first.startswith("# ") and first.endswith(".py"):
            (root / f"{Path(block.doc).stem}_{first[2:]}").write_text(block.text)
    import pandas as pd

    pd.DataFrame([{k: v for k, v in ROW.items() if k != "response"}]).to_parquet(root / "test.parquet")
    bin_dir = root / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "r1ci"  # the installed console script, run against this checkout
    shim.write_text(f"#!{sys.executable} -P\nimport sys\nfrom r1ci_verl.cli import main\nsys.exit(main())\n")
    shim.chmod(0o755)
    return root


def run_line(line: str, cwd: Path, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{cwd / '.bin'}{os.pathsep}{os.environ['PATH']}",
           "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run(["bash", "-c", f"set -o pipefail; {line}"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)


RUN_CASES = [(block, line) for block in BASH for line in documented_lines(block.text) if line in RUN]


def test_every_run_line_is_documented():
    assert {line for _, line in RUN_CASES} == RUN, "a line in RUN is no longer in the docs"


@pytest.mark.parametrize(("block", "line"), RUN_CASES, ids=lambda v: v.id if isinstance(v, Block) else None)
def test_documented_command_runs(block, line, scratch):
    reward_module = scratch / f"{Path(block.doc).stem}_my_rewards.py"
    if reward_module.exists():  # this page's own "# my_rewards.py" block
        (scratch / "my_rewards.py").write_text(reward_module.read_text())
    proc = run_line(line, scratch)
    assert proc.returncode == 0, f"{block.id}: `{line}` exited {proc.returncode}: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr


def command_of(argv: list[str]) -> str:
    """``data build`` / ``potential``: the (sub)command words of an argv."""
    return " ".join(argv[:2] if argv[0] in ("sandbox", "reward", "data") else argv[:1])


@pytest.mark.parametrize("command", sorted({command_of(argv) for _, _, argv in r1ci_lines()}))
def test_documented_command_help_runs(command):
    from cli_cases import run_cli

    run = run_cli([*command.split(), "--help"])
    assert run.code == 0 and f"usage: r1ci {command}" in run.out, run.err


# ---- GPU pipelines, dry-run: the shell glue runs as written, with the GPU programs stubbed ---------

# Stand-ins for programs that need GPUs, the network or hours. Each logs its argv; the SFT
# trainer stand-in also writes the HF export directory the real one would, the server
# stand-in keeps running like a server, and pip knows this project is not on PyPI.
STUBS = {
    "pip": 'case "$*" in *r1ci-verl*) echo "ERROR: No matching distribution found for r1ci-verl" >&2; exit 1;; esac',
    "curl": "", "r1ci": "", "python": "",
    "vllm": "exec sleep 60",  # a server runs until the block kills it
    "torchrun": 'for a in "$@"; do case $a in trainer.default_local_dir=*) '
                'mkdir -p "${a#*=}/global_step_3/huggingface";; esac; done',
}
# Blocks that run whole under the stubs: (doc, text that picks the one block) -> fragments the log must hold.
DRY_RUN = {
    ("README.md", "recipes/run_sft.sh"): [
        "torchrun", "model.path=Qwen/Qwen2.5-14B-Instruct", "data.train_files=data/r1ci/sft.parquet",
        "--tokenizer checkpoints/r1ci/sft-14b/global_step_3/huggingface",
        "actor_rollout_ref.model.path=checkpoints/r1ci/sft-14b/global_step_3/huggingface",
        "+curriculum.potential_file=data/r1ci/potential.parquet",
        *(f"trainer.total_training_steps={steps}" for steps in (150, 300, 450, 600)),
    ],
    ("docs/train.md", "recipes/run_sft.sh"): [
        "model.path=Qwen/Qwen2.5-14B-Instruct", "trainer.default_local_dir=checkpoints/r1ci/sft-14b",
    ],
    ("docs/train.md", "recipes/run_14b_stage.sh"): [
        "actor_rollout_ref.model.path=checkpoints/r1ci/sft-14b/global_step_12/huggingface",
        "trainer.default_local_dir=checkpoints/r1ci/grpo-14b", "trainer.total_training_steps=600",
    ],
}


# What earlier steps would have left behind, for blocks that start mid-pipeline.
DRY_RUN_SETUP = {
    ("docs/train.md", "recipes/run_14b_stage.sh"): [f"checkpoints/r1ci/sft-14b/global_step_{n}/huggingface" for n in (6, 12)],
}


def dry_run_block(key: tuple[str, str]) -> Block:
    found = [b for b in BASH if b.doc == key[0] and key[1] in b.text]
    assert len(found) == 1, f"DRY_RUN key {key}: {len(found)} bash blocks of {key[0]} hold {key[1]!r}, expected 1"
    return found[0]


@pytest.mark.parametrize("key", sorted(DRY_RUN), ids=lambda key: f"{key[0]}: {key[1][:40]}")
def test_gpu_pipeline_runs_as_written_with_gpu_programs_stubbed(key, tmp_path):
    block = dry_run_block(key)
    bin_dir, log = tmp_path / ".stubs", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        (bin_dir / name).write_text(f'#!/bin/bash\necho "{name} $*" >> "{log}"\n{body}\n')
        (bin_dir / name).chmod(0o755)
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    for directory in DRY_RUN_SETUP.get(key, ()):
        (tmp_path / directory).mkdir(parents=True)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for knob in ("MODEL_PATH", "STAGE", "OUT_DIR", "TRAIN_FILES", "POTENTIAL_FILE", "SFT_DIR"):
        env.pop(knob, None)
    proc = subprocess.run(["bash", "-e", "-c", block.text], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, f"{block.id} exited {proc.returncode}: {proc.stderr[-2000:]}"
    calls = log.read_text()
    for fragment in DRY_RUN[key]:
        assert fragment in calls, f"{block.id}: {fragment!r} not in the calls:\n{calls}"


# ---- python blocks ----------------------------------------------------------------------------------

PYTHON_SKIPPED = {
    "docs/sandbox.md: result = await sandbox.arun": "an excerpt inside async code (no `sandbox` defined, top-level await); "
    "tests/tool_env cover the async API",
}


def python_skip_reason(block: Block) -> str | None:
    for key, why in PYTHON_SKIPPED.items():
        doc, _, start = key.partition(": ")
        if block.doc == doc and block.text.lstrip().startswith(start):
            return why
    return None


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_block_runs(block, tmp_path):
    why = python_skip_reason(block)
    if why:
        pytest.skip(f"{block.id}: {why}")
    proc = subprocess.run([sys.executable, "-c", block.text], cwd=tmp_path, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, f"{block.id}: {proc.stderr[-2000:]}"
    expected = re.findall(r"#\s*(\d+)\s*$", block.text, flags=re.M)  # "print(...)   # 42" comments
    if "print(" in block.text:
        for value in expected:
            assert value in proc.stdout.split(), f"{block.id}: expected {value} in output {proc.stdout!r}"


def test_every_python_skip_still_matches_a_block():
    assert all(any(python_skip_reason(b) == why for b in PYTHON) for why in PYTHON_SKIPPED.values())
