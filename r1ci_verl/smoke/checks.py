"""What a smoke run must prove, checked on its artefacts (dumps, metrics, checkpoints).

Each check returns a `Check` (name, passed, detail); `r1ci smoke` exits non-zero if any
fails, and tests/e2e asserts the same functions on a finished run. Nothing here needs verl:
the inputs are files verl wrote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from reward_fns.protocol import RESULTS_HEADER

TOKENS_SUFFIX = ".tokens.jsonl"  # written by r1ci_verl.smoke.trajectory_dump
REWARD_METRICS = ("acc", "format_ok", "num_code_calls")  # reward/<name>/mean, logged by r1ci_verl.training.main_grpo
AGENT_METRICS = ("num_code_calls", "code_timeouts", "code_exec_time_s", "answered")  # agent/<name>/mean


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_trajectories(rollout_dir: Path) -> list[dict[str, Any]]:
    """All token dumps of a run, ordered by step."""
    files = sorted(Path(rollout_dir).glob(f"*{TOKENS_SUFFIX}"), key=lambda p: int(p.name.split(".")[0]))
    return [record for path in files for record in read_jsonl(path)]


def load_metrics(paths: Iterable[Path]) -> dict[int, dict[str, Any]]:
    """step -> metrics from verl's file logger (one jsonl per run segment; later segments win)."""
    steps: dict[int, dict[str, Any]] = {}
    for path in paths:
        for record in read_jsonl(path):
            steps.setdefault(int(record["step"]), {}).update(record["data"])
    return steps


def masked_spans(mask: Sequence[int], ids: Sequence[int], pad_id: int | None) -> list[tuple[int, int]]:
    """[start, end) runs of mask 0 inside the response, trailing padding excluded."""
    end = len(mask)
    while end > 0 and mask[end - 1] == 0 and (pad_id is None or ids[end - 1] == pad_id):
        end -= 1
    spans, start = [], None
    for i in range(end):
        if mask[i] == 0 and start is None:
            start = i
        elif mask[i] == 1 and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, end))
    return spans


def check_agent_loop(trajectories: list[dict[str, Any]], tokenizer, min_code_calls: int = 1) -> list[Check]:
    """Our loop ran in verl's rollout: code executed, results inserted, and masked from the loss."""
    if not trajectories:
        return [Check("agent_loop.trajectories_dumped", False, "no *.tokens.jsonl rollout dumps found")]
    calls = sum(int(t.get("num_code_calls") or 0) for t in trajectories)
    checks = [Check("agent_loop.code_executed", calls >= max(1, min_code_calls),
                    f"{calls} code blocks executed in {len(trajectories)} trajectories (need >= {max(1, min_code_calls)})")]
    pad_id = tokenizer.pad_token_id
    spans_total, bad = 0, []
    for t in trajectories:
        spans = masked_spans(t["response_mask"], t["response_ids"], pad_id)
        spans_total += len(spans)
        for start, end in spans:
            text = tokenizer.decode(t["response_ids"][start:end]).lstrip("\n")
            cut_by_budget = end == len(t["response_mask"])  # the engine inserts what fits: maybe just "\n"
            if not (text.startswith(RESULTS_HEADER) or cut_by_budget and RESULTS_HEADER.startswith(text)):
                bad.append(f"{t['uid']}@{start}: {text[:60]!r}")
        if len(spans) > int(t.get("num_code_calls") or 0):
            bad.append(f"{t['uid']}: {len(spans)} masked spans but {t.get('num_code_calls')} code calls")
    checks.append(Check("agent_loop.results_blocks_inserted", spans_total > 0, f"{spans_total} results blocks with response_mask 0"))
    checks.append(Check("agent_loop.only_results_masked", not bad, "; ".join(bad[:5]) or "every masked span is a results block"))
    return checks


def check_weight_sync(metrics: dict[int, dict[str, Any]], steps: int, threshold: float) -> Check:
    """vLLM's log-probs match the actor's after every sync, so rollout runs the trained weights."""
    key = "training/rollout_probs_diff_max"
    values = {s: metrics.get(s, {}).get(key) for s in range(1, steps + 1)}
    missing = [s for s, v in values.items() if v is None]
    if missing:
        return Check("weight_sync.probs_diff", False, f"{key} missing at steps {missing}")
    worst = max(values.values())
    return Check("weight_sync.probs_diff", worst <= threshold, f"max over steps {worst:.2e} (limit {threshold:g})")


def _check_means_logged(name: str, metrics: dict[int, dict[str, Any]], steps: int, prefix: str,
                        keys: Sequence[str]) -> Check:
    absent = [f"{key}@{step}" for step in range(1, steps + 1) for key in keys
              if f"{prefix}/{key}/mean" not in metrics.get(step, {})]
    return Check(name, not absent, f"missing {absent[:6]}" if absent else f"{prefix}/{{{', '.join(keys)}}}/mean at every step")


def check_rewards_logged(metrics: dict[int, dict[str, Any]], steps: int) -> Check:
    """Our reward's extra keys reached verl's logs at every step."""
    return _check_means_logged("rewards.logged", metrics, steps, "reward", REWARD_METRICS)


def check_agent_metrics_logged(metrics: dict[int, dict[str, Any]], steps: int) -> Check:
    """The agent loop's counters reached verl's logs at every step."""
    return _check_means_logged("agent_metrics.logged", metrics, steps, "agent", AGENT_METRICS)


def stage_of_step(step: int, steps_per_stage: int, num_stages: int) -> int:
    """1-based curriculum stage the sampler should be in at a (1-based) training step."""
    return min((step - 1) // steps_per_stage, num_stages - 1) + 1


def check_curriculum(
    metrics: dict[int, dict[str, Any]],
    trajectories: list[dict[str, Any]],
    groups: Sequence[Sequence[int]],
    steps_per_stage: int,
    num_stages: int,
) -> list[Check]:
    """The sampler drew stage-1 questions first and switched at the configured step, also after the resume."""
    total = num_stages * steps_per_stage
    logged = {s: metrics.get(s, {}).get("curriculum/stage") for s in range(1, total + 1)}
    wrong = {s: v for s, v in logged.items() if v is None or int(v) != stage_of_step(s, steps_per_stage, num_stages)}
    checks = [Check("curriculum.stage_schedule", not wrong,
                    f"logged stage per step {logged}" + (f"; wrong at {sorted(wrong)}" if wrong else ""))]
    group_of = {int(q): g + 1 for g, members in enumerate(groups) for q in members}
    outside = []
    for t in trajectories:
        allowed = stage_of_step(int(t["step"]), steps_per_stage, num_stages)
        group = group_of.get(int(t["index"]))
        if group is None or group > allowed:
            outside.append(f"step {t['step']} drew question {t['index']} of group {group}")
    checks.append(Check("curriculum.pool_respected", not outside and bool(trajectories),
                        "; ".join(outside[:5]) or "every drawn question belongs to the stage's pool"))
    return checks


def check_resume(segment_steps: Sequence[Sequence[int]], steps_per_stage: int) -> Check:
    """Each stage ran as its own process that continued from the previous stage's checkpoint.

    `segment_steps[k]` are the steps the (k+1)-th process logged; a resumed process starts at
    the step after the boundary, a restarted one would start at step 1 again.
    """
    expected = [list(range(k * steps_per_stage + 1, (k + 1) * steps_per_stage + 1)) for k in range(len(segment_steps))]
    actual = [sorted(steps) for steps in segment_steps]
    ok = len(actual) > 1 and actual == expected
    return Check("curriculum.resume", ok, f"steps logged per process {actual} (expected {expected})")


def check_checkpoint(ckpt_dir: Path, boundary_step: int) -> Check:
    """A checkpoint with an HF export exists at the stage boundary."""
    step_dir = Path(ckpt_dir) / f"global_step_{boundary_step}"
    hf = step_dir / "actor" / "huggingface"
    ok = (step_dir / "data.pt").exists() and (hf / "config.json").exists()
    return Check("checkpoint.stage_boundary", ok, f"{step_dir} (data.pt and actor/huggingface {'present' if ok else 'MISSING'})")


EVAL_CODE_USE_KEYS = ("share_ran_code", "code_calls_per_answer", "code_errors", "code_timeouts",
                      "share_without_answer")


def check_eval(name: str, report_path: Path, expected: set[tuple[int, int]]) -> Check:
    """An `r1ci eval` report exists, scored every (question, sample) asked for, and has code-use stats.

    It does not ask whether the tiny model got better: a smoke run proves the loop closes.
    """
    check_name = f"eval.{name}"
    if not Path(report_path).exists():
        return Check(check_name, False, f"no report at {report_path}")
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    scored = {(int(a["index"]), int(a["sample"])) for a in report.get("answers", []) if a.get("acc") is not None}
    missing = expected - scored
    code_use = report.get("summary", {}).get("code_use", {})
    absent = [k for k in EVAL_CODE_USE_KEYS if k not in code_use]
    if missing or absent:
        return Check(check_name, False, f"{len(missing)} of {len(expected)} answers unscored; code-use stats "
                                        f"missing {absent}")
    overall = report["summary"]["overall"]
    return Check(check_name, True, f"{len(scored)} answers scored, mean@n {overall['mean_at_n']:.1f}, "
                                   f"{100 * code_use['share_ran_code']:.0f}% ran code "
                                   f"({code_use['code_calls_per_answer']:.2f} calls/answer)")
