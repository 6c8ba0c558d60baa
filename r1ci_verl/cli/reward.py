"""`r1ci reward`: check reward functions on a file of responses, list registered verifiers.

    r1ci reward check --data rows.jsonl                      # rows carry a "response"
    r1ci reward check --data test.parquet --answers outputs.jsonl
    r1ci reward check --data rows.jsonl --reward my_rewards.py --reward pkg.mod:compute_score
    r1ci reward check --data r1ci_verl/assets/bbh/navigate.jsonl --gold   # self-check verifiers

A row names its task in ``data_source`` (or ``task``; a bare name such as ``navigate`` is
resolved when exactly one family has it) and its ground truth in ``reward_model.ground_truth``
(verl parquet), ``ground_truth``, or ``answer``/``solution`` with optional ``meta``.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

DEFAULT_MAX_FAILURES = 10
ANSWER_PREVIEW_CHARS = 60
REPORT_WIDTH = 140  # columns when stdout is not a terminal (logs, CI)


class RowError(ValueError):
    """A data row that cannot be scored; the message names the file, row and field."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reward", help="check reward functions on responses; list verifiers")
    commands = parser.add_subparsers(dest="reward_command", metavar="ACTION", required=True)

    check = commands.add_parser("check", help="score a JSONL/parquet of rows and print per-task accuracy")
    check.add_argument("--data", required=True, help="JSONL or parquet rows (task, ground truth, response)")
    check.add_argument("--answers", help="JSONL of responses, one per data row (a string or {'response': ...})")
    check.add_argument("--gold", action="store_true", help="respond with each row's stored answer in <<<...>>>")
    check.add_argument(
        "--reward",
        action="append",
        default=[],
        metavar="SPEC",
        help="module (dotted or .py path) that registers verifiers, or module:function replacing "
        "compute_score; repeatable",
    )
    check.add_argument("--unknown-task", choices=("error", "exact_match"), default="error",
                       help="unregistered tasks: fail, or compare answers as text (default: %(default)s)")
    check.add_argument("--max-failures", type=int, default=DEFAULT_MAX_FAILURES,
                       help="failures to print (default: %(default)s)")
    check.add_argument("--output", help="write one JSON result per row to this JSONL file")
    check.add_argument("--fail-under", type=float, help="exit 1 when overall accuracy is below this fraction")
    check.set_defaults(func=_check)

    listing = commands.add_parser("list", help="registered verifier names")
    listing.add_argument("--family", help="only this family (bbh, reasoning_gym, symbench, ...)")
    listing.set_defaults(func=_list)


@dataclass(frozen=True)
class Row:
    index: int
    task: str
    ground_truth: Any
    response: str
    extra_info: dict[str, Any]


@dataclass(frozen=True)
class RowResult:
    row: Row
    score: float
    acc: float
    format_ok: float
    answered: float
    reason: str  # empty when correct
    seconds: float


def read_records(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl / .json-lines or .parquet file, as dicts."""
    if not path.is_file():
        raise RowError(f"{path}: file not found")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RowError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
    return records


def resolve_task(name: str, where: str) -> str:
    """A registered verifier name: `name` itself, or the one ``<family>/<name>`` that exists."""
    from reward_fns.registry import has_verifier, list_verifiers

    if "/" in name or has_verifier(name):
        return name
    matches = [v for v in list_verifiers() if v.split("/", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RowError(f"{where}: task {name!r} is ambiguous ({', '.join(matches)}); give data_source")
    return name  # unknown: scoring reports it (or compares text with --unknown-task exact_match)


def ground_truth_of(record: dict[str, Any], where: str) -> Any:
    reward_model = record.get("reward_model")
    if isinstance(reward_model, dict) and "ground_truth" in reward_model:
        return reward_model["ground_truth"]
    if "ground_truth" in record:
        return record["ground_truth"]
    for field_name in ("answer", "solution"):
        if field_name in record:
            return {"answer": record[field_name], "meta": record.get("meta") or {}}
    raise RowError(f"{where}: no ground truth (reward_model.ground_truth, ground_truth, answer or solution)")


def gold_response(ground_truth: Any, task: str) -> str:
    """The stored answer written as a model would: prose, then <<<answer>>>."""
    from reward_fns.scoring import parse_ground_truth

    answer = parse_ground_truth(ground_truth, task).answer
    return f"Reference answer.\n<<<{answer if isinstance(answer, str) else json.dumps(answer)}>>>"


def load_rows(data: Path, answers: Path | None, gold: bool) -> list[Row]:
    records = read_records(data)
    responses = [_response_of(r, answers, i) for i, r in enumerate(read_records(answers))] if answers else None
    if responses is not None and len(responses) != len(records):
        raise RowError(f"{answers}: {len(responses)} responses for {len(records)} rows in {data}")
    rows = []
    for index, record in enumerate(records):
        where = f"{data} row {index}"
        if not isinstance(record, dict):
            raise RowError(f"{where}: expected a JSON object, got {type(record).__name__}")
        name = record.get("data_source") or record.get("task")
        if not isinstance(name, str) or not name:
            raise RowError(f"{where}: field 'data_source' (or 'task') is missing or not a string")
        task = resolve_task(name, where)
        ground_truth = ground_truth_of(record, where)
        if gold:
            response = gold_response(ground_truth, task)
        elif responses is not None:
            response = responses[index]
        elif isinstance(record.get("response"), str):
            response = record["response"]
        else:
            raise RowError(f"{where}: field 'response' is missing or not a string (or give --answers / --gold)")
        extra_info = record.get("extra_info") if isinstance(record.get("extra_info"), dict) else {}
        rows.append(Row(index, task, ground_truth, response, extra_info))
    return rows


def _response_of(record: Any, path: Path, index: int) -> str:
    if isinstance(record, str):
        return record
    if isinstance(record, dict) and isinstance(record.get("response"), str):
        return record["response"]
    raise RowError(f"{path} row {index}: expected a JSON string or an object with a string 'response'")


ScoreFn = Callable[..., Any]


def load_reward_specs(specs: list[str]) -> ScoreFn | None:
    """Import every spec; the last ``module:function`` one replaces compute_score."""
    from reward_fns.registry import load_user_module

    custom = None
    for spec in specs:
        loaded = load_user_module(spec)
        if ":" in spec and callable(loaded):
            custom = loaded
    return custom


def score_rows(rows: list[Row], custom: ScoreFn | None, unknown_task: str) -> list[RowResult]:
    from reward_fns.scoring import ScoringConfig, score_response

    config = ScoringConfig(unknown_task=unknown_task)
    results = []
    for row in rows:
        start = time.perf_counter()
        if custom is None:
            scored = score_response(row.task, row.response, row.ground_truth, row.extra_info, config)
            result = (scored.score, float(scored.correct), float(scored.format_ok), float(scored.answer is not None))
            reason = _reason(scored, row)
        else:
            raw = custom(data_source=row.task, solution_str=row.response, ground_truth=row.ground_truth,
                         extra_info=dict(row.extra_info))
            if inspect.isawaitable(raw):  # verl accepts async reward functions too
                raw = asyncio.run(raw)
            metrics = raw if isinstance(raw, dict) else {"score": raw}
            score = float(metrics["score"])
            acc = float(metrics.get("acc", score))
            result = (score, acc, float(metrics.get("format_ok", 0.0)), float(metrics.get("answer_extracted", 0.0)))
            reason = "" if acc == 1.0 else str(metrics.get("reward_error") or f"score {score:g}")
        results.append(RowResult(row, *result, reason=reason, seconds=time.perf_counter() - start))
    return results


def _reason(scored: Any, row: Row) -> str:
    if scored.correct:
        return ""
    if scored.answer is None:
        return "no <<<answer>>> outside code blocks"
    if scored.error:
        return f"verifier error: {scored.error}"
    from reward_fns.scoring import parse_ground_truth

    expected = parse_ground_truth(row.ground_truth, row.task).answer
    return f"wrong answer: {_preview(scored.answer)} (expected {_preview(expected)})"


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return repr(text if len(text) <= ANSWER_PREVIEW_CHARS else text[: ANSWER_PREVIEW_CHARS - 1] + "…")


def per_task(results: list[RowResult]) -> Iterator[tuple[str, list[RowResult]]]:
    groups: dict[str, list[RowResult]] = {}
    for result in results:
        groups.setdefault(result.row.task, []).append(result)
    yield from sorted(groups.items())


def print_report(results: list[RowResult], max_failures: int, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else REPORT_WIDTH)
    table = Table(title="Reward check")
    table.add_column("task", no_wrap=True)
    for column in ("rows", "accuracy", "mean score", "format ok", "answered", "ms/answer"):
        table.add_column(column, justify="right")
    for task, group in per_task(results):
        table.add_row(task, *_summary(group))
    table.add_section()
    table.add_row("ALL", *_summary(results))
    console.print(table)
    failures = [r for r in results if r.reason]
    if failures and max_failures > 0:
        console.print(f"[bold]Failures[/bold] ({len(failures)}; first {min(max_failures, len(failures))}):")
        for r in failures[:max_failures]:
            console.print(f"  row {r.row.index} [cyan]{r.row.task}[/cyan]: {r.reason}", markup=True, highlight=False)
    rate = len(results) / seconds if seconds > 0 else float("inf")
    console.print(f"Scored {len(results)} responses in {seconds:.3f} s ({rate:,.0f} answers/s).")


def _summary(group: list[RowResult]) -> list[str]:
    n = len(group)
    return [
        str(n),
        f"{sum(r.acc for r in group) / n:.1%}",
        f"{sum(r.score for r in group) / n:.3f}",
        f"{sum(r.format_ok for r in group) / n:.1%}",
        f"{sum(r.answered for r in group) / n:.1%}",
        f"{1000 * sum(r.seconds for r in group) / n:.3f}",
    ]


def write_results(path: Path, results: list[RowResult]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in results:
            record = {"row": r.row.index, "task": r.row.task, "score": r.score, "acc": r.acc,
                      "format_ok": r.format_ok, "answered": r.answered, "reason": r.reason}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _check(args: argparse.Namespace) -> int:
    from reward_fns.registry import list_verifiers

    try:
        custom = load_reward_specs(args.reward)
        rows = load_rows(Path(args.data), Path(args.answers) if args.answers else None, args.gold)
        if not rows:
            raise RowError(f"{args.data}: no rows")
        list_verifiers()  # import built-in verifiers before timing
        start = time.perf_counter()
        results = score_rows(rows, custom, args.unknown_task)
        seconds = time.perf_counter() - start
    except (RowError, KeyError, ValueError, FileNotFoundError, ImportError, AttributeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"r1ci reward check: {message}", file=sys.stderr)
        return 2
    print_report(results, args.max_failures, seconds)
    if args.output:
        write_results(Path(args.output), results)
    accuracy = sum(r.acc for r in results) / len(results)
    if args.fail_under is not None and accuracy < args.fail_under:
        print(f"accuracy {accuracy:.1%} is below --fail-under {args.fail_under:.1%}", file=sys.stderr)
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    from reward_fns.registry import get_time_budget, list_verifiers

    for name in list_verifiers():
        if args.family and not name.startswith(f"{args.family}/"):
            continue
        budget = get_time_budget(name)
        print(name if budget is None else f"{name}\t(time budget {budget:g} s)")
    return 0
