"""Eval reports: per task, per family and overall accuracy, code-use statistics, paper references,
a markdown table, a bar chart, and the side-by-side comparison of two runs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any, Iterable, Sequence

# The paper's averages over its 37 test tasks (R1-Code-Interpreter v2, Table 2), in percent.
PAPER_REFERENCE = {
    "Qwen2.5-14B": 44.1,
    "GPT-4o": 58.6,
    "GPT-4o + Code Interpreter": 70.9,
    "R1-CI-14B": 72.4,
}
PAPER_TEST_TASKS = 37
SPLIT_NOTE = (
    "The paper's averages are over its own 37 test tasks, whose list is not published; this "
    "project's test split was drawn separately (see r1ci_verl/assets/splits), so the task sets "
    "differ and the numbers are not directly comparable."
)
REPORT_VERSION = 1


def family_of(task: str) -> str:
    return task.split("/", 1)[0] if "/" in task else task


def summarize(records: Sequence[dict[str, Any]], n: int) -> dict[str, Any]:
    """Accuracy (mean@n, pass@n) per task, per family and overall, plus code-use statistics.

    The overall number is the mean over tasks (the paper's headline is the average over its test
    tasks), not over questions; the question-weighted mean is reported beside it.
    """
    by_task: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_task[record["task"]][int(record["index"])].append(float(record["acc"]))
    tasks = {}
    for task, questions in sorted(by_task.items()):
        tasks[task] = {
            "family": family_of(task), "questions": len(questions),
            "answers": sum(len(v) for v in questions.values()),
            "mean_at_n": 100 * mean(mean(v) for v in questions.values()),
            "pass_at_n": 100 * mean(float(any(a >= 1.0 for a in v)) for v in questions.values()),
        }
    families: dict[str, dict[str, Any]] = {}
    for fam in sorted({t["family"] for t in tasks.values()}):
        members = [t for t in tasks.values() if t["family"] == fam]
        families[fam] = {"tasks": len(members), "mean_at_n": mean(t["mean_at_n"] for t in members),
                         "pass_at_n": mean(t["pass_at_n"] for t in members)}
    overall = {
        "tasks": len(tasks), "questions": sum(t["questions"] for t in tasks.values()), "answers": len(records),
        "mean_at_n": mean(t["mean_at_n"] for t in tasks.values()) if tasks else 0.0,
        "pass_at_n": mean(t["pass_at_n"] for t in tasks.values()) if tasks else 0.0,
        "mean_at_n_by_question": 100 * mean(float(r["acc"]) for r in records) if records else 0.0,
    }
    return {"n": n, "tasks": tasks, "families": families, "overall": overall, "code_use": code_use(records)}


def code_use(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How the answers used the interpreter."""
    total = len(records) or 1
    calls = [int(r.get("num_code_calls") or 0) for r in records]
    stop_reasons: dict[str, int] = defaultdict(int)
    for r in records:
        stop_reasons[str(r.get("stop_reason"))] += 1
    return {
        "answers": len(records),
        "share_ran_code": sum(c > 0 for c in calls) / total,
        "code_calls_per_answer": sum(calls) / total,
        "code_calls": sum(calls),
        "code_errors": sum(int(r.get("code_errors") or 0) for r in records),
        "code_timeouts": sum(int(r.get("code_timeouts") or 0) for r in records),
        "sandbox_failures": sum(int(r.get("sandbox_failures") or 0) for r in records),
        "call_limit_reached": sum(bool(r.get("call_limit_reached")) for r in records),
        "share_without_answer": sum(r.get("answer") is None for r in records) / total,
        "response_tokens_mean": sum(int(r.get("response_tokens") or 0) for r in records) / total,
        "stop_reasons": dict(sorted(stop_reasons.items())),
    }


def markdown(report: dict[str, Any]) -> str:
    s, n = report["summary"], report["summary"]["n"]
    lines = [f"# r1ci eval: {report['model']}", "",
             f"{s['overall']['questions']} questions in {s['overall']['tasks']} tasks, n = {n} "
             f"(temperature {report['settings']['temperature']}, at most {report['settings']['max_code_calls']} code "
             f"calls, {report['settings']['code_timeout_s']:g} s per run).", "",
             f"| task | family | questions | mean@{n} | pass@{n} |", "|---|---|---:|---:|---:|"]
    for task, t in s["tasks"].items():
        lines.append(f"| {task} | {t['family']} | {t['questions']} | {t['mean_at_n']:.1f} | {t['pass_at_n']:.1f} |")
    lines += ["", f"| family | tasks | mean@{n} | pass@{n} |", "|---|---:|---:|---:|"]
    for fam, f in s["families"].items():
        lines.append(f"| {fam} | {f['tasks']} | {f['mean_at_n']:.1f} | {f['pass_at_n']:.1f} |")
    o = s["overall"]
    lines += ["", "| overall (mean over tasks) | accuracy |", "|---|---:|",
              f"| this run, mean@{n} | {o['mean_at_n']:.1f} |", f"| this run, pass@{n} | {o['pass_at_n']:.1f} |"]
    for name, value in PAPER_REFERENCE.items():
        lines.append(f"| paper: {name} ({PAPER_TEST_TASKS} test tasks) | {value:.1f} |")
    lines += ["", f"Note: {SPLIT_NOTE}", "", "## Code use", ""]
    c = s["code_use"]
    lines += [
        f"- answers that ran code: {100 * c['share_ran_code']:.1f}%",
        f"- code calls per answer: {c['code_calls_per_answer']:.2f} ({c['code_calls']} in all)",
        f"- code errors: {c['code_errors']}, timeouts: {c['code_timeouts']}, sandbox failures: {c['sandbox_failures']}",
        f"- answers that reached the call limit: {c['call_limit_reached']}",
        f"- answers without <<<...>>>: {100 * c['share_without_answer']:.1f}%",
        f"- stop reasons: {', '.join(f'{k} {v}' for k, v in c['stop_reasons'].items())}",
    ]
    return "\n".join(lines) + "\n"


def bar_chart(report: dict[str, Any], path: str | Path) -> None:
    """A horizontal bar per task (mean@n), the overall mean and the paper's R1-CI-14B average as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["summary"]
    tasks = list(s["tasks"])
    values = [s["tasks"][t]["mean_at_n"] for t in tasks]
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.3 * len(tasks)))
    ax.barh(tasks, values, color="#4c72b0")
    ax.axvline(s["overall"]["mean_at_n"], color="black", linestyle="--", label=f"this run: {s['overall']['mean_at_n']:.1f}")
    ax.axvline(PAPER_REFERENCE["R1-CI-14B"], color="#c44e52", linestyle=":", label="paper R1-CI-14B (other tasks): 72.4")
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"accuracy, mean@{s['n']} (%)")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"r1ci eval: {report['model']}", fontsize=10)
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def compare(a: dict[str, Any], b: dict[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    """Markdown: the two runs side by side per task, with B - A."""
    sa, sb = a["summary"], b["summary"]
    n_a, n_b = sa["n"], sb["n"]
    lines = [f"| task | {name_a} mean@{n_a} | {name_b} mean@{n_b} | difference |", "|---|---:|---:|---:|"]
    for task in sorted(set(sa["tasks"]) | set(sb["tasks"])):
        va, vb = sa["tasks"].get(task, {}).get("mean_at_n"), sb["tasks"].get(task, {}).get("mean_at_n")
        diff = f"{vb - va:+.1f}" if va is not None and vb is not None else "n/a"
        lines.append(f"| {task} | {_cell(va)} | {_cell(vb)} | {diff} |")
    oa, ob = sa["overall"]["mean_at_n"], sb["overall"]["mean_at_n"]
    lines.append(f"| **overall** | {oa:.1f} | {ob:.1f} | {ob - oa:+.1f} |")
    ca, cb = sa["code_use"], sb["code_use"]
    lines += ["", "| code use | " + name_a + " | " + name_b + " |", "|---|---:|---:|",
              f"| answers that ran code | {100 * ca['share_ran_code']:.1f}% | {100 * cb['share_ran_code']:.1f}% |",
              f"| code calls per answer | {ca['code_calls_per_answer']:.2f} | {cb['code_calls_per_answer']:.2f} |",
              f"| answers without <<<...>>> | {100 * ca['share_without_answer']:.1f}% | "
              f"{100 * cb['share_without_answer']:.1f}% |"]
    only = sorted(set(sa["tasks"]) ^ set(sb["tasks"]))
    if only:
        lines += ["", f"Tasks in only one run (each overall averages its own tasks): {', '.join(only)}"]
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def check_report(data: Any, where: str) -> dict[str, Any]:
    """A report read from disk; a ValueError naming the file when it is not an eval report."""
    if not isinstance(data, dict) or "summary" not in data or "tasks" not in data.get("summary", {}):
        raise ValueError(f"{where}: not an `r1ci eval` report (no summary.tasks)")
    return data


def answers_scored(report: dict[str, Any], expected: Iterable[tuple[int, int]]) -> bool:
    got = {(int(r["index"]), int(r["sample"])) for r in report.get("answers", [])}
    return got >= set(expected)
