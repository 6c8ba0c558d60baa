"""The smoke run's report: what ran, how long it took, what the checks found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1ci_verl.smoke import checks
from r1ci_verl.smoke.config import SmokeConfig


def stage_groups(config: SmokeConfig) -> list[list[int]]:
    """The curriculum groups the sampler builds from the potential file (same function it uses)."""
    import pandas as pd

    from r1ci_verl.training.curriculum import load_pass_rates
    from r1ci_verl.potential.stats import partition

    rates = load_pass_rates(str(config.out / "data" / "potential.jsonl"))
    frame = pd.read_parquet(config.out / "data" / "grpo_train.parquet")
    ids = [int(e["index"]) for e in frame["extra_info"]]
    return [list(g) for g in partition({q: rates[q] for q in ids}, config.num_stages, "potential")]


def run_checks(config: SmokeConfig) -> tuple[list[checks.Check], dict[str, Any]]:
    """All assertions on a finished run, plus the figures the report prints."""
    from transformers import AutoTokenizer

    out = config.out
    tokenizer = AutoTokenizer.from_pretrained(out / "tiny_model")
    trajectories = checks.load_trajectories(out / "rollouts")
    metric_files = [out / "metrics" / f"grpo_stage{s}.jsonl" for s in range(1, config.num_stages + 1)]
    present = [p for p in metric_files if p.exists()]
    metrics = checks.load_metrics(present)
    segments = [sorted(checks.load_metrics([p])) for p in present]
    total = config.total_steps
    found = [
        *checks.check_agent_loop(trajectories, tokenizer, config.min_code_calls),
        checks.check_weight_sync(metrics, total, config.max_rollout_probs_diff),
        checks.check_rewards_logged(metrics, total),
        checks.check_agent_metrics_logged(metrics, total),
        *checks.check_curriculum(metrics, trajectories, stage_groups(config), config.steps_per_stage,
                                 config.num_stages),
        checks.check_resume(segments, config.steps_per_stage),
        checks.check_checkpoint(out / "grpo", config.steps_per_stage),
        *(checks.check_eval(name, out / "eval" / name / "report.json", expected_eval_answers(config))
          for name in ("sft", "final")),
    ]
    figures = {
        "steps": sorted(metrics),
        "per_step": {
            step: {k: v for k, v in m.items() if k in FIGURE_KEYS or k.endswith(REWARD_SUFFIXES)}
            for step, m in sorted(metrics.items())
        },
        "trajectories": len(trajectories),
        "code_calls": sum(int(t.get("num_code_calls") or 0) for t in trajectories),
        "tool_latency_s_mean": _mean_latency(trajectories),
        "checkpoint": str(out / "grpo" / f"global_step_{config.steps_per_stage}"),
        "eval": _eval_figures(out / "eval"),
    }
    return found, figures


def expected_eval_answers(config: SmokeConfig) -> set[tuple[int, int]]:
    import pandas as pd

    frame = pd.read_parquet(config.out / "data" / "test.parquet")
    return {(int(e["index"]), s) for e in frame["extra_info"] for s in range(config.eval_n)}


def _eval_figures(eval_dir: Path) -> dict[str, Any]:
    import json

    figures: dict[str, Any] = {}
    for name in ("sft", "final"):
        path = eval_dir / name / "report.json"
        if path.exists():
            summary = json.loads(path.read_text())["summary"]
            figures[name] = {"mean_at_n": round(summary["overall"]["mean_at_n"], 2),
                             "share_ran_code": round(summary["code_use"]["share_ran_code"], 3),
                             "code_calls_per_answer": round(summary["code_use"]["code_calls_per_answer"], 3)}
    compare = eval_dir / "compare.md"
    if compare.exists():
        figures["compare_md"] = compare.read_text()
    return figures


FIGURE_KEYS = (
    "curriculum/stage", "curriculum/pool_size", "training/rollout_probs_diff_max", "timing_s/step",
    "timing_s/gen", "critic/score/mean", "actor/pg_loss", "actor/kl_loss",
)
REWARD_SUFFIXES = ("/acc/mean", "/format_ok/mean", "/num_code_calls/mean", "/code_timeouts/mean")


def _mean_latency(trajectories: list[dict[str, Any]]) -> float | None:
    calls = sum(int(t.get("num_code_calls") or 0) for t in trajectories)
    if not calls:
        return None
    return round(sum(float(t.get("code_exec_time_s") or 0.0) for t in trajectories) / calls, 4)


def build_report(config: SmokeConfig, timings: dict[str, float], wall_s: float, teacher: dict[str, int],
                 error: str | None) -> dict[str, Any]:
    from r1ci_verl.smoke.run import config_dict

    settings = {k: v for k, v in config_dict(config).items() if k != "out"}
    report: dict[str, Any] = {
        "out": str(config.out), "config": settings, "wall_s": round(wall_s, 1), "timings_s": timings,
        "teacher": {"label": "scripted-teacher (rule-based, smoke runs only), served on loopback and sampled by r1ci sft synth",
                    "trajectories": teacher},
        "error": error,
    }
    if error is None:
        found, figures = run_checks(config)
        report["checks"] = [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in found]
        report["figures"] = figures
    report["passed"] = error is None and all(c["passed"] for c in report.get("checks", []))
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"r1ci smoke: {'PASSED' if report['passed'] else 'FAILED'} in {report['wall_s']:.0f} s ({report['out']})"]
    if report.get("error"):
        lines.append(f"  error: {report['error']}")
    lines.append("  timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in report["timings_s"].items()))
    figures = report.get("figures")
    if figures:
        lines.append(f"  rollouts: {figures['trajectories']} trajectories, {figures['code_calls']} code calls executed, "
                     f"mean tool latency {figures['tool_latency_s_mean']} s")
        for step, values in figures["per_step"].items():
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(values.items()))
            lines.append(f"  step {step}: {shown}")
        lines.append(f"  stage-boundary checkpoint: {figures['checkpoint']}")
        for name in ("sft", "final"):
            if name in figures.get("eval", {}):
                e = figures["eval"][name]
                lines.append(f"  eval {name}: mean@n {e['mean_at_n']}, ran code {100 * e['share_ran_code']:.0f}%, "
                             f"{e['code_calls_per_answer']} calls/answer")
    for check in report.get("checks", []):
        lines.append(f"  [{'ok' if check['passed'] else 'FAIL'}] {check['name']}: {check['detail']}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


__all__ = ["build_report", "format_report", "run_checks", "stage_groups", "Path"]
